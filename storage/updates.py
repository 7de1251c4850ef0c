"""The updates table: which of Telegram's updates were already taken in, by `update_id`.

Behind a load balancer Telegram's webhook reaches any of several processes, and it posts an update again
when an answer was slow or lost, sometimes to another process. The first to record an update's id takes it
in; every other copy finds the id there (a primary key, so the database decides even when two copies
arrive at once) and is dropped. Telegram keeps an undelivered update for a day at most, so ids older than
`KEEP_SECONDS` can never come back and are pruned as new ones arrive.
"""

from __future__ import annotations

import time

from storage.connection import Database

KEEP_SECONDS = 2 * 24 * 3600.0
"""Twice the day Telegram keeps an update it could not deliver."""
PRUNE_EVERY = 1000
"""Every 1000th update id prunes what is older than KEEP_SECONDS (ids come one after another)."""


class UpdateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, update_id: int, *, now: float | None = None) -> bool:
        """Take in an update: True for its first copy, False when it was recorded already (by any process)."""
        now = time.time() if now is None else now
        async with self._db.transaction() as tx:
            new = await tx.insert(
                "INSERT INTO updates (update_id, received_at) VALUES (?, ?) ON CONFLICT (update_id) DO NOTHING "
                "RETURNING update_id",
                (update_id, now),
            )
            if new is not None and update_id % PRUNE_EVERY == 0:
                await tx.execute("DELETE FROM updates WHERE received_at < ?", (now - KEEP_SECONDS,))
        return new is not None
