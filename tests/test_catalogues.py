"""Every text Parley says, in every shipped language: complete, faithful to the English source's placeholders,
markup and commands, and within Telegram's limits once rendered.

When this fails after you changed or added an English text: run `./scripts/messages`, then translate the
entries the failure lists in each `parley/locales/<lang>/LC_MESSAGES/parley.po`.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot import registry, texts
from bot.callbacks import CallbackData
from bot.features import language
from bot.sender import telegram_length
from parley.i18n import catalog
from parley.i18n.catalog import using
from parley.i18n.locales import SHIPPED, SOURCE, native_name

ROOT = Path(__file__).resolve().parent.parent
TRANSLATED = [locale for locale in SHIPPED if locale != SOURCE]
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
MARKUP = re.compile(r"<[^<>]+>")
COMMAND = re.compile(r"(?<![\w/])/[a-z][a-z_]*\b")

CAPTION_LIMIT, MESSAGE_LIMIT, BUTTON_LIMIT = 1024, 4096, 64
MENU_LINE = (3, 256)
DESCRIPTION_LIMIT, SHORT_DESCRIPTION_LIMIT = 512, 120


def source_messages() -> dict[str, tuple[str, ...]]:
    """Every text marked in the code (msgid → its forms), read from the code itself, not from parley.pot."""
    found: dict[str, tuple[str, ...]] = {}
    for package in ("bot", "parley", "storage"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            forms = (message,) if isinstance(message, str) else tuple(message)
            found[forms[0]] = forms
    return found


def translations(locale: str) -> dict[str, tuple[str, ...]]:
    with catalog.po_path(locale).open("rb") as source:
        po = read_po(source, locale=locale)
    kept: dict[str, tuple[str, ...]] = {}
    for message in po:
        if not message.id or message.fuzzy:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        forms = (message.string,) if isinstance(message.string, str) else tuple(message.string)
        if all(forms):
            kept[key] = forms
    return kept


SOURCE_MESSAGES = source_messages()


def test_the_code_marks_texts_and_the_template_is_current() -> None:
    assert len(SOURCE_MESSAGES) > 100
    with (ROOT / "parley/locales/parley.pot").open("rb") as source:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(source) if m.id}
    assert set(SOURCE_MESSAGES) <= template, "run ./scripts/messages"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_text_is_translated(locale: str) -> None:
    missing = sorted(set(SOURCE_MESSAGES) - set(translations(locale)))
    assert not missing, f"{locale}: {len(missing)} texts without a translation, e.g. {missing[:5]}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_keep_placeholders_markup_and_commands(locale: str) -> None:
    problems = []
    for msgid, forms in translations(locale).items():
        if msgid not in SOURCE_MESSAGES:
            continue
        source = SOURCE_MESSAGES[msgid]
        wanted = set().union(*(PLACEHOLDER.findall(s) for s in source))
        got = [set(PLACEHOLDER.findall(form)) for form in forms]
        if len(source) == 1:
            if Counter(PLACEHOLDER.findall(forms[0])) != Counter(PLACEHOLDER.findall(source[0])):
                problems.append(("placeholders", msgid, forms[0]))
        elif set().union(*got) != wanted or any(not g <= wanted for g in got):
            problems.append(("placeholders", msgid, forms))
        for form in forms:
            if sorted(MARKUP.findall(form)) != sorted(MARKUP.findall(source[0])):
                problems.append(("markup", msgid, form))
            if set(COMMAND.findall(form)) != set(COMMAND.findall(source[0])):
                problems.append(("commands", msgid, form))
            if telegram_length(form) > CAPTION_LIMIT:
                problems.append(("longer than a caption", msgid, form))
    assert not problems, f"{locale}: {problems[:5]}"


@pytest.mark.parametrize("locale", SHIPPED)
def test_rendered_texts_fit_telegram(locale: str) -> None:
    with using(locale):
        assert telegram_length(registry.help_text()) <= MESSAGE_LIMIT
        for command in registry.menu(registry.Menu.ADMINS):
            assert MENU_LINE[0] <= len(command.description) <= MENU_LINE[1], (locale, command)
        assert 0 < telegram_length(texts.DESCRIPTION) <= DESCRIPTION_LIMIT
        assert 0 < telegram_length(texts.SHORT_DESCRIPTION) <= SHORT_DESCRIPTION_LIMIT
        for name in texts.BUTTONS:
            assert 0 < len(getattr(texts, name)) <= BUTTON_LIMIT, (locale, name)
        for row in language.keyboard(locale).inline_keyboard:
            for button in row:
                assert len(button.text) <= BUTTON_LIMIT and isinstance(button.callback_data, str)
                assert len(button.callback_data.encode()) <= 64


def test_each_language_button_names_it_in_itself_and_round_trips() -> None:
    for locale in SHIPPED:
        data = language.LanguageChoice(locale).pack()
        assert language.LanguageChoice.unpack(data).locale == locale
        assert isinstance(language.LanguageChoice(locale), CallbackData)
    labels = [button.text for row in language.keyboard("de").inline_keyboard for button in row]
    assert "• Deutsch" in labels and native_name("ja") in labels and "العربية" in labels


def test_plural_forms_follow_each_language() -> None:
    with using("ru"):
        assert [texts.reading(n, None) for n in (1, 3, 5)] == [
            "Читаю 1 сообщение…",
            "Читаю 3 сообщения…",
            "Читаю 5 сообщений…",
        ]
    with using("de"):
        assert texts.forget_done(1).startswith("Erledigt: Ich habe 1 gespeicherte Nachricht ")
        assert texts.forget_done(2).startswith("Erledigt: Ich habe 2 gespeicherte Nachrichten ")
    with using("ar"):
        assert "رسالتين" in texts.reading(2, None)
