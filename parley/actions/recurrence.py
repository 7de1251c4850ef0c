"""When a reminder is due: wall-clock times in the person's zone, one-off or repeating.

A repeating reminder keeps its wall-clock time across daylight-saving changes ("every Monday at eight"
stays at eight), so each occurrence is computed from the first one's local date and time, not by adding
seconds. A monthly one on the 31st falls on the last day of shorter months and returns to the 31st.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

REPEATS = ("none", "daily", "weekdays", "weekly", "monthly")
DESCRIBED = {
    "none": "once",
    "daily": "every day",
    "weekdays": "every weekday (Monday to Friday)",
    "weekly": "every week on {weekday}",
    "monthly": "every month on day {day}",
}


def aware(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in `zone` (a time skipped by a clock change is read with the old offset)."""
    return local.replace(tzinfo=zone)


def _months_later(anchor: date, months: int) -> date:
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    return date(year, month + 1, min(anchor.day, calendar.monthrange(year, month + 1)[1]))


def _dates(anchor: date, repeat: str, near: date) -> Iterator[date]:
    """Occurrence dates from the first one on or after `near - 1 day` (skipping the far past at once)."""
    start = max(anchor, near - timedelta(days=1))
    if repeat == "daily":
        day = start
        while True:
            yield day
            day += timedelta(days=1)
    elif repeat == "weekdays":
        day = start
        while True:
            if day.weekday() < 5 and day >= anchor:
                yield day
            day += timedelta(days=1)
    elif repeat == "weekly":
        weeks = max(0, (start - anchor).days // 7)
        while True:
            yield anchor + timedelta(weeks=weeks)
            weeks += 1
    elif repeat == "monthly":
        months = max(0, (start.year - anchor.year) * 12 + start.month - anchor.month - 1)
        while True:
            yield _months_later(anchor, months)
            months += 1
    else:
        raise ValueError(f"unknown repeat {repeat!r}")


def next_due(first: datetime, zone: ZoneInfo, repeat: str, after: float) -> float | None:
    """The first occurrence strictly after `after` (epoch seconds); None for a one-off that has passed.

    `first` is the first occurrence as naive local wall time in `zone`."""
    if repeat == "none":
        at = aware(first, zone).timestamp()
        return at if at > after else None
    near = datetime.fromtimestamp(after, zone).date()
    for day in _dates(first.date(), repeat, near):
        at = aware(datetime.combine(day, first.time()), zone).timestamp()
        if at > after:
            return at
    raise AssertionError("unreachable: the occurrences never end")


def describe(first: datetime, repeat: str) -> str:
    return DESCRIBED[repeat].format(weekday=first.strftime("%A"), day=first.day)


def spoken_time(at: datetime) -> str:
    """`Monday 30 November 2026 at 09:00`: unambiguous, and what the confirmation repeats."""
    return f"{at.strftime('%A')} {at.day} {at.strftime('%B %Y')} at {at.strftime('%H:%M')}"


def spoken_due(due_at: float, zone: str) -> str:
    """When a stored reminder fires next, as the person's clock shows it."""
    return spoken_time(datetime.fromtimestamp(due_at, ZoneInfo(zone)))
