"""The languages Parley speaks, and how a person's Telegram `language_code` maps onto one of them.

Locale names are Babel's (and gettext's): `pt_BR`, `zh_Hans`. Telegram sends IETF tags as the client's
interface language (`de`, `pt-br`, `zh-hans`, `en-GB`); a tag Parley has no catalogue for falls back to its
base language when Parley ships that ("de-AT" → German, "pt" → the one Portuguese Parley ships), and
otherwise to nothing, so the caller's default (PARLEY_LANGUAGE) applies.
"""

from __future__ import annotations

from functools import cache

from babel import Locale

SOURCE = "en"
"""The language the texts are written in: its catalogue is the source, never translated."""

SHIPPED: tuple[str, ...] = (
    "en", "de", "es", "fr", "it", "pt_BR", "ru", "uk", "pl", "tr", "ar", "hi", "id", "ja", "ko", "zh_Hans",
)  # fmt: skip
"""Every language with a complete catalogue, in the order /language lists them."""

NAMES: dict[str, tuple[str, str]] = {
    "en": ("English", "English"),
    "de": ("Deutsch", "German"),
    "es": ("español", "Spanish"),
    "fr": ("français", "French"),
    "it": ("italiano", "Italian"),
    "pt_BR": ("português (Brasil)", "Portuguese (Brazil)"),
    "ru": ("русский", "Russian"),
    "uk": ("українська", "Ukrainian"),
    "pl": ("polski", "Polish"),
    "tr": ("Türkçe", "Turkish"),
    "ar": ("العربية", "Arabic"),
    "hi": ("हिन्दी", "Hindi"),
    "id": ("Indonesia", "Indonesian"),
    "ja": ("日本語", "Japanese"),
    "ko": ("한국어", "Korean"),
    "zh_Hans": ("中文 (简体)", "Chinese (Simplified)"),
}
"""Each shipped language named in itself and in English, as Babel's CLDR data names them (a test checks
that they agree). Asking Babel here would load a language's whole locale data (over a megabyte each) to
read two words: the menus and the picker name every language, and that data would stay for good."""

RIGHT_TO_LEFT = frozenset({"ar"})
"""The shipped languages written right to left (CLDR's character order; a test checks it): every text
made asks, so the answer must not need the language's locale data."""

_BY_KEY = {name.lower(): name for name in SHIPPED}
_BY_BASE = {name.split("_")[0].lower(): name for name in SHIPPED}


def normalise(tag: str | None) -> str | None:
    """A shipped locale for a language tag ('pt-br' → 'pt_BR', 'zh-hans' or 'zh-CN' → 'zh_Hans', 'de-AT' →
    'de'), or None when Parley has no catalogue in that language at all."""
    if not tag:
        return None
    key = tag.strip().replace("-", "_").lower()
    if key in _BY_KEY:
        return _BY_KEY[key]
    return _BY_BASE.get(key.split("_")[0])


@cache
def babel_locale(locale: str) -> Locale:
    return Locale.parse(locale)


def own_name(locale: str) -> str:
    """The language named in itself as a sentence says it: Deutsch, español, 日本語, português (Brasil)."""
    return NAMES[locale][0] if locale in NAMES else babel_locale(locale).get_display_name(locale) or locale


def native_name(locale: str) -> str:
    """The language named in itself, as a picker lists it: Deutsch, Español, 日本語, Português (Brasil)."""
    name = own_name(locale)
    return name[:1].upper() + name[1:]


def english_name(locale: str) -> str:
    """The language's English name, for the model's instructions ("Write in German")."""
    return NAMES[locale][1] if locale in NAMES else babel_locale(locale).get_display_name(SOURCE) or locale


def telegram_code(locale: str) -> str:
    """The two-letter code the Bot API takes for menus and descriptions (ISO 639-1: 'pt', 'zh')."""
    return locale.split("_")[0].lower()


def right_to_left(locale: str) -> bool:
    return locale in RIGHT_TO_LEFT
