"""A large SQLite database filled quickly, for benchmarks: rows handed in as typed tuples and written with
executemany in one transaction, outside the bot's own stores (which write a turn or a job at a time).

The schema must already be there (open the file once with `Storage.open`, which migrates it).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple


class UserRow(NamedTuple):
    user_id: int
    first_name: str
    created_at: float
    last_seen_at: float


class ConversationRow(NamedTuple):
    id: int
    chat_id: int
    user_id: int
    started_at: float


class TurnRow(NamedTuple):
    conversation_id: int
    chat_id: int
    user_id: int
    message_id: int | None
    role: str
    kind: str
    text: str
    audio_seconds: float
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    created_at: float


class FinishedJobRow(NamedTuple):
    """A job that was answered and done (what a busy bot's table is full of)."""

    chat_id: int
    source: str
    message_id: int
    kind: str
    replied_at: float
    created_at: float
    updated_at: float


def fill(
    path: Path,
    *,
    users: Iterable[UserRow],
    conversations: Iterable[ConversationRow],
    turns: Iterable[TurnRow],
    jobs: Iterable[FinishedJobRow],
) -> dict[str, int]:
    """Write the rows (synchronous: run it in a thread); return how many users and turns the file holds."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        with db:
            db.executemany(
                "INSERT INTO users (user_id, first_name, created_at, last_seen_at) VALUES (?, ?, ?, ?)", users
            )
            db.executemany(
                "INSERT INTO conversations (id, chat_id, user_id, started_at) VALUES (?, ?, ?, ?)", conversations
            )
            db.executemany(
                """INSERT INTO turns (conversation_id, chat_id, user_id, message_id, role, kind, text,
                       audio_seconds, model, prompt_tokens, completion_tokens, created_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                turns,
            )
            db.executemany(
                """INSERT INTO jobs (chat_id, source, message_id, kind, replied_at, created_at, updated_at,
                       payload, state, attempts)
                   VALUES (?, ?, ?, ?, ?, ?, ?, '{}', 'done', 1)""",
                jobs,
            )
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in ("users", "turns")}
    finally:
        db.close()
