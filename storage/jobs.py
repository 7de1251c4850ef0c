"""The durable job table: what was accepted, what is running, what is finished.

A job row is written before any work starts; `(chat_id, source)` is unique, so an update Telegram
delivers twice (after a crash, before its offset was confirmed) is recognised and never answered twice.

Every state change is one statement on one row (`UPDATE … WHERE state IN … RETURNING`), so it stays
correct when several processes share the table: claiming with a lease is one more such statement (the
oldest unfinished job of a chat, `FOR UPDATE SKIP LOCKED` on PostgreSQL) beside `start`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

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


_COLUMNS = "id, chat_id, source, message_id, kind, payload, state, attempts, error, replied_at IS NOT NULL"


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
    )


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self, *, chat_id: int, source: str, kind: str, payload: dict[str, Any], message_id: int | None = None
    ) -> int | None:
        """Record a new job; None when this (chat, source) was already accepted."""
        now = time.time()
        async with self._db.transaction() as tx:
            return await tx.insert(
                """INSERT INTO jobs (chat_id, source, message_id, kind, payload, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (chat_id, source) DO NOTHING RETURNING id""",
                (chat_id, source, message_id, kind, json.dumps(payload, separators=(",", ":")), now, now),
            )

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

    async def finish(self, job_id: int, *, ok: bool, error: str | None = None) -> None:
        """A done job keeps its row (to recognise redeliveries) but not the message it carried;
        a failed one keeps its payload so the Retry button can run it again."""
        async with self._db.transaction() as tx:
            if ok:
                await tx.execute(
                    "UPDATE jobs SET state = 'done', payload = '{}', error = NULL, updated_at = ? WHERE id = ?",
                    (time.time(), job_id),
                )
            else:
                await tx.execute(
                    "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE id = ?",
                    (error, time.time(), job_id),
                )

    async def requeue(self, job_id: int, chat_id: int) -> JobRow | None:
        """Put a failed job back in the queue (the Retry button); None unless it is this chat's failed job."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""UPDATE jobs SET state = 'queued', error = NULL, replied_at = NULL, updated_at = ?
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
