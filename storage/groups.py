"""The group log: what the bot saw in each allowed group (and what admins imported from before it joined),
for summaries and search. Bots cannot read a chat's history, so this is written as messages arrive; edits
update it; retention prunes it. Every text is stored with its folded form for full-text search: FTS5 on
SQLite, a tsvector on PostgreSQL, the same tokens on both (storage/fulltext.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from storage.connection import Database
from storage.fulltext import fold, fts5_query, terms

UNNAMED = "someone"
"""Who a message is from or forwarded from when no name may be kept: hidden by the sender, or forgotten."""


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
    forwarded_from_id: int | None = None  # the original sender's user id, when Telegram gives it


@dataclass(frozen=True, slots=True)
class Digest:
    chat_id: int
    time: str  # HH:MM
    timezone: str
    weekday: int | None = None  # 0 = Monday; None: every day


@dataclass(frozen=True, slots=True)
class SummarySpan:
    """The messages a posted summary covered, by the times of its first and last."""

    first_at: float
    last_at: float


_COLUMNS = (
    "chat_id, message_id, thread_id, user_id, author, kind, text, transcript_state, forwarded_from, reply_to, sent_at,"
    " forwarded_from_id"
)
_PREFIXED = ", ".join(f"m.{column.strip()}" for column in _COLUMNS.split(","))
_INSERT = f"""INSERT INTO group_messages ({_COLUMNS}, search_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
              ON CONFLICT (chat_id, message_id) DO NOTHING"""


def _values(message: GroupMessage) -> tuple[object, ...]:
    return (
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
        message.forwarded_from_id,
        fold(message.text) if message.text else None,
    )


class GroupStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(self, message: GroupMessage) -> bool:
        """Store one message; False when it was already recorded (a redelivered update)."""
        async with self._db.transaction() as tx:
            return await tx.execute(_INSERT, _values(message)) > 0

    async def record_many(self, messages: Sequence[GroupMessage]) -> int:
        """Store a batch (of an imported export) in one transaction; how many were new. Ids already logged
        keep what they had: what the bot saw live wins over an export of it."""
        added = 0
        async with self._db.transaction() as tx:
            for message in messages:
                added += max(await tx.execute(_INSERT, _values(message)), 0)
        return added

    async def edit(self, chat_id: int, message_id: int, text: str) -> bool:
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                """UPDATE group_messages SET text = ?, search_text = ?, edited_at = ?
                   WHERE chat_id = ? AND message_id = ?""",
                (text, fold(text), time.time(), chat_id, message_id),
            )
            return changed > 0

    async def set_transcript(self, chat_id: int, message_id: int, text: str | None, *, ok: bool) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """UPDATE group_messages SET text = COALESCE(?, text), search_text = COALESCE(?, search_text),
                       transcript_state = ? WHERE chat_id = ? AND message_id = ?""",
                (text, fold(text) if text else None, "done" if ok else "failed", chat_id, message_id),
            )

    async def since(self, chat_id: int, since: float) -> list[GroupMessage]:
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND sent_at >= ? ORDER BY sent_at, message_id",
            (chat_id, since),
        )
        return [GroupMessage(*row) for row in rows]

    async def between(self, chat_id: int, since: float, until: float) -> list[GroupMessage]:
        """Messages sent at `since` or later and before `until`."""
        rows = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND sent_at >= ? AND sent_at < ?
                ORDER BY sent_at, message_id""",
            (chat_id, since, min(until, 1e18)),
        )
        return [GroupMessage(*row) for row in rows]

    async def around(self, chat_id: int, message_id: int, before: int, after: int) -> list[GroupMessage]:
        """A message with up to `before` messages ahead of it and `after` following, in order."""
        anchor = await self._db.fetch_one(
            "SELECT sent_at FROM group_messages WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        if anchor is None:
            return []
        earlier = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND (sent_at < ? OR (sent_at = ? AND
                message_id < ?)) ORDER BY sent_at DESC, message_id DESC LIMIT ?""",
            (chat_id, anchor[0], anchor[0], message_id, before),
        )
        later = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM group_messages WHERE chat_id = ? AND (sent_at > ? OR (sent_at = ? AND
                message_id >= ?)) ORDER BY sent_at, message_id LIMIT ?""",
            (chat_id, anchor[0], anchor[0], message_id, after + 1),
        )
        return [GroupMessage(*row) for row in [*reversed(earlier), *later]]

    async def find(self, chat_id: int, query: str, *, limit: int, offset: int = 0) -> tuple[list[GroupMessage], bool]:
        """Messages holding every word of `query` (case and accents aside; CJK words by their characters),
        newest first, `limit` from `offset`; and whether more follow."""
        words = terms(query)
        if not words:
            return [], False
        if self._db.dialect.name == "sqlite":
            rows = await self._db.fetch_all(
                f"""SELECT {_PREFIXED} FROM group_search JOIN group_messages m ON m.id = group_search.rowid
                    WHERE group_search MATCH ? AND m.chat_id = ?
                    ORDER BY m.sent_at DESC, m.message_id DESC LIMIT ? OFFSET ?""",
                (fts5_query(words), chat_id, limit + 1, offset),
            )
        else:
            wanted = " && ".join("phraseto_tsquery('simple', ?)" for _ in words)
            rows = await self._db.fetch_all(
                f"""SELECT {_COLUMNS} FROM group_messages
                    WHERE chat_id = ? AND to_tsvector('simple', COALESCE(search_text, '')) @@ ({wanted})
                    ORDER BY sent_at DESC, message_id DESC LIMIT ? OFFSET ?""",
                (chat_id, *words, limit + 1, offset),
            )
        return [GroupMessage(*row) for row in rows[:limit]], len(rows) > limit

    async def remember_summary(self, chat_id: int, message_ids: Sequence[int], first_at: float, last_at: float) -> None:
        """The bot's messages that carry a summary (or an answer about one), and the span it covered."""
        async with self._db.transaction() as tx:
            for message_id in message_ids:
                await tx.execute(
                    """INSERT INTO group_summaries (chat_id, message_id, first_at, last_at, created_at)
                       VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_id, message_id) DO NOTHING""",
                    (chat_id, message_id, first_at, last_at, time.time()),
                )

    async def summary_span(self, chat_id: int, message_id: int) -> SummarySpan | None:
        row = await self._db.fetch_one(
            "SELECT first_at, last_at FROM group_summaries WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        return SummarySpan(*row) if row else None

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

    async def set_digest(self, chat_id: int, at: str | None, timezone: str | None, weekday: int | None = None) -> None:
        """The group's digest: at HH:MM in `timezone`, every day or on `weekday` (0 = Monday); `at` None: off."""
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_settings (chat_id, digest_time, timezone, digest_weekday) VALUES (?, ?, ?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET digest_time = excluded.digest_time,
                       timezone = excluded.timezone, digest_weekday = excluded.digest_weekday""",
                (chat_id, at, timezone if at else None, weekday if at else None),
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

    async def persona(self, chat_id: int) -> tuple[str | None, str | None]:
        """(the persona a group admin chose, the group's own instructions), each None when never set."""
        row = await self._db.fetch_one("SELECT persona, persona_text FROM group_settings WHERE chat_id = ?", (chat_id,))
        return (row[0], row[1]) if row else (None, None)

    async def set_persona(self, chat_id: int, persona: str, text: str | None = None) -> None:
        """Keep the group's persona; its own instructions stay as they were unless `text` is given."""
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_settings (chat_id, persona, persona_text) VALUES (?, ?, ?)
                   ON CONFLICT (chat_id) DO UPDATE SET persona = excluded.persona,
                       persona_text = COALESCE(excluded.persona_text, group_settings.persona_text)""",
                (chat_id, persona, text),
            )

    async def digest(self, chat_id: int) -> Digest | None:
        row = await self._db.fetch_one(
            """SELECT chat_id, digest_time, COALESCE(timezone, 'UTC'), digest_weekday FROM group_settings
               WHERE chat_id = ? AND digest_time IS NOT NULL""",
            (chat_id,),
        )
        return Digest(*row) if row else None

    async def digests(self) -> list[Digest]:
        rows = await self._db.fetch_all(
            """SELECT chat_id, digest_time, COALESCE(timezone, 'UTC'), digest_weekday FROM group_settings
               WHERE digest_time IS NOT NULL"""
        )
        return [Digest(*row) for row in rows]

    async def prune(self, before: float) -> int:
        async with self._db.transaction() as tx:
            changed = await tx.execute("DELETE FROM group_messages WHERE sent_at < ?", (before,))
            await tx.execute("DELETE FROM group_summaries WHERE last_at < ?", (before,))
            return changed
