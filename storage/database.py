"""All of Parley's SQL. The rest of the program calls these methods and never writes a query.

One aiosqlite connection in autocommit mode; writes go through `transaction()`, which serialises them
with a lock so concurrent chats never interleave half-finished transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from storage.context import ContextStore
from storage.groups import GroupStore
from storage.jobs import JobStore
from storage.migrations import migrate
from storage.privacy import PrivacyStore
from storage.usage import UsageStore


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one model call, as the API reports it."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_audio_tokens: int = 0
    completion_audio_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class NewTurn:
    chat_id: int
    user_id: int
    role: str  # "user" | "assistant"
    kind: str  # "text" | "voice"
    text: str
    message_id: int | None = None
    audio_seconds: float | None = None
    usage: Usage | None = None
    thread_id: int = 0  # a forum topic has its own conversation


@dataclass(frozen=True, slots=True)
class StoredTurn:
    id: int
    conversation_id: int
    role: str
    kind: str
    text: str
    message_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class ForgetReport:
    turns: int
    conversations: int
    user_rows: int


async def backup_file(source: Path | str, target: Path | str) -> None:
    """A consistent copy of a live database (SQLite's online backup API), private to its owner like the
    original, made without migrating or otherwise touching the source."""
    target = Path(target)
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    origin = await aiosqlite.connect(f"file:{Path(source)}?mode=ro", uri=True)
    try:
        destination = await aiosqlite.connect(target)
        try:
            await origin.backup(destination)
        finally:
            await destination.close()
    finally:
        await origin.close()


USER_SETTINGS = frozenset({"voice", "reply_mode", "model"})


class Storage:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()
        self.jobs = JobStore(self)
        self.privacy = PrivacyStore(self)
        self.groups = GroupStore(self)
        self.usage, self.context = UsageStore(self), ContextStore(self)

    @classmethod
    async def open(cls, path: Path | str) -> Storage:
        """Open (creating with owner-only permissions if new), tune and migrate the database."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA secure_delete=ON")  # deleted content is overwritten, not left in free pages
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    async def close(self) -> None:
        await self._db.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            began = False
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                began = True
                yield self._db
            except BaseException:
                if began or self._db.in_transaction:  # a cancel can land just after BEGIN took effect
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def fetch_one(self, sql: str, params: tuple = ()) -> tuple | None:
        async with self._db.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: tuple = ()) -> list[tuple]:
        async with self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def touch_user(
        self, user_id: int, *, first_name: str | None, username: str | None, language_code: str | None
    ) -> None:
        now = time.time()
        async with self.transaction() as db:
            await db.execute(
                """INSERT INTO users (user_id, first_name, username, language_code, created_at, last_seen_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (user_id) DO UPDATE SET first_name = excluded.first_name,
                       username = excluded.username, language_code = excluded.language_code,
                       last_seen_at = excluded.last_seen_at""",
                (user_id, first_name, username, language_code, now, now),
            )

    async def user_setting(self, user_id: int, name: str) -> str | None:
        """One of a user's persisted choices (voice, reply mode, model); None when never chosen."""
        if name not in USER_SETTINGS:
            raise ValueError(name)
        row = await self.fetch_one(f"SELECT {name} FROM users WHERE user_id = ?", (user_id,))
        return row[0] if row else None

    async def set_user_setting(self, user_id: int, name: str, value: str) -> None:
        if name not in USER_SETTINGS:  # the column name is spliced into SQL: only these, ever
            raise ValueError(name)
        now = time.time()
        async with self.transaction() as db:
            await db.execute(
                f"""INSERT INTO users (user_id, {name}, created_at, last_seen_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (user_id) DO UPDATE SET {name} = excluded.{name}""",
                (user_id, value, now, now),
            )

    async def get_voice(self, user_id: int) -> str | None:
        return await self.user_setting(user_id, "voice")

    async def set_voice(self, user_id: int, voice: str) -> None:
        await self.set_user_setting(user_id, "voice", voice)

    async def get_reply_mode(self, user_id: int) -> str | None:
        return await self.user_setting(user_id, "reply_mode")

    async def set_reply_mode(self, user_id: int, mode: str) -> None:
        await self.set_user_setting(user_id, "reply_mode", mode)

    # --- results worth not paying for twice -------------------------------------------------------

    async def cached(self, key: str) -> str | None:
        row = await self.fetch_one("SELECT value FROM tool_cache WHERE key = ?", (key,))
        return row[0] if row else None

    async def cache(self, key: str, value: str, *, user_id: int | None) -> None:
        async with self.transaction() as db:
            await db.execute(
                """INSERT INTO tool_cache (key, value, user_id, created_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value, created_at = excluded.created_at""",
                (key, value, user_id, time.time()),
            )

    # --- conversations and turns -------------------------------------------------------------------

    async def _open_conversation(
        self, db: aiosqlite.Connection, chat_id: int, user_id: int, thread_id: int = 0
    ) -> int:
        async with db.execute(
            """SELECT id FROM conversations WHERE chat_id = ? AND user_id = ? AND thread_id = ? AND ended_at IS NULL
               ORDER BY id DESC LIMIT 1""",
            (chat_id, user_id, thread_id),
        ) as cursor:
            row = await cursor.fetchone()
        if row:
            return int(row[0])
        cursor = await db.execute(
            "INSERT INTO conversations (chat_id, user_id, thread_id, started_at) VALUES (?, ?, ?, ?)",
            (chat_id, user_id, thread_id, time.time()),
        )
        return int(cursor.lastrowid or 0)

    async def reset_conversation(self, chat_id: int, user_id: int, thread_id: int = 0) -> bool:
        """End the open conversation; the next turn starts a new one. True if there was one."""
        async with self.transaction() as db:
            cursor = await db.execute(
                """UPDATE conversations SET ended_at = ?
                   WHERE chat_id = ? AND user_id = ? AND thread_id = ? AND ended_at IS NULL""",
                (time.time(), chat_id, user_id, thread_id),
            )
            return cursor.rowcount > 0

    async def add_turns(self, turns: list[NewTurn], *, replacing_message: int | None = None) -> list[int]:
        """Store turns in one transaction, in the open conversation of their (chat, user); with
        `replacing_message`, first drop the turns an earlier attempt stored for that message."""
        ids: list[int] = []
        async with self.transaction() as db:
            if replacing_message is not None and turns:
                await db.execute(
                    "DELETE FROM turns WHERE chat_id = ? AND user_id = ? AND message_id = ?",
                    (turns[0].chat_id, turns[0].user_id, replacing_message),
                )
            for turn in turns:
                conversation_id = await self._open_conversation(db, turn.chat_id, turn.user_id, turn.thread_id)
                usage = turn.usage
                cursor = await db.execute(
                    """INSERT INTO turns (conversation_id, chat_id, user_id, message_id, role, kind, text,
                           audio_seconds, model, prompt_tokens, completion_tokens, prompt_audio_tokens,
                           completion_audio_tokens, cached_tokens, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        conversation_id,
                        turn.chat_id,
                        turn.user_id,
                        turn.message_id,
                        turn.role,
                        turn.kind,
                        turn.text,
                        turn.audio_seconds,
                        usage.model if usage else None,
                        usage.prompt_tokens if usage else None,
                        usage.completion_tokens if usage else None,
                        usage.prompt_audio_tokens if usage else None,
                        usage.completion_audio_tokens if usage else None,
                        usage.cached_tokens if usage else None,
                        time.time(),
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    async def recent_turns(self, chat_id: int, user_id: int, limit: int, thread_id: int = 0) -> list[StoredTurn]:
        """The last `limit` turns of the open conversation, oldest first."""
        if limit <= 0:
            return []
        async with self._db.execute(
            """SELECT t.id, t.conversation_id, t.role, t.kind, t.text, t.message_id, t.created_at
               FROM turns t JOIN conversations c ON c.id = t.conversation_id
               WHERE c.chat_id = ? AND c.user_id = ? AND c.thread_id = ? AND c.ended_at IS NULL
               ORDER BY t.id DESC LIMIT ?""",
            (chat_id, user_id, thread_id, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [StoredTurn(*row) for row in reversed(rows)]

    async def set_turn_text(self, turn_id: int, text: str, usage: Usage | None = None) -> None:
        """Fill in a turn's words once known (a voice note's transcript arrives after the reply)."""
        async with self.transaction() as db:
            await db.execute(
                """UPDATE turns SET text = ?, model = COALESCE(?, model),
                       prompt_tokens = COALESCE(?, prompt_tokens), completion_tokens = COALESCE(?, completion_tokens),
                       prompt_audio_tokens = COALESCE(?, prompt_audio_tokens)
                   WHERE id = ?""",
                (
                    text,
                    usage.model if usage else None,
                    usage.prompt_tokens if usage else None,
                    usage.completion_tokens if usage else None,
                    usage.prompt_audio_tokens if usage else None,
                    turn_id,
                ),
            )

    async def count_turns(self, user_id: int) -> int:
        row = await self.fetch_one("SELECT COUNT(*) FROM turns WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def forget_user(self, user_id: int) -> ForgetReport:
        """Delete everything stored about a user: turns, conversations, settings."""
        async with self.transaction() as db:
            turns = await db.execute("DELETE FROM turns WHERE user_id = ?", (user_id,))
            conversations = await db.execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))
            users = await db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            await db.execute("DELETE FROM kept_audio WHERE user_id = ?", (user_id,))
            await UsageStore.pseudonymise(db, user_id)  # spend totals stay, the person does not
            await db.execute("DELETE FROM group_messages WHERE user_id = ?", (user_id,))
            await db.execute("DELETE FROM tool_cache WHERE user_id = ?", (user_id,))
            # Job rows stay (they recognise redelivered updates) but lose the messages they carried.
            await db.execute(
                "UPDATE jobs SET payload = '{}' WHERE chat_id = ? AND state IN ('done', 'failed')", (user_id,)
            )
            report = ForgetReport(turns.rowcount, conversations.rowcount, users.rowcount)
        await self.checkpoint()
        return report

    async def checkpoint(self) -> None:
        """Push deletions out of the write-ahead log, so removed content survives in no file."""
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
