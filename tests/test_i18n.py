"""The message catalogue's machinery: which language a Telegram language code means, numbers, money, dates
and durations per locale, plural forms, and right-to-left isolation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from babel import Locale

from bot import texts
from parley.i18n import catalog, formats
from parley.i18n.catalog import _, ngettext, using
from parley.i18n.locales import NAMES, SHIPPED, native_name, normalise, right_to_left, telegram_code


@pytest.mark.parametrize(
    ("tag", "locale"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("pt-br", "pt_BR"),
        ("pt", "pt_BR"),
        ("pt-PT", "pt_BR"),
        ("zh-hans", "zh_Hans"),
        ("zh-CN", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("en-GB", "en"),
        ("uk", "uk"),
        ("ar-EG", "ar"),
        ("nl", None),
        ("xx-YY", None),
        ("", None),
        (None, None),
    ],
)
def test_telegram_language_codes_map_to_shipped_locales(tag: str | None, locale: str | None) -> None:
    assert normalise(tag) == locale


def test_every_language_is_named_in_itself_and_has_a_two_letter_code_for_menus() -> None:
    names = {locale: native_name(locale) for locale in SHIPPED}
    assert names["de"] == "Deutsch" and names["es"] == "Español" and names["ja"] == "日本語"
    assert names["pt_BR"] == "Português (Brasil)" and names["ru"] == "Русский"
    assert len(set(names.values())) == len(SHIPPED)
    assert {telegram_code(locale) for locale in SHIPPED} >= {"pt", "zh", "en"}
    assert all(len(telegram_code(locale)) == 2 for locale in SHIPPED)
    assert [locale for locale in SHIPPED if right_to_left(locale)] == ["ar"]


def test_the_names_and_directions_kept_in_the_code_are_babels() -> None:
    for locale in SHIPPED:
        data = Locale.parse(locale)
        assert NAMES[locale] == (data.get_display_name(locale), data.get_display_name("en"))
        assert right_to_left(locale) == (data.character_order == "right-to-left")


def test_numbers_money_dates_and_durations_follow_the_locale() -> None:
    moment = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    with using("en"):
        assert formats.number(1234567) == "1,234,567"
        assert formats.money(12.5) == "$12.50" and formats.money(0.0042) == "$0.0042"
        assert formats.duration(590) == "10 minutes" and formats.duration(45, direction=True) == "in 45 seconds"
        assert [formats.wait(s) for s in (12, 60, 80, 590, 3600)] == [
            "in a minute", "in a minute", "in 2 minutes", "in 10 minutes", "in 1 hour"
        ]  # fmt: skip
        assert [formats.length(s) for s in (3, 90, 300)] == ["3 seconds", "90 seconds", "5 minutes"]
        assert [formats.money(usd) for usd in (0, 0.004, 0.01, 0.0123, 12.345)] == [
            "$0.00", "$0.004", "$0.01", "$0.01", "$12.34"
        ]  # fmt: skip
        assert formats.when(moment) == "Dec 3, 6:00\u202fPM"
        assert formats.percent(0.82) == "82%"
    with using("de"):
        assert formats.number(1234567) == "1.234.567"
        assert formats.money(12.5) == "12,50\xa0$"
        assert formats.duration(590) == "10 Minuten"
        assert formats.wait(30) == "in einer Minute" and formats.wait(590) == "in 10 Minuten"
        assert formats.when(moment) == "3. Dez., 18:00"
        assert formats.long_when(moment) == "Donnerstag, 3. Dezember 2026, 18:00"
        assert formats.weekday_clock(moment) == "Donnerstag, 18:00"
    with using("ja"):
        assert formats.when(moment) == "12月3日 18:00"
        assert formats.items(["alloy", "ash"]) == "alloy、ash"
    with using("hi"):
        assert formats.number(1234567) == "12,34,567"


def test_the_source_language_translates_nothing_and_fills_placeholders() -> None:
    with using("en"):
        assert _("Done: from now on I'll speak as {name}.", name="coral") == "Done: from now on I'll speak as coral."
        one = ngettext("Reading {count} message…", "Reading {count} messages…", 1, count=1)
        many = ngettext("Reading {count} message…", "Reading {count} messages…", 3, count=3)
        assert (one, many) == ("Reading 1 message…", "Reading 3 messages…")


def test_right_to_left_texts_isolate_values_and_left_to_right_runs() -> None:
    text = catalog.isolate_runs("اكتب /help أو أرسل إلى @parley_bot")
    assert f"{catalog.LRI}/help{catalog.PDI}" in text and f"{catalog.LRI}@parley_bot{catalog.PDI}" in text
    assert catalog.isolate_runs("<b>{name}</b>") == "<b>{name}</b>"  # markup and placeholders as they were
    with using("ar"):
        filled = _("Done: from now on I'll speak as {name}.", name="coral")
    assert f"{catalog.FSI}coral{catalog.PDI}" in filled


def test_the_catalogue_of_every_shipped_language_loads() -> None:
    catalog.load_all()
    for locale in SHIPPED:
        assert catalog.translations(locale) is not None


def test_waits_and_lengths_are_said_in_words_in_every_language() -> None:
    """No "590 s": a wait reads "in 10 minutes" (or "in a minute"), a limit "5 minutes", in each language."""
    for locale in SHIPPED:
        with using(locale):
            for seconds in (40, 590):
                for text in (texts.slow_down(seconds), texts.summary_limited(seconds)):
                    assert formats.wait(seconds) in text and str(seconds) not in text, (locale, text)
            assert formats.length(300) in texts.voice_too_long(300), locale
            assert formats.duration(130) in texts.still_working(130), locale
