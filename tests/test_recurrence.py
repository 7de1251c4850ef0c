"""Reminder times: wall-clock times in the person's zone, kept across clock changes and short months."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from parley.actions import Toolbox, ToolCall, ToolContext
from parley.actions.builtin.clock import current_time
from parley.actions.recurrence import describe, next_due, spoken_due, spoken_time
from parley.actions.zones import find_zone, local_now

BERLIN = ZoneInfo("Europe/Berlin")


def local(at: float, zone: ZoneInfo = BERLIN) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%a %Y-%m-%d %H:%M %z")


def test_a_weekly_reminder_stays_at_eight_across_the_change_to_winter_time() -> None:
    first = datetime(2026, 10, 19, 8, 0)  # a Monday, summer time (+0200)
    due = next_due(first, BERLIN, "weekly", datetime(2026, 10, 18, tzinfo=BERLIN).timestamp())
    seen = []
    for _ in range(3):
        assert due is not None
        seen.append(local(due))
        due = next_due(first, BERLIN, "weekly", due)
    assert seen == ["Mon 2026-10-19 08:00 +0200", "Mon 2026-10-26 08:00 +0100", "Mon 2026-11-02 08:00 +0100"]


def test_weekdays_skip_the_weekend_and_monthly_on_the_31st_falls_on_the_last_day_then_returns() -> None:
    first = datetime(2026, 11, 27, 7, 30)  # a Friday
    after_friday = datetime(2026, 11, 27, 9, 0, tzinfo=BERLIN).timestamp()
    assert local(next_due(first, BERLIN, "weekdays", after_friday) or 0) == "Mon 2026-11-30 07:30 +0100"
    first = datetime(2027, 1, 31, 9, 0)
    months = []
    due = next_due(first, BERLIN, "monthly", datetime(2027, 1, 1, tzinfo=BERLIN).timestamp())
    for _ in range(4):
        assert due is not None
        months.append(datetime.fromtimestamp(due, BERLIN).date().isoformat())
        due = next_due(first, BERLIN, "monthly", due)
    assert months == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]


def test_a_one_off_fires_once_and_a_daily_one_jumps_over_a_long_downtime() -> None:
    first = datetime(2026, 12, 1, 9, 0)
    at = datetime(2026, 12, 1, 9, 0, tzinfo=BERLIN).timestamp()
    assert next_due(first, BERLIN, "none", at - 1) == at
    assert next_due(first, BERLIN, "none", at) is None
    a_year_later = datetime(2027, 12, 5, 12, 0, tzinfo=BERLIN).timestamp()
    assert local(next_due(first, BERLIN, "daily", a_year_later) or 0) == "Mon 2027-12-06 09:00 +0100"


def test_descriptions_say_exactly_when() -> None:
    first = datetime(2026, 11, 30, 8, 0)
    assert describe(first, "weekly") == "every week on Monday"
    assert describe(first, "monthly") == "every month on day 30"
    assert spoken_time(first) == "Monday 30 November 2026 at 08:00"


async def test_current_time_is_the_persons_and_is_never_guessed_without_a_zone() -> None:
    box = Toolbox([current_time])
    now = datetime(2026, 11, 29, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    call = ToolCall("call_1", "current_time", "{}")
    tokyo = await box.run(call, ToolContext(user_id=1, chat_id=1, now=now, timezone="Asia/Tokyo"))
    assert json.loads(tokyo.content) == {
        "date": "2026-11-30", "time": "08:30", "weekday": "Monday", "timezone": "Asia/Tokyo", "utc_offset": "+0900",
    }  # fmt: skip
    unknown = await box.run(call, ToolContext(user_id=1, chat_id=1, now=now, timezone=None))
    assert not unknown.ok
    assert "timezone is not known" in json.loads(unknown.content)["error"]


def test_timezones_are_found_as_people_name_them_and_never_guessed_between_several() -> None:
    assert find_zone("Europe/Berlin") == find_zone("berlin") == find_zone(" BERLIN ") == "Europe/Berlin"
    assert find_zone("new york") == "America/New_York"
    assert find_zone("UTC") == "UTC"
    assert find_zone("Mars/Olympus") is None and find_zone("") is None
    assert find_zone("Indianapolis") is None  # two zones end so: ask, never pick one
    assert find_zone("America/Indianapolis") == "America/Indianapolis"
    assert local_now("Asia/Tokyo", datetime(2026, 11, 29, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp()) == (
        "08:30 on Monday"
    )
    assert spoken_due(datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN).timestamp(), "Europe/Berlin") == (
        "Monday 30 November 2026 at 08:00"
    )
