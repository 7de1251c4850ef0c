"""Results worth not paying for twice: /speak's sent voice by (text, voice, model) hash, transcripts by the
file's unique id. Retention prunes it; /forget deletes a user's entries."""

from __future__ import annotations

import time

from storage.connection import Database


class CacheStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, key: str) -> str | None:
        row = await self._db.fetch_one("SELECT value FROM tool_cache WHERE key = ?", (key,))
        return row[0] if row else None

    async def put(self, key: str, value: str, *, user_id: int | None) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO tool_cache (key, value, user_id, created_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at""",
                (key, value, user_id, time.time()),
            )
