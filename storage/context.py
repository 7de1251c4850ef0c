"""What bounded context needs from SQLite: a conversation's running summary, the turns it does not cover
yet, and each user's chosen model.

The stored turns are never changed here: a summary only says which turns it covers (`through_turn_id`),
so /history and /export still see every turn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.database import Storage, StoredTurn


@dataclass(frozen=True, slots=True)
class ConversationState:
    """The open conversation of a (chat, user, topic), as context assembly needs it."""

    conversation_id: int | None
    summary: str = ""
    through_turn_id: int = 0
    last_turn_at: float | None = None


class ContextStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def state(self, chat_id: int, user_id: int, thread_id: int = 0) -> ConversationState:
        row = await self._storage.fetch_one(
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

    async def turns_after(self, conversation_id: int, after_id: int, limit: int) -> list[StoredTurn]:
        """The newest `limit` turns of the conversation after `after_id` (not yet summarised), oldest first."""
        from storage.database import StoredTurn

        if limit <= 0:
            return []
        rows = await self._storage.fetch_all(
            """SELECT id, conversation_id, role, kind, text, message_id, created_at FROM turns
               WHERE conversation_id = ? AND id > ? ORDER BY id DESC LIMIT ?""",
            (conversation_id, after_id, limit),
        )
        return [StoredTurn(*row) for row in reversed(rows)]

    async def set_summary(self, conversation_id: int, summary: str, through_turn_id: int) -> None:
        async with self._storage.transaction() as db:
            await db.execute(
                """INSERT INTO conversation_summaries (conversation_id, summary, through_turn_id, updated_at)
                   VALUES (?, ?, ?, ?)
                   ON CONFLICT (conversation_id) DO UPDATE SET summary = excluded.summary,
                       through_turn_id = excluded.through_turn_id, updated_at = excluded.updated_at""",
                (conversation_id, summary, through_turn_id, time.time()),
            )

    async def get_model(self, user_id: int) -> str | None:
        return await self._storage.user_setting(user_id, "model")

    async def set_model(self, user_id: int, model: str) -> None:
        await self._storage.set_user_setting(user_id, "model", model)
