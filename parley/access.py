"""Who may talk to the bot, and how often. A bot with someone's API key behind it must not answer strangers.

The environment's lists (PARLEY_ALLOWED, PARLEY_ADMINS) are the base; admins' /allow and /deny, kept in
the database, sit on top and take effect at once. A deny beats an allow; admins are always allowed.
How often someone may write is counted in the database too, so that every process sharing it agrees.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

from storage import Storage
from storage.limits import RateStore

log = logging.getLogger(__name__)

_USERNAME_RE = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{3,31})$")
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$", re.IGNORECASE)
_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def subject_key(raw: str) -> str:
    """The canonical form of an entry: a numeric id as digits (negative for groups), a username as @lowercase."""
    raw = raw.strip()
    if re.fullmatch(r"-?\d+", raw):
        return str(int(raw))
    match = _USERNAME_RE.match(raw)
    if not match:
        raise ValueError(raw)
    return "@" + match.group(1).lower()


@dataclass(frozen=True, slots=True)
class AccessList:
    everyone: bool = False
    subjects: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, raw: str | None) -> AccessList:
        """'*', or comma-separated user ids, @usernames and (negative) group chat ids."""
        if raw is None or not raw.strip():
            return cls()
        entries = [e.strip() for e in raw.split(",") if e.strip()]
        if "*" in entries:
            return cls(everyone=True)
        return cls(subjects=frozenset(subject_key(e) for e in entries))


def unconfigured(admins: frozenset[int], allowed: AccessList) -> bool:
    """True when nobody at all may use the bot: what the start-up log, `parley doctor` and the refusal say."""
    return not admins and not allowed.everyone and not allowed.subjects


@dataclass(frozen=True, slots=True)
class Rate:
    limit: int
    period: float

    @classmethod
    def parse(cls, raw: str) -> Rate:
        """'10/minute', '3/second', '100/hour', '500/day', '5/10minutes'."""
        match = _RATE_RE.match(raw)
        if not match or int(match.group(1)) < 1 or match.group(2) == "0":
            raise ValueError(raw)
        return cls(int(match.group(1)), int(match.group(2) or 1) * _PERIODS[match.group(3).lower()])

    def __str__(self) -> str:
        for unit, seconds in reversed(_PERIODS.items()):
            if self.period % seconds == 0:
                count = int(self.period // seconds)
                return f"{self.limit}/{unit}" if count == 1 else f"{self.limit}/{count}{unit}s"
        return f"{self.limit}/{self.period:g}second"


@dataclass(frozen=True, slots=True)
class Requester:
    user_id: int
    username: str | None
    chat_id: int
    in_group: bool


class AccessPolicy:
    def __init__(self, *, allowed: AccessList, admins: frozenset[int], storage: Storage) -> None:
        self.allowed = allowed
        self.admins = admins
        self.storage = storage

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.admins

    @property
    def unconfigured(self) -> bool:
        """No admin and no allowlist: the bot refuses everyone, its operator included (a first run)."""
        return unconfigured(self.admins, self.allowed)

    async def group_allowed(self, chat_id: int) -> bool:
        """The group itself is allowed: what is said there may be recorded (an admin being in it is not enough)."""
        overrides = await self.storage.access.overrides()
        chat = str(chat_id)
        if overrides.get(chat) is False:
            return False
        return self.allowed.everyone or chat in self.allowed.subjects or overrides.get(chat) is True

    async def allows(self, who: Requester) -> bool:
        if self.is_admin(who.user_id):
            return True
        overrides = await self.storage.access.overrides()
        user_keys = await self._keys_of(who, overrides)
        if any(overrides.get(k) is False for k in user_keys):
            return False
        if who.in_group:
            chat = str(who.chat_id)
            if overrides.get(chat) is False:
                return False
            return self.allowed.everyone or chat in self.allowed.subjects or overrides.get(chat) is True
        return (
            self.allowed.everyone
            or any(k in self.allowed.subjects for k in user_keys)
            or any(overrides.get(k) is True for k in user_keys)
        )

    async def _keys_of(self, who: Requester, overrides: dict[str, bool]) -> set[str]:
        """The entries that name this person: their id, and each @username entry bound to them. An entry
        is bound to whoever first shows up with that name, and stays theirs: renaming neither loses an
        allow nor escapes a deny, and whoever takes the name later is not its subject."""
        named = {k for k in (*self.allowed.subjects, *overrides) if k.startswith("@")}
        bindings = await self.storage.access.bindings() if named else {}
        keys = {str(who.user_id)} | {name for name, user_id in bindings.items() if user_id == who.user_id}
        current = "@" + who.username.lower() if who.username else None
        if current in named and current not in bindings:
            try:
                bound = await self.storage.access.bind(current, who.user_id)
            except Exception:  # a database refusing writes: bound at the next update instead
                log.exception("could not bind %s", current)
                bound = who.user_id
            if bound == who.user_id:
                keys.add(current)
        return keys


@dataclass(frozen=True, slots=True)
class Verdict:
    """One message counted against a rate: may it go ahead, and if not, is this the burst's first refusal."""

    wait: int | None
    """None: within the rate; else whole seconds until another message would be."""
    warn: bool = False
    """The first refusal since the last message let through: say "slow down" once, not on every message."""


class RateLimiter:
    """A sliding window per subject (a user, a chat). The windows live in the database, not in this process,
    so several Parley processes behind one load balancer count the same messages: a burst spread over them is
    one burst. Each hit is one short transaction holding that window's lock (storage/limits.py)."""

    def __init__(self, rate: Rate, store: RateStore, scope: str) -> None:
        self.rate = rate
        self.store = store
        self.scope = scope

    async def hit(self, subject: int, now: float | None = None) -> Verdict:
        """Count one message of `subject`'s, unless the window is full."""
        now = time.time() if now is None else now  # wall-clock time: the processes may be on several machines
        try:
            return await self._hit(subject, now)
        except Exception:  # a database refusing writes (a full disk): let it through, the job row will tell
            log.exception("%s=%s: the rate window could not be read or written; not limited", self.scope, subject)
            return Verdict(None)

    async def _hit(self, subject: int, now: float) -> Verdict:
        period, limit = self.rate.period, self.rate.limit
        async with self.store.window(self.scope, subject) as window:
            recent = [hit for hit in window.hits if hit > now - period]
            if len(recent) < limit:
                window.hits = [*recent, now][-limit:]
                window.warned = False
                window.expires_at = now + period
                return Verdict(None)
            window.hits = recent
            warn, window.warned = not window.warned, True
            window.expires_at = recent[-1] + period
            return Verdict(max(1, math.ceil(recent[0] + period - now)), warn)
