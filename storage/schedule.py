"""Scheduled work that must run once across every process sharing the database: each process's timer may
fire, and only the one that claims the occurrence (the slot) does the work.

A claim is one `INSERT … ON CONFLICT DO UPDATE … WHERE` on the task's row that moves its slot forward and
returns the row only if it did: on PostgreSQL a second claimer of the same slot waits for the first one's
row lock and then finds the slot taken; on SQLite writes are one at a time anyway. A slot earlier than the
one recorded (a process whose clock is behind) is never claimed again.
"""

from __future__ import annotations

import os
import socket
import time

from storage.connection import Database

THIS_PROCESS = f"{socket.gethostname()}:{os.getpid()}"
"""Who claimed a slot, for someone reading the table: the machine and the process."""


class ScheduleStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def claim(self, task: str, slot: float, *, claimer: str = THIS_PROCESS, now: float | None = None) -> bool:
        """True for the one caller (in any process) that claims `slot` of `task` first: it does the work."""
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                """INSERT INTO scheduled_runs (task, slot, claimed_by, claimed_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (task) DO UPDATE
                   SET slot = excluded.slot, claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at
                   WHERE scheduled_runs.slot < excluded.slot
                   RETURNING task""",
                (task, slot, claimer, time.time() if now is None else now),
            )
        return row is not None

    async def last(self, task: str) -> float | None:
        """The latest slot of `task` claimed, if any."""
        row = await self._db.fetch_one("SELECT slot FROM scheduled_runs WHERE task = ?", (task,))
        return float(row[0]) if row else None
