"""The words of /summary and /digest: spans of the log and digest schedules."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from parley.i18n.catalog import using
from parley.periods import Schedule, Span, parse_schedule, parse_span

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 29, 15, 30, tzinfo=BERLIN).timestamp()


def span(words: str, now: float = NOW, **kw: int) -> Span:
    return parse_span(words, now=now, zone=BERLIN, **kw)


def test_nothing_means_since_the_last_summary_or_a_day() -> None:
    assert span("", last_summarized=812) == Span("since the last summary", after_id=812)
    assert span("") == Span("the last 24 hours", since=NOW - 86400)


def test_days_are_the_groups_days() -> None:
    assert span("today").since == datetime(2026, 11, 29, tzinfo=BERLIN).timestamp()
    yesterday = span("Yesterday")
    assert yesterday.since == datetime(2026, 11, 28, tzinfo=BERLIN).timestamp()
    assert yesterday.until == datetime(2026, 11, 29, tzinfo=BERLIN).timestamp()


def test_yesterday_across_a_clock_change_is_that_days_length() -> None:
    """Berlin leaves summer time on 25 October 2026: that Sunday has 25 hours."""
    monday = datetime(2026, 10, 26, 9, 0, tzinfo=BERLIN).timestamp()
    yesterday = span("yesterday", now=monday)
    assert yesterday.until - yesterday.since == 25 * 3600
    assert datetime.fromtimestamp(yesterday.since, BERLIN).hour == 0


@pytest.mark.parametrize(
    ("words", "seconds", "label"),
    [
        ("week", 7 * 86400, "the last 7 days"),
        ("last week", 7 * 86400, "the last 7 days"),
        ("month", 30 * 86400, "the last 30 days"),
        ("3 hours", 3 * 3600, "the last 3 hours"),
        ("3h", 3 * 3600, "the last 3 hours"),
        ("1 hour", 3600, "the last 1 hour"),
        ("90 min", 90 * 60, "the last 90 minutes"),
        ("90m", 90 * 60, "the last 90 minutes"),
        ("2 days", 2 * 86400, "the last 2 days"),
        ("last 2 weeks", 14 * 86400, "the last 2 weeks"),
        ("  past   36   hours ", 36 * 3600, "the last 36 hours"),
    ],
)
def test_durations(words: str, seconds: int, label: str) -> None:
    assert span(words) == Span(label, since=NOW - seconds)


def test_a_count_is_the_last_messages_capped() -> None:
    assert span("200") == Span("the last 200 messages", last=200)
    assert span("99999").last == 10_000


@pytest.mark.parametrize(
    "words", ["0", "3x", "fortnight", "3 parsecs", "9999 days", "0 hours", "-3h", "yesterday please"]
)
def test_other_words_are_refused(words: str) -> None:
    with pytest.raises(ValueError):
        span(words)


def test_schedules() -> None:
    assert parse_schedule(["9:05"], default_timezone="UTC") == Schedule("09:05", "UTC")
    assert parse_schedule(["daily", "21:30", "Asia/Tokyo"], default_timezone="UTC") == Schedule("21:30", "Asia/Tokyo")
    weekly = parse_schedule(["weekly", "Mon", "09:00", "Europe/Berlin"], default_timezone="UTC")
    assert weekly == Schedule("09:00", "Europe/Berlin", weekday=0)
    assert weekly.span == "week"
    assert weekly.describe() == "every Monday at 9:00\u202fAM (Europe/Berlin)"
    assert parse_schedule(["weekly", "sunday", "18:00"], default_timezone="UTC") == Schedule("18:00", "UTC", 6)
    assert parse_schedule(["OFF"], default_timezone="UTC") is None
    assert Schedule("07:00", "UTC").describe() == "every day at 7:00\u202fAM (UTC)"
    with using("de"):
        assert weekly.describe() == "jeden Montag um 09:00 Uhr (Europe/Berlin)"
        assert Schedule("18:30", "UTC", 2).describe() == "jeden Mittwoch um 18:30 Uhr (UTC)"
    with using("ru"):
        assert Schedule("18:30", "UTC", 4).describe() == "каждую пятницу в 18:30 (UTC)"
    with using("ja"):
        assert Schedule("18:30", "Asia/Tokyo").describe() == "毎日 18:30（Asia/Tokyo）"


@pytest.mark.parametrize(
    "words",
    [[], ["25:00"], ["weekly", "09:00"], ["weekly", "mo", "09:00"], ["weekly", "funday", "09:00"],
     ["09:00", "Mars/Olympus"], ["09:00", "UTC", "extra"], ["off", "now"]],
)  # fmt: skip
def test_bad_schedules_are_refused(words: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_schedule(words, default_timezone="UTC")
