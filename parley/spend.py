"""Spend control: every call's cost into the ledger, and budgets checked before a call is made.

A budget check reserves the call's estimated cost under a lock (spent + reserved + estimate must stay
within each limit), so two requests arriving together cannot both slip under a limit that has room for
one. The reservation is released once the real cost is in the ledger. Both the lock and the reservations
are in the database (storage/usage.py), so they hold across every process sharing it; a reservation whose
process died runs out after HOLD_SECONDS. Without any budget configured, nothing is reserved at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from parley.errors import ParleyError
from parley.prices import PriceTable
from storage import Usage
from storage.usage import BudgetView, LedgerEntry, ModelTotals, UsageStore

log = logging.getLogger(__name__)

EPSILON = 1e-9
"""Costs are floats: a spend equal to its limit, give or take rounding, is within it."""

HOLD_SECONDS = 900.0
"""How long a reservation counts at most: longer than any call (or a turn's rounds of calls) takes, so only a
reservation whose process died before releasing it ever runs out."""

Clock = Callable[[], float]
UTC = ZoneInfo("UTC")
_SCOPES = ("daily", "monthly", "global")  # on a tie, the wider limit is the one to name


@dataclass(frozen=True, slots=True)
class Limits:
    """USD; None means no limit."""

    user_daily: float | None = None
    user_monthly: float | None = None
    monthly: float | None = None  # everyone together

    @property
    def any(self) -> bool:
        return any(v is not None for v in (self.user_daily, self.user_monthly, self.monthly))


@dataclass(frozen=True, slots=True)
class Allowance:
    """One limit as it stands: what it is, what is spent (and reserved), when it starts over."""

    scope: str  # "daily" | "monthly" (the user's own) | "global" (the bot's monthly)
    limit: float
    used: float
    resets_at: datetime

    @property
    def left(self) -> float:
        return max(0.0, self.limit - self.used)


class BudgetExceeded(ParleyError):
    """A call would cross a budget: nothing was called. `allowance` is the limit that stops it longest."""

    def __init__(self, allowance: Allowance, estimate: float) -> None:
        super().__init__(f"{allowance.scope} budget: {allowance.left:.4f} left, call estimated at {estimate:.4f}")
        self.allowance = allowance
        self.estimate = estimate


@dataclass(frozen=True, slots=True)
class Reservation:
    id: int
    user_id: int
    amount: float


def period_starts(now: float, zone: ZoneInfo) -> tuple[datetime, datetime, datetime, datetime]:
    """(start of today, start of tomorrow, start of this month, start of next month), local to `zone`."""
    local = datetime.fromtimestamp(now, zone)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    next_day = day + timedelta(days=1)  # wall-clock arithmetic: midnight, whatever DST does
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return day, next_day, month, next_month


class Spend:
    """Prices, the ledger and the budgets: what the engine asks before and tells after each call."""

    def __init__(
        self,
        store: UsageStore,
        prices: PriceTable,
        *,
        limits: Limits = Limits(),
        zone: ZoneInfo = UTC,
        exempt: Callable[[int], bool] = lambda _user_id: False,
        now: Clock = time.time,
        secret: bytes | None = None,
    ) -> None:
        self.store = store
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self.prices = prices
        self.limits = limits
        self.zone = zone
        self.exempt = exempt
        self.now = now

    def forgotten_key(self, user_id: int) -> int:
        """What a user's spend is kept under after /forget: a keyed hash of their id. The key (the bot's
        token in Parley) is never in the database, so the database alone cannot tell whose it is."""
        digest = hmac.new(self._secret, f"forgotten-spend:{user_id}".encode(), hashlib.sha256).digest()
        return -(int.from_bytes(digest[:8], "big") % 2**62) - 1

    def day_of(self, at: float) -> float:
        """The start of the budgets' day (in their timezone) that `at` falls in."""
        return datetime.fromtimestamp(at, self.zone).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()

    # --- after a call ------------------------------------------------------------------------------

    async def record(
        self, *, user_id: int, chat_id: int, purpose: str, usage: Usage, audio_seconds: float | None = None
    ) -> float:
        """Put one call in the ledger at today's prices; returns its cost in USD."""
        cost = self.prices.cost(usage, audio_seconds=audio_seconds)
        await self.store.record(LedgerEntry(user_id, chat_id, purpose, usage, cost, audio_seconds), now=self.now())
        return cost

    async def totals(self, user_id: int | None = None) -> list[tuple[str, list[ModelTotals]]]:
        """Per model, today, this month and all time (days and months in the budgets' timezone); one user's,
        or everyone's when `user_id` is None."""
        day, _, month, _ = period_starts(self.now(), self.zone)
        return [
            (label, await self.store.by_model(since=since, user_id=user_id))
            for label, since in (("Today", day.timestamp()), ("This month", month.timestamp()), ("All time", 0.0))
        ]

    # --- before a call -----------------------------------------------------------------------------

    async def allowances(self, user_id: int) -> list[Allowance]:
        """Every configured limit for this user, with what is spent and held against it."""
        return await self._allowances(self.store, user_id, self.now())

    async def _allowances(self, ledger: BudgetView | UsageStore, user_id: int, now: float) -> list[Allowance]:
        day, next_day, month, next_month = period_starts(now, self.zone)
        own = self.limits.user_daily is not None or self.limits.user_monthly is not None
        held_user = await ledger.held(now, user_id=user_id) if own else 0.0
        key = self.forgotten_key(user_id)
        result: list[Allowance] = []
        if self.limits.user_daily is not None:
            spent = await ledger.spent(day.timestamp(), user_id=user_id, forgotten_key=key)
            result.append(Allowance("daily", self.limits.user_daily, spent + held_user, next_day))
        if self.limits.user_monthly is not None:
            spent = await ledger.spent(month.timestamp(), user_id=user_id, forgotten_key=key)
            result.append(Allowance("monthly", self.limits.user_monthly, spent + held_user, next_month))
        if self.limits.monthly is not None:
            spent = await ledger.spent(month.timestamp())
            result.append(Allowance("global", self.limits.monthly, spent + await ledger.held(now), next_month))
        return result

    async def reserve(self, user_id: int, estimate: float) -> Reservation:
        """Hold `estimate` against every budget, or raise BudgetExceeded (and hold nothing)."""
        estimate = max(0.0, estimate)
        if not self.limits.any:
            return Reservation(0, user_id, estimate)  # nothing to hold it against: nothing stored
        now = self.now()
        # Check and hold as one step under one lock, in every process: the bot's when it has a budget of its
        # own (everyone's holds count against it), else the person's.
        lock = "everyone" if self.limits.monthly is not None else f"user:{user_id}"
        async with self.store.budget(lock) as ledger:
            if not self.exempt(user_id):
                allowances = await self._allowances(ledger, user_id, now)
                over = [a for a in allowances if a.used + estimate > a.limit + EPSILON]
                if over:
                    raise BudgetExceeded(max(over, key=lambda a: (a.resets_at, _SCOPES.index(a.scope))), estimate)
            hold_id = await ledger.hold(user_id, estimate, now=now, until=now + HOLD_SECONDS)
        return Reservation(hold_id, user_id, estimate)

    @contextlib.asynccontextmanager
    async def metered(
        self, *, user_id: int, chat_id: int, estimate: float
    ) -> AsyncIterator[Callable[[str, Usage], Awaitable[float]]]:
        """For work that makes several calls (summaries, voice tools): hold the estimate against the budgets
        (or refuse before any call), give the body a recorder for each call's usage, release at the end."""
        reservation = await self.reserve(user_id, estimate)

        async def record(purpose: str, usage: Usage) -> float:
            return await self.record(user_id=user_id, chat_id=chat_id, purpose=purpose, usage=usage)

        try:
            yield record
        finally:
            await self.release(reservation)

    async def release(self, reservation: Reservation) -> None:
        """The call's real cost is in the ledger (or it failed): stop holding its estimate. Never raises (a
        database that cannot be reached now leaves the reservation to run out) and may be called twice."""
        if not reservation.id:
            return
        try:
            await self.store.release(reservation.id)
        except Exception:
            log.exception("could not release a budget reservation; it runs out in %g s", HOLD_SECONDS)

    def once(self, reservation: Reservation) -> Callable[[], Awaitable[None]]:
        """A release of `reservation` that does its work the first time it is called and nothing after."""
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                await self.release(reservation)

        return release

    async def held(self) -> float:
        """What is reserved now, in every process, for everyone."""
        return await self.store.held(self.now())
