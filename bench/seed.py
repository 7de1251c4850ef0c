"""A large database made quickly: the schema by Parley's own migrations, the rows by storage.bulk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

from storage import Storage
from storage.bulk import ConversationRow, FinishedJobRow, TurnRow, UserRow, fill

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
    counts = fill(
        path,
        users=(UserRow(FIRST_USER + u, f"User {u}", now - 3600, now - 60) for u in range(users)),
        conversations=(ConversationRow(u + 1, FIRST_USER + u, FIRST_USER + u, now - 3600) for u in range(users)),
        turns=_turns(users, turns_per_user, now),
        jobs=(
            FinishedJobRow(
                FIRST_USER + u,
                f"message:{FIRST_MESSAGE + m}",
                FIRST_MESSAGE + m,
                "converse",
                now - 60,
                now - 60,
                now - 60,
            )
            for u in range(users)
            for m in range(0, turns_per_user, 2)
        ),
    )
    return {
        "users": counts["users"],
        "turns": counts["turns"],
        "seconds": round(time.perf_counter() - started, 2),
        "mb": round(path.stat().st_size / 1e6, 1),
    }


def _turns(users: int, per_user: int, now: float) -> Iterator[TurnRow]:
    for u in range(users):
        user_id = FIRST_USER + u
        for t in range(per_user):
            mine = t % 2 == 0
            yield TurnRow(
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
