"""The durable job table: what was accepted, what is running, what is finished, and who holds it.

A job row is written before any work starts; `(chat_id, source)` is unique, so an update Telegram
delivers twice (after a crash, before its offset was confirmed) is recognised and never answered twice.

Several processes may share the table. A process runs a job only once it has `take`n it: a lease (its name
and a time, renewed while it works) on a job whose turn it is — the oldest unfinished job of its chat's
lane (a chat's replies, or its background work), so a chat's jobs run one at a time and in order across
all processes. On PostgreSQL the row is locked `FOR UPDATE SKIP LOCKED` while it is taken, so two processes
never take the same job; on SQLite one process writes at a time anyway. A process that dies leaves leases
that run out, and its jobs become another's to take (`claimable`). Every other state change is one
statement on one row (`UPDATE … WHERE state IN … RETURNING`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from storage.connection import Database

UNFINISHED = ("queued", "working")


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    chat_id: int
    source: str
    message_id: int | None
    kind: str
    payload: dict[str, Any]
    state: str
    attempts: int
    error: str | None
    replied: bool
    lane: str = ""


class Taken(NamedTuple):
    """A job this process now holds: `started` when it is to run (its attempt counted); otherwise it was
    answered already (`row.replied`) or has used up its attempts, and only needs finishing."""

    row: JobRow
    started: bool


class Claimable(NamedTuple):
    id: int
    chat_id: int
    kind: str


_COLUMNS = "id, chat_id, source, message_id, kind, payload, state, attempts, error, replied_at IS NOT NULL, lane"

_ITS_TURN = """j.state IN ('queued', 'working') AND (j.lease_until IS NULL OR j.lease_until <= ?)
    AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.chat_id = j.chat_id AND o.lane = j.lane
                    AND o.state IN ('queued', 'working') AND o.id < j.id)"""
"""A job whose turn it is, that nobody holds: unfinished, its lease (if any) run out, and nothing older
unfinished in its chat's lane."""


def _row(row: tuple[Any, ...]) -> JobRow:
    return JobRow(
        id=row[0],
        chat_id=row[1],
        source=row[2],
        message_id=row[3],
        kind=row[4],
        payload=json.loads(row[5]),
        state=row[6],
        attempts=row[7],
        error=row[8],
        replied=bool(row[9]),
        lane=row[10],
    )


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        chat_id: int,
        source: str,
        kind: str,
        payload: dict[str, Any],
        message_id: int | None = None,
        lane: str = "",
    ) -> int | None:
        """Record a new job; None when this (chat, source) was already accepted."""
        now = time.time()
        async with self._db.transaction() as tx:
            return await tx.insert(
                """INSERT INTO jobs (chat_id, source, message_id, kind, payload, lane, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (chat_id, source) DO NOTHING RETURNING id""",
                (chat_id, source, message_id, kind, json.dumps(payload, separators=(",", ":")), lane, now, now),
            )

    async def take(self, job_id: int, *, owner: str, lease: float, max_attempts: int) -> Taken | None:
        """Hold the job for `lease` seconds if it is its turn and nobody holds it, and start it (counting the
        attempt) unless it was answered already or was started `max_attempts` times; None when it is not
        this process's to run (finished, held by another, or waiting behind its chat's older jobs)."""
        now = time.time()
        lock = " FOR UPDATE SKIP LOCKED" if self._db.dialect.name == "postgresql" else ""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""UPDATE jobs SET leased_by = ?, lease_until = ?, updated_at = ?
                    WHERE id = (SELECT j.id FROM jobs j WHERE j.id = ? AND {_ITS_TURN}{lock})
                    RETURNING {_COLUMNS}""",
                (owner, now + lease, now, job_id, now),
            )
            if row is None:
                return None
            held = _row(row)
            if held.replied or held.attempts >= max_attempts:
                return Taken(held, started=False)
            row = await tx.fetch_one(
                f"""UPDATE jobs SET state = 'working', attempts = attempts + 1 WHERE id = ? RETURNING {_COLUMNS}""",
                (job_id,),
            )
        assert row is not None
        return Taken(_row(row), started=True)

    async def renew(self, job_id: int, *, owner: str, lease: float) -> bool:
        """Extend a held job's lease (while it works); False when it is no longer held by `owner`."""
        async with self._db.transaction() as tx:
            return (
                await tx.execute(
                    """UPDATE jobs SET lease_until = ? WHERE id = ? AND leased_by = ?
                       AND state IN ('queued', 'working')""",
                    (time.time() + lease, job_id, owner),
                )
                > 0
            )

    async def release(self, owner: str | None = None) -> int:
        """Give up the leases `owner` holds on unfinished jobs (all leases: None), so they can be taken at
        once rather than when the leases run out; the jobs keep their state and attempts."""
        held = "" if owner is None else " AND leased_by = ?"
        async with self._db.transaction() as tx:
            return await tx.execute(
                f"""UPDATE jobs SET leased_by = NULL, lease_until = NULL
                    WHERE state IN ('queued', 'working') AND leased_by IS NOT NULL{held}""",
                () if owner is None else (owner,),
            )

    async def claimable(self, limit: int, *, chat_id: int | None = None, lane: str = "") -> list[Claimable]:
        """Jobs whose turn it is and that nobody holds (of every chat, or the next of one chat's lane),
        oldest first: what a process may take without waiting."""
        one_chat = "" if chat_id is None else " AND j.chat_id = ? AND j.lane = ?"
        rows = await self._db.fetch_all(
            f"SELECT j.id, j.chat_id, j.kind FROM jobs j WHERE {_ITS_TURN}{one_chat} ORDER BY j.id LIMIT ?",
            (time.time(), *(() if chat_id is None else (chat_id, lane)), limit),
        )
        return [Claimable(int(job_id), int(chat), kind) for job_id, chat, kind in rows]

    async def get(self, job_id: int) -> JobRow | None:
        row = await self._db.fetch_one(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return _row(row) if row else None

    async def start(self, job_id: int) -> JobRow | None:
        """Mark a job working (counting the attempt); None if it is no longer waiting to run."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""UPDATE jobs SET state = 'working', attempts = attempts + 1, updated_at = ?
                    WHERE id = ? AND state IN ('queued', 'working') RETURNING {_COLUMNS}""",
                (time.time(), job_id),
            )
        return _row(row) if row else None

    async def mark_replied(self, job_id: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("UPDATE jobs SET replied_at = ? WHERE id = ?", (time.time(), job_id))

    async def finish(self, job_id: int, *, ok: bool, error: str | None = None, owner: str | None = None) -> bool:
        """A done job keeps its row (to recognise redeliveries) but not the message it carried;
        a failed one keeps its payload so the Retry button can run it again. With `owner`, only while it
        holds the job (False when its lease was lost to another process, which finishes it instead)."""
        held = "" if owner is None else " AND leased_by = ?"
        tail = (job_id,) if owner is None else (job_id, owner)
        async with self._db.transaction() as tx:
            if ok:
                changed = await tx.execute(
                    f"""UPDATE jobs SET state = 'done', payload = '{{}}', error = NULL, leased_by = NULL,
                            lease_until = NULL, updated_at = ?
                        WHERE id = ?{held}""",
                    (time.time(), *tail),
                )
            else:
                changed = await tx.execute(
                    f"""UPDATE jobs SET state = 'failed', error = ?, leased_by = NULL, lease_until = NULL,
                            updated_at = ?
                        WHERE id = ?{held}""",
                    (error, time.time(), *tail),
                )
        return changed > 0

    async def requeue(self, job_id: int, chat_id: int) -> JobRow | None:
        """Put a failed job back in the queue (the Retry button); None unless it is this chat's failed job."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""UPDATE jobs SET state = 'queued', error = NULL, replied_at = NULL, leased_by = NULL,
                        lease_until = NULL, updated_at = ?
                    WHERE id = ? AND chat_id = ? AND state = 'failed' RETURNING {_COLUMNS}""",
                (time.time(), job_id, chat_id),
            )
        return _row(row) if row else None

    async def unfinished(self) -> list[JobRow]:
        """Jobs a crash or a stop left queued or working, oldest first (so each chat keeps its order)."""
        return [
            _row(row)
            for row in await self._db.fetch_all(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('queued', 'working') ORDER BY id"
            )
        ]

    async def counts(self) -> dict[str, int]:
        rows = await self._db.fetch_all("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        return {state: int(count) for state, count in rows}
