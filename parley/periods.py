"""What `/summary …` and `/digest …` mean, in words people type: a span of the group's log, a schedule.

Pure parsing against a clock and a timezone, so the words are tested without a chat: "yesterday" is the
group's yesterday (midnight to midnight where the group lives), "week" the last seven days, "3 hours" or
"3h" a duration, "200" the last 200 messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parley.i18n import formats
from parley.i18n.catalog import N_, _

DEFAULT_HOURS = 24
MAX_DAYS = 366
MAX_MESSAGES = 10_000

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNITS = {
    "m": "minutes", "min": "minutes", "mins": "minutes", "minute": "minutes", "minutes": "minutes",
    "h": "hours", "hr": "hours", "hrs": "hours", "hour": "hours", "hours": "hours",
    "d": "days", "day": "days", "days": "days",
    "w": "weeks", "week": "weeks", "weeks": "weeks",
}  # fmt: skip
_DURATION = re.compile(r"^(?:last\s+|past\s+)?(\d{1,4})?\s*([a-z]+)$")
_TIME = re.compile(r"^([01]?\d|2[0-3])[:.h]([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Span:
    """A part of the log: by time (since ≤ sent_at < until), by count (the last N), or after a message id."""

    label: str
    since: float | None = None
    until: float | None = None
    last: int | None = None
    after_id: int | None = None


def parse_span(words: str, *, now: float, zone: ZoneInfo, last_summarized: int | None = None) -> Span:
    """'' → after the last summary's messages (or the last 24 hours); 'today', 'yesterday', 'week', 'month';
    '3 hours', '3h', '90 min', '2 days', 'last 2 weeks'; '200' → the last 200 messages. ValueError otherwise."""
    text = " ".join(words.strip().lower().split())
    if not text:
        if last_summarized is not None:
            return Span("since the last summary", after_id=last_summarized)
        return Span(f"the last {DEFAULT_HOURS} hours", since=now - DEFAULT_HOURS * 3600)
    midnight = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    if text == "today":
        return Span("today", since=midnight.timestamp())
    if text == "yesterday":
        start = midnight - timedelta(days=1)  # wall-clock arithmetic: a DST change makes that day 23 or 25 h
        return Span("yesterday", since=start.timestamp(), until=midnight.timestamp())
    if text in ("week", "this week", "last week", "a week"):
        return Span("the last 7 days", since=now - 7 * 86400)
    if text in ("month", "this month", "last month", "a month"):
        return Span("the last 30 days", since=now - 30 * 86400)
    if text.isdigit():
        count = int(text)
        if count <= 0:
            raise ValueError(words)
        return Span(f"the last {min(count, MAX_MESSAGES):,} messages", last=min(count, MAX_MESSAGES))
    match = _DURATION.match(text)
    if match and match.group(2) in _UNITS:
        amount = int(match.group(1) or 1)
        unit = _UNITS[match.group(2)]
        delta = timedelta(**{unit: amount})
        if amount <= 0 or delta > timedelta(days=MAX_DAYS):
            raise ValueError(words)
        noun = unit if amount != 1 else unit[:-1]
        return Span(f"the last {amount} {noun}", since=now - delta.total_seconds())
    raise ValueError(words)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A digest: every day at `time`, or every week on `weekday` (0 = Monday) at `time`, in `timezone`."""

    time: str  # HH:MM
    timezone: str
    weekday: int | None = None

    @property
    def span(self) -> str:
        """What each digest covers, in /summary's words."""
        return "week" if self.weekday is not None else ""

    def describe(self) -> str:
        """When it is posted, in the current language: 'every Monday at 9:00 AM (Europe/Berlin)'."""
        hour, minute = (int(x) for x in self.time.split(":"))
        values = {"time": formats.clock(time(hour, minute)), "timezone": self.timezone}
        if self.weekday is None:
            return _("every day at {time} ({timezone})", **values)
        return _(_EVERY[self.weekday], **values)

    def occurrences(self, around: float) -> list[float]:
        """The digest's times (epoch seconds) from a week before `around` to a week after, in order."""
        zone = ZoneInfo(self.timezone)
        hour, minute = (int(x) for x in self.time.split(":"))
        today = datetime.fromtimestamp(around, zone).date()
        days = (today + timedelta(days=offset) for offset in range(-8, 9))
        return [
            datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).timestamp()
            for day in days
            if self.weekday is None or day.weekday() == self.weekday
        ]

    def nearest(self, now: float) -> float:
        """The occurrence closest to `now`: which one a firing a little late (or early) is for."""
        return min(self.occurrences(now), key=lambda at: abs(at - now))

    def next_after(self, now: float) -> float:
        """The first occurrence after `now`."""
        return min(at for at in self.occurrences(now) if at > now)


_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EVERY = (
    N_("every Monday at {time} ({timezone})"),
    N_("every Tuesday at {time} ({timezone})"),
    N_("every Wednesday at {time} ({timezone})"),
    N_("every Thursday at {time} ({timezone})"),
    N_("every Friday at {time} ({timezone})"),
    N_("every Saturday at {time} ({timezone})"),
    N_("every Sunday at {time} ({timezone})"),
)
"""One sentence per day: the day's name takes a different form (case, article) in each language."""


def parse_schedule(words: list[str], *, default_timezone: str) -> Schedule | None:
    """'09:00 [tz]', 'daily 09:00 [tz]', 'weekly mon 09:00 [tz]' → a Schedule; 'off' → None.
    ValueError for anything else (an unknown day, time or timezone)."""
    rest = list(words)
    first = rest[0].lower() if rest else ""
    if first == "off" and len(rest) == 1:
        return None
    weekday: int | None = None
    if first == "daily":
        rest = rest[1:]
    elif first == "weekly":
        day = rest[1].lower() if len(rest) > 1 else ""
        if not _is_day(day):
            raise ValueError("weekday")
        weekday = WEEKDAYS.index(day[:3])
        rest = rest[2:]
    if not rest or len(rest) > 2:
        raise ValueError("time")
    match = _TIME.match(rest[0].lower())
    if match is None:
        raise ValueError("time")
    zone = rest[1] if len(rest) == 2 else default_timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("timezone") from exc
    return Schedule(time=f"{int(match.group(1)):02d}:{match.group(2)}", timezone=zone, weekday=weekday)


def _is_day(word: str) -> bool:
    """'mon', 'monday', 'tues'…: at least three letters of a day's English name."""
    return len(word) >= 3 and any(name.lower().startswith(word) for name in _DAY_NAMES)
