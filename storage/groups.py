"""The group log: what the bot saw in each allowed group, for summaries. Bots cannot read a chat's history,
so this is written as messages arrive; edits update it; retention prunes it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.connection import Database


@dataclass(frozen=True, slots=True)
class GroupMessage:
    chat_id: int
    message_id: int
    thread_id: int | None
    user_id: int | None
    author: str
    kind: str
    text: str | None
    transcript_state: str | None
    forwarded_from: str | None
    reply_to: int | None
    sent_at: float


@dataclass(frozen=True, slots=True)
class Digest:
    chat_id: int
    time: str  # HH:MM
    timezone: str


_COLUMNS = (
    "chat_id, message_id, thread_id, user_id, author, kind, text, transcript_state, forwarded_from, reply_to, sent_at"
)


class GroupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, message: GroupMessage) -> bool:
        """Store one message; False when it was already recorded (a redelivered update)."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                f"""INSERT INTO group_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (chat_id, message_id) DO NOTHING""",
                (
                    message.chat_id,
                    message.message_id,
                    message.thread_id,
                    message.user_id,
                    message.author,
                    message.kind,
                    message.text,
                    message.transcript_state,
                    message.forwarded_from,
                    message.reply_to,
                    message.sent_at,
                ),
            )
            return changed > 0

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE group_messages SET text = ?, edited_at = ? WHERE chat_id = ? AND message_id = ?",
                (text, time.time(), chat_id, message_id),
            )
            return changed > 0

    async def set_transcript(self, chat_id: int, message_id: int, text: str | None, *, ok: bool) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """UPDATE group_messages SET text = COALESCE(?, text), transcript_state = ?
                   WHERE chat_id = ? AND message_id = ?""",
                (text, "done" if ok else "failed", chat_id, message_id),
            )

    async def since(self, chat_id: int, since: float) -> list[GroupMessage]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND sent_at >= ? ORDER BY sent_at, message_id",
            (chat_id, since),
        )
        return [GroupMessage(*row) for row in rows]

    async def last(self, chat_id: int, count: int) -> list[GroupMessage]:
        rows = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ?
                ORDER BY sent_at DESC, message_id DESC LIMIT ?""",
            (chat_id, count),
        )
        return [GroupMessage(*row) for row in reversed(rows)]

    async def after(self, chat_id: int, message_id: int) -> list[GroupMessage]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND message_id > ? ORDER BY sent_at, message_id",
            (chat_id, message_id),
        )
        return [GroupMessage(*row) for row in rows]

    async def search(self, chat_id: int, query: str, limit: int) -> list[GroupMessage]:
        """Messages of one group containing every word of `query` (case-insensitive), newest first."""
        words = [w.lower() for w in query.split()][:8]
        if not words:
            return []
        clauses = " AND ".join("LOWER(text) LIKE ? ESCAPE '\\'" for _ in words)
        patterns = ["%" + w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for w in words]
        rows = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND text IS NOT NULL AND {clauses}
                ORDER BY sent_at DESC, message_id DESC LIMIT ?""",
            (chat_id, *patterns, limit),
        )
        return [GroupMessage(*row) for row in rows]

    async def around(self, chat_id: int, message_id: int, *, before: int, after: int) -> list[GroupMessage]:
        """The message and up to `before`/`after` of its neighbours in one group, in order."""
        earlier = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND message_id <= ?
                ORDER BY message_id DESC LIMIT ?""",
            (chat_id, message_id, before + 1),
        )
        later = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND message_id > ?
                ORDER BY message_id LIMIT ?""",
            (chat_id, message_id, after),
        )
        return [GroupMessage(*row) for row in [*reversed(earlier), *later]]

    async def last_summarized(self, chat_id: int) -> int | None:
        row = await self._db.fetch_one("SELECT last_summarized FROM group_settings WHERE chat_id = ?", (chat_id,))
        return row[0] if row else None

    async def set_last_summarized(self, chat_id: int, message_id: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_settings (chat_id, last_summarized) VALUES (?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET last_summarized = CASE
                       WHEN group_settings.last_summarized > excluded.last_summarized
                       THEN group_settings.last_summarized ELSE excluded.last_summarized END""",
                (chat_id, message_id),
            )

    async def set_digest(self, chat_id: int, at: str | None, timezone: str | None) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_settings (chat_id, digest_time, timezone) VALUES (?, ?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET digest_time = excluded.digest_time,
                       timezone = excluded.timezone""",
                (chat_id, at, timezone),
            )

    async def language(self, chat_id: int) -> str | None:
        """The locale a group admin chose for the group, or None."""
        row = await self._db.fetch_one("SELECT language FROM group_settings WHERE chat_id = ?", (chat_id,))
        return row[0] if row else None

    async def set_language(self, chat_id: int, locale: str) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_settings (chat_id, language) VALUES (?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET language = excluded.language""",
                (chat_id, locale),
            )

    async def digests(self) -> list[Digest]:
        rows = await self._db.fetch_all(
            "SELECT chat_id, digest_time, COALESCE(timezone, 'UTC') FROM group_settings WHERE digest_time IS NOT NULL"
        )
        return [Digest(*row) for row in rows]

    async def prune(self, before: float) -> int:
        async with self._db.transaction() as tx:
            changed = await tx.execute("DELETE FROM group_messages WHERE sent_at < ?", (before,))
            return changed
