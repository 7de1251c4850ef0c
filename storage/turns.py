"""Conversations, their turns, and the running summaries that stand in for a long conversation's older turns.

A conversation is one (chat, user, topic) thread of context: a reset ends it and the next turn opens a new
one. The stored turns are never changed by a summary: it only says which turns it covers
(`through_turn_id`), so /history and /export still see every turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.connection import Connection, Database
from storage.records import NewTurn, StoredTurn, Usage

_TURN = "id, conversation_id, role, kind, text, message_id, created_at"


@dataclass(frozen=True, slots=True)
class ConversationState:
    """The open conversation of a (chat, user, topic), as context assembly needs it."""

    conversation_id: int | None
    summary: str = ""
    through_turn_id: int = 0
    last_turn_at: float | None = None


class TurnStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, turns: list[NewTurn], *, replacing_message: int | None = None) -> list[int]:
        """Store turns in one transaction, in the open conversation of their (chat, user); with
        `replacing_message`, first drop the turns an earlier attempt stored for that message."""
        ids: list[int] = []
        async with self._db.transaction() as tx:
            if replacing_message is not None and turns:
                await tx.execute(
                    "DELETE FROM turns WHERE chat_id = ? AND user_id = ? AND message_id = ?",
                    (turns[0].chat_id, turns[0].user_id, replacing_message),
                )
            for turn in turns:
                conversation_id = await _open_conversation(tx, turn.chat_id, turn.user_id, turn.thread_id)
                usage = turn.usage
                turn_id = await tx.insert(
                    """INSERT INTO turns (conversation_id, chat_id, user_id, message_id, role, kind, text,
                           audio_seconds, model, prompt_tokens, completion_tokens, prompt_audio_tokens,
                           completion_audio_tokens, cached_tokens, tool_calls, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id""",
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
                        turn.tool_calls,
                        time.time(),
                    ),
                )
                ids.append(turn_id or 0)
        return ids

    async def recent(self, chat_id: int, user_id: int, limit: int, thread_id: int = 0) -> list[StoredTurn]:
        """The last `limit` turns of the open conversation, oldest first."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            """SELECT t.id, t.conversation_id, t.role, t.kind, t.text, t.message_id, t.created_at
               FROM turns t JOIN conversations c ON c.id = t.conversation_id
               WHERE c.chat_id = ? AND c.user_id = ? AND c.thread_id = ? AND c.ended_at IS NULL
               ORDER BY t.id DESC LIMIT ?""",
            (chat_id, user_id, thread_id, limit),
        )
        return [StoredTurn(*row) for row in reversed(rows)]

    async def latest_from_user(self, chat_id: int, user_id: int, thread_id: int = 0) -> StoredTurn | None:
        """The user's latest turn in their open conversation (what "try another answer" answers again)."""
        row = await self._db.fetch_one(
            """SELECT t.id, t.conversation_id, t.role, t.kind, t.text, t.message_id, t.created_at
               FROM turns t JOIN conversations c ON c.id = t.conversation_id
               WHERE c.chat_id = ? AND c.user_id = ? AND c.thread_id = ? AND c.ended_at IS NULL AND t.role = 'user'
               ORDER BY t.id DESC LIMIT 1""",
            (chat_id, user_id, thread_id),
        )
        return StoredTurn(*row) if row else None

    async def set_text(self, turn_id: int, text: str, usage: Usage | None = None) -> None:
        """Fill in a turn's words once known (a voice note's transcript arrives after the reply)."""
        async with self._db.transaction() as tx:
            await tx.execute(
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

    async def count(self, user_id: int) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM turns WHERE user_id = ?", (user_id,))
        return int(row[0]) if row else 0

    async def reset(self, chat_id: int, user_id: int, thread_id: int = 0) -> bool:
        """End the open conversation; the next turn starts a new one. True if there was one."""
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                """UPDATE conversations SET ended_at = ?
                   WHERE chat_id = ? AND user_id = ? AND thread_id = ? AND ended_at IS NULL""",
                (time.time(), chat_id, user_id, thread_id),
            )
            return changed > 0

    # --- bounded context: the running summary and what it does not cover yet -------------------------

    async def state(self, chat_id: int, user_id: int, thread_id: int = 0) -> ConversationState:
        row = await self._db.fetch_one(
            """SELECT c.id, s.summary, s.through_turn_id, (SELECT MAX(t.created_at) FROM turns t
                      WHERE t.conversation_id = c.id)
               FROM conversations c LEFT JOIN conversation_summaries s ON s.conversation_id = c.id
               WHERE c.chat_id = ? AND c.user_id = ? AND c.thread_id = ? AND c.ended_at IS NULL
               ORDER BY c.id DESC LIMIT 1""",
            (chat_id, user_id, thread_id),
        )
        if row is None:
            return ConversationState(None)
        return ConversationState(int(row[0]), row[1] or "", int(row[2] or 0), row[3])

    async def after(self, conversation_id: int, after_id: int, limit: int) -> list[StoredTurn]:
        """The newest `limit` turns of the conversation after `after_id` (not yet summarised), oldest first."""
        if limit <= 0:
            return []
        rows = await self._db.fetch_all(
            f"""SELECT {_TURN} FROM turns
                WHERE conversation_id = ? AND id > ? ORDER BY id DESC LIMIT ?""",
            (conversation_id, after_id, limit),
        )
        return [StoredTurn(*row) for row in reversed(rows)]

    async def set_summary(self, conversation_id: int, summary: str, through_turn_id: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO conversation_summaries (conversation_id, summary, through_turn_id, updated_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (conversation_id) DO UPDATE SET summary = excluded.summary,
                       through_turn_id = excluded.through_turn_id, updated_at = excluded.updated_at""",
                (conversation_id, summary, through_turn_id, time.time()),
            )


async def _open_conversation(tx: Connection, chat_id: int, user_id: int, thread_id: int) -> int:
    """The open conversation's id, opening one when there is none (inside the caller's transaction).

    At most one conversation of a (chat, user, topic) is open (a partial unique index), so when two
    processes open one at once the second insert does nothing and reads the first's."""
    for _ in range(2):
        row = await tx.fetch_one(
            """SELECT id FROM conversations
               WHERE chat_id = ? AND user_id = ? AND thread_id = ? AND ended_at IS NULL""",
            (chat_id, user_id, thread_id),
        )
        if row:
            return int(row[0])
        opened = await tx.insert(
            """INSERT INTO conversations (chat_id, user_id, thread_id, started_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (chat_id, user_id, thread_id) WHERE ended_at IS NULL DO NOTHING RETURNING id""",
            (chat_id, user_id, thread_id, time.time()),
        )
        if opened is not None:
            return opened
    raise RuntimeError(f"no open conversation for chat {chat_id}, user {user_id}, topic {thread_id}")
