"""The usage ledger: one row per API call, with its tokens by kind, its model, purpose and cost.

Kept apart from the conversation tables: the ledger outlives turns (retention deletes what was said, not
what it cost), and /forget pseudonymises it instead of deleting it, so totals and budgets stay true.
Beside it, the holds: estimates of calls in progress, counted against the budgets until their real cost is
in the ledger, in the database so that every process sees every other's.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from storage.connection import Connection, Database
from storage.records import Usage

PURPOSES = ("reply", "transcription", "summary")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    user_id: int
    chat_id: int
    purpose: str  # one of PURPOSES
    usage: Usage
    cost_usd: float
    audio_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class ModelTotals:
    """Tokens and cost of some calls of one model (as the API named it: snapshots stay apart)."""

    model: str
    calls: int = 0
    text_in: int = 0
    audio_in: int = 0
    cached: int = 0
    text_out: int = 0
    audio_out: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.text_in + self.audio_in + self.cached + self.text_out + self.audio_out

    @property
    def audio_tokens(self) -> int:
        return self.audio_in + self.audio_out


@dataclass(frozen=True, slots=True)
class UserSpend:
    user_id: int
    name: str | None
    calls: int
    cost_usd: float


_TOTALS = """COUNT(*), COALESCE(SUM(prompt_text_tokens), 0), COALESCE(SUM(prompt_audio_tokens), 0),
             COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(completion_text_tokens), 0),
             COALESCE(SUM(completion_audio_tokens), 0), COALESCE(SUM(cost_usd), 0.0)"""


FORGOTTEN_SPEND_DAYS = 32
"""Long enough for any daily or monthly budget period to still see it, and no longer."""


async def _spent(db: Connection, since: float, *, user_id: int | None, forgotten_key: int | None) -> float:
    sql = "SELECT COALESCE(SUM(cost_usd), 0.0) FROM usage_ledger WHERE created_at >= ?"
    params: tuple[float | int, ...] = (since,)
    if user_id is not None:
        sql = (
            "SELECT COALESCE(SUM(cost_usd), 0.0) FROM (SELECT cost_usd FROM usage_ledger"
            " WHERE created_at >= ? AND user_id = ? UNION ALL SELECT cost_usd FROM forgotten_spend"
            " WHERE created_at >= ? AND user_id = ?) AS spent"
        )
        key = forgotten_key if forgotten_key is not None else user_id
        params = (since, user_id, since, key)
    row = await db.fetch_one(sql, params)
    return float(row[0]) if row else 0.0


async def _held(db: Connection, now: float, *, user_id: int | None) -> float:
    sql, params = "SELECT COALESCE(SUM(amount_usd), 0.0) FROM spend_holds WHERE expires_at > ?", [now]
    if user_id is not None:
        sql, params = sql + " AND user_id = ?", [now, user_id]
    row = await db.fetch_one(sql, params)
    return float(row[0]) if row else 0.0


class BudgetView:
    """The ledger and the holds inside one budget check's transaction (see UsageStore.budget)."""

    def __init__(self, tx: Connection) -> None:
        self._tx = tx

    async def spent(self, since: float, *, user_id: int | None = None, forgotten_key: int | None = None) -> float:
        return await _spent(self._tx, since, user_id=user_id, forgotten_key=forgotten_key)

    async def held(self, now: float, *, user_id: int | None = None) -> float:
        return await _held(self._tx, now, user_id=user_id)

    async def hold(self, user_id: int, amount: float, *, now: float, until: float) -> int:
        """Hold `amount` for `user_id` until `until` at the latest; the hold's id (for releasing it)."""
        hold_id = await self._tx.insert(
            "INSERT INTO spend_holds (user_id, amount_usd, created_at, expires_at) VALUES (?, ?, ?, ?) RETURNING id",
            (user_id, amount, now, until),
        )
        assert hold_id is not None
        return hold_id


class UsageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, entry: LedgerEntry, *, now: float | None = None) -> None:
        u = entry.usage
        cached = min(u.cached_tokens, max(0, u.prompt_tokens - u.prompt_audio_tokens))
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO usage_ledger (user_id, chat_id, model, purpose, prompt_text_tokens,
                       prompt_audio_tokens, cached_tokens, completion_text_tokens, completion_audio_tokens,
                       audio_seconds, cost_usd, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    entry.user_id,
                    entry.chat_id,
                    u.model,
                    entry.purpose,
                    max(0, u.prompt_tokens - u.prompt_audio_tokens - cached),
                    u.prompt_audio_tokens,
                    cached,
                    max(0, u.completion_tokens - u.completion_audio_tokens),
                    u.completion_audio_tokens,
                    entry.audio_seconds,
                    entry.cost_usd,
                    time.time() if now is None else now,
                ),
            )

    async def spent(self, since: float, *, user_id: int | None = None, forgotten_key: int | None = None) -> float:
        """USD recorded from `since` on, for one user or (None) for everyone. A user's spend from before
        /forget still counts against their budgets this month: `forgotten_key` is what it is kept under."""
        return await _spent(self._db, since, user_id=user_id, forgotten_key=forgotten_key)

    async def held(self, now: float, *, user_id: int | None = None) -> float:
        """USD held for calls in progress (in any process), for one user or (None) for everyone."""
        return await _held(self._db, now, user_id=user_id)

    @contextlib.asynccontextmanager
    async def budget(self, name: str) -> AsyncIterator[BudgetView]:
        """The ledger and the holds, read and held under the budget lock `name` (a transaction): every process
        checking the same budget waits its turn, so two calls cannot both take the room left for one."""
        async with self._db.transaction() as tx:
            await tx.lock(f"budget:{name}")
            yield BudgetView(tx)

    async def release(self, hold_id: int) -> None:
        """The call's real cost is in the ledger (or it failed): its hold goes. Twice is harmless."""
        async with self._db.transaction() as tx:
            await tx.execute("DELETE FROM spend_holds WHERE id = ?", (hold_id,))

    async def prune_holds(self, now: float) -> int:
        """Delete holds that ran out (their process died before releasing them)."""
        async with self._db.transaction() as tx:
            return await tx.execute("DELETE FROM spend_holds WHERE expires_at <= ?", (now,))

    async def by_model(self, *, since: float = 0.0, user_id: int | None = None) -> list[ModelTotals]:
        """Totals per model, most expensive first."""
        where, params = "created_at >= ?", [since]
        if user_id is not None:
            where, params = where + " AND user_id = ?", [since, user_id]
        rows = await self._db.fetch_all(
            f"SELECT model, {_TOTALS} FROM usage_ledger WHERE {where} GROUP BY model ORDER BY 8 DESC",
            tuple(params),
        )
        return [
            ModelTotals(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]), int(row[6]), row[7])
            for row in rows
        ]

    async def top_users(self, *, since: float, limit: int = 10) -> list[UserSpend]:
        rows = await self._db.fetch_all(
            """SELECT l.user_id, COALESCE('@' || u.username, u.first_name), COUNT(*), SUM(l.cost_usd)
               FROM usage_ledger l LEFT JOIN users u ON u.user_id = l.user_id
               WHERE l.created_at >= ? GROUP BY l.user_id, u.username, u.first_name ORDER BY 4 DESC LIMIT ?""",
            (since, limit),
        )
        return [UserSpend(user, name, int(calls), float(cost)) for user, name, calls, cost in rows]

    async def cost_by_quarter_hour(self, *, since: float) -> list[tuple[float, float]]:
        """(start of each 15-minute slot, USD) from `since`: fine enough to add up into days in any time
        zone (every UTC offset is a multiple of 15 minutes), coarse enough to stay a few thousand rows."""
        rows = await self._db.fetch_all(
            """SELECT CAST(created_at / 900 AS INTEGER) * 900, SUM(cost_usd) FROM usage_ledger
               WHERE created_at >= ? GROUP BY 1 ORDER BY 1""",
            (since,),
        )
        return [(float(slot), float(cost)) for slot, cost in rows]

    async def costs_in_order(self) -> list[tuple[str, float]]:
        """(purpose, USD) of every ledger entry, in the order they were recorded."""
        rows = await self._db.fetch_all("SELECT purpose, cost_usd FROM usage_ledger ORDER BY created_at, id")
        return [(str(purpose), float(cost)) for purpose, cost in rows]

    async def rows_of(self, user_id: int) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM usage_ledger WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    @staticmethod
    async def pseudonymise(
        tx: Connection, user_id: int, *, forgotten_key: int, day_of: Callable[[float], float]
    ) -> int:
        """/forget: the user's rows get one random negative id (their private chat too; a group's id is
        dropped), so spend totals stay and nothing points back at the person. What their budgets still
        need this month is kept apart as one sum per day under `forgotten_key` (a keyed hash of the id whose
        key is not in the database): no exact cost or time to match against the ledger, no id to join on.
        Returns the ledger rows changed."""
        pseudonym = -(secrets.randbelow(2**62) + 1)
        recent = await tx.fetch_all(
            "SELECT cost_usd, created_at FROM usage_ledger WHERE user_id = ? AND created_at >= ?",
            (user_id, time.time() - FORGOTTEN_SPEND_DAYS * 86400),
        )
        days: dict[float, float] = {}
        for cost, at in recent:
            days[day_of(float(at))] = days.get(day_of(float(at)), 0.0) + float(cost)
        for day, cost in sorted(days.items()):
            await tx.execute(
                "INSERT INTO forgotten_spend (user_id, cost_usd, created_at) VALUES (?, ?, ?)",
                (forgotten_key, cost, day),
            )
        return await tx.execute(
            """UPDATE usage_ledger SET chat_id = CASE WHEN chat_id = user_id THEN CAST(? AS BIGINT) ELSE NULL END,
                   user_id = ?
               WHERE user_id = ?""",
            (pseudonym, pseudonym, user_id),
        )
