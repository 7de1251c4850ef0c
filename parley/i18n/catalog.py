"""The message catalogue: gettext over the `.po` files shipped in the package, in the locale of the moment.

The `.po` sources are read with Babel when a language is first needed and compiled in memory into a gettext
`Translations`, so nobody who installs Parley (from a checkout or a wheel) runs a compile step, and the
files in the repository are the only copy. Which locale is "of the moment" is a context variable: the edge
sets it for each update and each job (`using(locale)`), so a text is translated where it is made, without
a locale passed through every call.

Texts are written in English in the code, with `str.format` placeholders (`{name}`), and marked for
extraction: `_("…")` translates now, `ngettext(singular, plural, n)` picks the language's plural form, and
`N_("…")` only marks a text that is translated later (a table entry, a menu line). Values given as keywords
are put into the translated text; in a right-to-left language each value, and each left-to-right run of the
text itself (a /command, a name), is wrapped in Unicode isolates so the line reads in the right order.
"""

from __future__ import annotations

import gettext as _gettext
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from parley.i18n.locales import SHIPPED, SOURCE, right_to_left
from parley.i18n.marks import N_

__all__ = ["N_", "_", "current", "load_all", "ngettext", "set_current", "translations", "using"]

DOMAIN = "parley"
LOCALES = Path(__file__).resolve().parent.parent / "locales"
"""`<locale>/LC_MESSAGES/parley.po` for every shipped language but the source, and `parley.pot`."""

FSI, LRI, PDI = "\u2068", "\u2066", "\u2069"
"""First-strong isolate (a value: its own letters decide), left-to-right isolate (a command), pop."""

_locale: ContextVar[str] = ContextVar("parley_locale", default=SOURCE)
_LEFT_TO_RIGHT_RUN = re.compile(r"(<[^<>]*>|\{[^{}]*\})|([/@]?[A-Za-z][\w@./:+-]*(?: [A-Za-z][\w./:+-]*)*)")


def po_path(locale: str) -> Path:
    return LOCALES / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> _gettext.NullTranslations:
    """The compiled catalogue of `locale` (the source language, or one without a file, translates nothing)."""
    path = po_path(locale)
    if locale == SOURCE or not path.is_file():
        return _gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def load_all() -> None:
    """Read every shipped catalogue now, so a broken file stops the start, not someone's message later."""
    for locale in SHIPPED:
        translations(locale)


def current() -> str:
    return _locale.get()


@contextmanager
def using(locale: str) -> Iterator[None]:
    """Texts made inside are in `locale`."""
    token = _locale.set(locale)
    try:
        yield
    finally:
        _locale.reset(token)


def set_current(locale: str) -> None:
    """For the rest of this task (an update's handlers run one after another in one task)."""
    _locale.set(locale)


def _(message: str, /, **values: object) -> str:
    """`message` in the current language, with `values` put into its placeholders."""
    locale = _locale.get()
    return _fill(translations(locale).gettext(message), values, locale)


def ngettext(singular: str, plural: str, n: int, /, **values: object) -> str:
    """The form of the text for `n` under the current language's plural rules (one, few, many, other…)."""
    locale = _locale.get()
    return _fill(translations(locale).ngettext(singular, plural, n), values, locale)


def _fill(text: str, values: dict[str, object], locale: str) -> str:
    if right_to_left(locale):
        text = isolate_runs(text)
        values = {key: f"{FSI}{value}{PDI}" for key, value in values.items()}
    return text.format(**values) if values else text


def isolate_runs(text: str) -> str:
    """Wrap each left-to-right run (a /command, @name, a Latin word) in LRI…PDI; markup and placeholders
    are left as they are."""

    def wrap(match: re.Match[str]) -> str:
        kept, run = match.group(1), match.group(2)
        return kept if kept is not None else f"{LRI}{run}{PDI}"

    return _LEFT_TO_RIGHT_RUN.sub(wrap, text)
