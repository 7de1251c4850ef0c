"""A large database made quickly: the schema by Parley's own migrations, the rows by executemany."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from storage import Storage

USER_LINE = "Could you remind me what we said about the trip to the mountains next weekend, and the trains?"
BOT_LINE = "Of course. We said you'd take the early train on Saturday, pack light, and check the weather on Friday."
FIRST_USER = 5_000_000
FIRST_MESSAGE = 1_000_000
"""Seeded message ids start high, so the lab's new messages (numbered from 1) are never taken for
redeliveries of seeded ones."""


async def seed(path: Path, *, users: int, turns_per_user: int) -> dict[str, float]:
    """Create `path` with `users` people, each with one open conversation of `turns_per_user` turns and a
    finished job per message they sent. Recent timestamps, so start-up retention keeps every row."""
    storage = await Storage.open(path)  # the schema, by Parley's own migrations
    await storage.close()
    return await asyncio.to_thread(_fill, path, users, turns_per_user)


def _fill(path: Path, users: int, turns_per_user: int) -> dict[str, float]:
    started = time.perf_counter()
    now = time.time()
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        with db:
            db.executemany(
                "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
                ((FIRST_USER + u, f"User {u}", now - 3600, now - 60) for u in range(users)),
            )
            db.executemany(
                "INSERT INTO conversations (id, chat_id, user_id, started_at) VALUES (?, ?, ?, ?)",
                ((u + 1, FIRST_USER + u, FIRST_USER + u, now - 3600) for u in range(users)),
            )
            db.executemany(
                """INSERT INTO turns (conversation_id, chat_id, user_id, message_id, role, kind, text,
                       audio_seconds, model, prompt_tokens, completion_tokens, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                _turns(users, turns_per_user, now),
            )
            db.executemany(
                """INSERT INTO jobs (chat_id, source, message_id, kind, payload, state, attempts, replied_at,
                       created_at, updated_at)
                   VALUES (?, ?, ?, 'converse', '{}', 'done', 1, ?, ?, ?)""",
                (
                    (FIRST_USER + u, f"message:{FIRST_MESSAGE + m}", FIRST_MESSAGE + m, now - 60, now - 60, now - 60)
                    for u in range(users)
                    for m in range(0, turns_per_user, 2)
                ),
            )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counts = {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("users", "turns")}
    finally:
        db.close()
    return {
        "users": counts["users"],
        "turns": counts["turns"],
        "seconds": round(time.perf_counter() - started, 2),
        "mb": round(path.stat().st_size / 1e6, 1),
    }


def _turns(users: int, per_user: int, now: float) -> Iterator[tuple]:
    for u in range(users):
        user_id = FIRST_USER + u
        for t in range(per_user):
            mine = t % 2 == 0
            yield (
                u + 1,
                user_id,
                user_id,
                FIRST_MESSAGE + t if mine else None,
                "user" if mine else "assistant",
                "voice",
                USER_LINE if mine else BOT_LINE,
                5.0,
                None if mine else "gpt-audio-2025-08-28",
                None if mine else 900,
                None if mine else 400,
                now - 3600 + t,
            )
