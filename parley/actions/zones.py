"""Timezones as people name them: `Europe/Berlin`, `berlin`, `New York`, `UTC`."""

from __future__ import annotations

import functools
import time
import zoneinfo
from datetime import datetime
from zoneinfo import ZoneInfo


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA name by its lower-case form, and by its last part (`berlin` → Europe/Berlin) when unique."""
    names = sorted(zoneinfo.available_timezones())
    by_city: dict[str, list[str]] = {}
    for name in names:
        by_city.setdefault(name.rsplit("/", 1)[-1].lower(), []).append(name)
    found = {city: matches[0] for city, matches in by_city.items() if len(matches) == 1}
    found.update({name.lower(): name for name in names})
    return found


def find_zone(text: str) -> str | None:
    """The IANA zone a person means, or None: never a guess between several."""
    key = "_".join(text.strip().split()).lower()
    if not key or len(key) > 64:
        return None
    return _zones().get(key)


def local_now(zone: str, now: float | None = None) -> str:
    """`16:05 on Sunday` in that zone: shown when a timezone is set, so a wrong one is noticed at once."""
    local = datetime.fromtimestamp(time.time() if now is None else now, ZoneInfo(zone))
    return f"{local.strftime('%H:%M')} on {local.strftime('%A')}"
