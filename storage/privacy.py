"""What the person is owed: /forget (everything about them, across tables), /export, retention, and the
opt-in raw audio. Deleting ends with the database's scrub, so removed words survive in no file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from storage.connection import Database
from storage.records import ForgetReport
from storage.usage import FORGOTTEN_SPEND_DAYS, UsageStore

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    turns: int
    conversations: int
    jobs: int
    audio: int


class PrivacyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- /forget ------------------------------------------------------------------------------------

    async def forget_user(self, user_id: int) -> ForgetReport:
        """Delete everything stored about a user: turns, conversations, settings, group messages, cached
        results; the ledger keeps its amounts under a pseudonym."""
        async with self._db.transaction() as tx:
            turns = await tx.execute("DELETE FROM turns WHERE user_id = ?", (user_id,))
            conversations = await tx.execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))
            users = await tx.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM kept_audio WHERE user_id = ?", (user_id,))
            await UsageStore.pseudonymise(tx, user_id)  # spend totals stay, the person does not
            await tx.execute("DELETE FROM group_messages WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM tool_cache WHERE user_id = ?", (user_id,))
            # Job rows stay (they recognise redelivered updates) but lose the messages they carried.
            await tx.execute(
                "UPDATE jobs SET payload = '{}' WHERE chat_id = ? AND state IN ('done', 'failed')", (user_id,)
            )
            report = ForgetReport(turns, conversations, users)
        await self._db.scrub()
        return report

    # --- raw audio (opt-in) ------------------------------------------------------------------------

    async def keep_audio(self, turn_id: int, user_id: int, data: bytes) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO kept_audio (turn_id, user_id, data, created_at) VALUES (?, ?, ?, ?)",
                (turn_id, user_id, data, time.time()),
            )

    async def kept_audio_count(self, user_id: int | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM kept_audio", []
        if user_id is not None:
            sql, params = sql + " WHERE user_id = ?", [user_id]
        row = await self._db.fetch_one(sql, params)
        return int(row[0]) if row else 0

    # --- retention ---------------------------------------------------------------------------------

    async def apply_retention(self, *, days: float, audio_days: float, now: float | None = None) -> RetentionReport:
        """Delete what is older than its retention: turns (and conversations left empty), finished jobs,
        kept audio. Queued or working jobs are never touched: they are work still owed."""
        now = time.time() if now is None else now
        cutoff, audio_cutoff = now - days * DAY, now - min(audio_days, days) * DAY
        async with self._db.transaction() as tx:
            audio = await tx.execute("DELETE FROM kept_audio WHERE created_at < ?", (audio_cutoff,))
            turns = await tx.execute("DELETE FROM turns WHERE created_at < ?", (cutoff,))
            conversations = await tx.execute(
                """DELETE FROM conversations WHERE started_at < ?
                   AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = conversations.id)""",
                (cutoff,),
            )
            jobs = await tx.execute("DELETE FROM jobs WHERE updated_at < ? AND state IN ('done', 'failed')", (cutoff,))
            await tx.execute("DELETE FROM tool_cache WHERE created_at < ?", (cutoff,))
            await tx.execute("DELETE FROM forgotten_spend WHERE created_at < ?", (now - FORGOTTEN_SPEND_DAYS * DAY,))
            report = RetentionReport(turns, conversations, jobs, audio)
        await self._db.scrub()
        return report

    # --- export ------------------------------------------------------------------------------------

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about a user, as plain data (the /export document)."""
        user = await self._db.fetch_one(
            "SELECT user_id, first_name, username, language_code, voice, created_at, last_seen_at, model, reply_mode,"
            " language FROM users WHERE user_id = ?",
            (user_id,),
        )
        conversations = await self._db.fetch_all(
            "SELECT id, chat_id, started_at, ended_at FROM conversations WHERE user_id = ? ORDER BY id", (user_id,)
        )
        turns = await self._db.fetch_all(
            """SELECT conversation_id, role, kind, text, audio_seconds, model, prompt_tokens, completion_tokens,
                      created_at
               FROM turns WHERE user_id = ? ORDER BY id""",
            (user_id,),
        )
        by_conversation: dict[int, list[dict[str, Any]]] = {}
        for conversation_id, role, kind, text, seconds, model, prompt, completion, created in turns:
            by_conversation.setdefault(conversation_id, []).append(
                {
                    "role": role,
                    "kind": kind,
                    "text": text,
                    "audio_seconds": seconds,
                    "model": model,
                    "tokens": {"prompt": prompt, "completion": completion},
                    "at": _iso(created),
                }
            )
        return {
            "exported_at": _iso(time.time()),
            "user": None
            if user is None
            else {
                "id": user[0],
                "first_name": user[1],
                "username": user[2],
                "language_code": user[3],
                "voice": user[4],
                "first_seen": _iso(user[5]),
                "last_seen": _iso(user[6]),
                "model": user[7],
                "reply_mode": user[8],
                "language": user[9],
            },
            "conversations": [
                {
                    "chat_id": chat_id,
                    "started": _iso(started),
                    "ended": _iso(ended) if ended else None,
                    "turns": by_conversation.get(conversation_id, []),
                }
                for conversation_id, chat_id, started, ended in conversations
            ],
            "stored_audio_files": await self.kept_audio_count(user_id),
            "group_messages": [
                {"chat_id": chat_id, "at": _iso(at), "kind": kind, "text": text}
                for chat_id, at, kind, text in await self._db.fetch_all(
                    "SELECT chat_id, sent_at, kind, text FROM group_messages WHERE user_id = ? ORDER BY id",
                    (user_id,),
                )
            ],
            "usage": [
                {
                    "at": _iso(at),
                    "model": model,
                    "purpose": purpose,
                    "tokens": {"prompt": prompt, "completion": completion},
                    "cost_usd": round(cost, 6),
                }
                for at, model, purpose, prompt, completion, cost in await self._db.fetch_all(
                    """SELECT created_at, model, purpose, prompt_text_tokens + prompt_audio_tokens,
                              completion_text_tokens + completion_audio_tokens, cost_usd
                       FROM usage_ledger WHERE user_id = ? ORDER BY id""",
                    (user_id,),
                )
            ],
        }


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
