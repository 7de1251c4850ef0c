"""Access overrides, refusal notices, kept audio, retention and export: the SQL behind issue "who may talk".

Kept apart from the conversation tables' code so each module has one job; it shares Storage's connection
and write lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from storage.usage import FORGOTTEN_SPEND_DAYS

if TYPE_CHECKING:
    from storage.database import Storage

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    turns: int
    conversations: int
    jobs: int
    audio: int


@dataclass(frozen=True, slots=True)
class UserSummary:
    user_id: int
    first_name: str | None
    username: str | None
    last_seen_at: float | None
    turns: int
    tokens: int


class PrivacyStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    # --- access ------------------------------------------------------------------------------------

    async def access_overrides(self) -> dict[str, bool]:
        rows = await self._storage.fetch_all("SELECT subject, allowed FROM access_overrides")
        return {subject: bool(allowed) for subject, allowed in rows}

    async def set_access(self, subject: str, *, allowed: bool, changed_by: int) -> None:
        async with self._storage.transaction() as db:
            await db.execute(
                """INSERT INTO access_overrides (subject, allowed, changed_by, changed_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (subject) DO UPDATE SET allowed = excluded.allowed,
                       changed_by = excluded.changed_by, changed_at = excluded.changed_at""",
                (subject, int(allowed), changed_by, time.time()),
            )

    async def note_refusal(self, user_id: int, *, quiet_seconds: float, now: float | None = None) -> bool:
        """Count a refused message; True when the user should be told (not told within `quiet_seconds`)."""
        now = time.time() if now is None else now
        async with self._storage.transaction() as db:
            async with db.execute("SELECT last_notice_at FROM refusals WHERE user_id = ?", (user_id,)) as cursor:
                row = await cursor.fetchone()
            if row is None:
                await db.execute("INSERT INTO refusals (user_id, last_notice_at) VALUES (?, ?)", (user_id, now))
                return True
            tell = now - row[0] >= quiet_seconds
            await db.execute(
                "UPDATE refusals SET refused = refused + 1, last_notice_at = ? WHERE user_id = ?",
                (now if tell else row[0], user_id),
            )
            return tell

    async def users_overview(self, limit: int = 50) -> list[UserSummary]:
        rows = await self._storage.fetch_all(
            """SELECT u.user_id, u.first_name, u.username, u.last_seen_at,
                      COUNT(t.id), COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0)
               FROM users u LEFT JOIN turns t ON t.user_id = u.user_id
               GROUP BY u.user_id ORDER BY u.last_seen_at DESC LIMIT ?""",
            (limit,),
        )
        return [UserSummary(*row) for row in rows]

    # --- raw audio (opt-in) ------------------------------------------------------------------------

    async def keep_audio(self, turn_id: int, user_id: int, data: bytes) -> None:
        async with self._storage.transaction() as db:
            await db.execute(
                "INSERT INTO kept_audio (turn_id, user_id, data, created_at) VALUES (?, ?, ?, ?)",
                (turn_id, user_id, data, time.time()),
            )

    async def kept_audio_count(self, user_id: int | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM kept_audio", ()
        if user_id is not None:
            sql, params = sql + " WHERE user_id = ?", (user_id,)
        row = await self._storage.fetch_one(sql, params)
        return int(row[0]) if row else 0

    # --- retention ---------------------------------------------------------------------------------

    async def apply_retention(self, *, days: float, audio_days: float, now: float | None = None) -> RetentionReport:
        """Delete what is older than its retention: turns (and conversations left empty), finished jobs,
        kept audio. Queued or working jobs are never touched: they are work still owed."""
        now = time.time() if now is None else now
        cutoff, audio_cutoff = now - days * DAY, now - min(audio_days, days) * DAY
        async with self._storage.transaction() as db:
            audio = await db.execute("DELETE FROM kept_audio WHERE created_at < ?", (audio_cutoff,))
            turns = await db.execute("DELETE FROM turns WHERE created_at < ?", (cutoff,))
            conversations = await db.execute(
                """DELETE FROM conversations WHERE started_at < ?
                   AND NOT EXISTS (SELECT 1 FROM turns t WHERE t.conversation_id = conversations.id)""",
                (cutoff,),
            )
            jobs = await db.execute("DELETE FROM jobs WHERE updated_at < ? AND state IN ('done', 'failed')", (cutoff,))
            await db.execute("DELETE FROM tool_cache WHERE created_at < ?", (cutoff,))
            await db.execute("DELETE FROM forgotten_spend WHERE created_at < ?", (now - FORGOTTEN_SPEND_DAYS * DAY,))
            report = RetentionReport(turns.rowcount, conversations.rowcount, jobs.rowcount, audio.rowcount)
        await self._storage.checkpoint()
        return report

    # --- export ------------------------------------------------------------------------------------

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about a user, as plain data (the /export document)."""
        user = await self._storage.fetch_one(
            "SELECT user_id, first_name, username, language_code, voice, created_at, last_seen_at, model, reply_mode"
            " FROM users WHERE user_id = ?",
            (user_id,),
        )
        conversations = await self._storage.fetch_all(
            "SELECT id, chat_id, started_at, ended_at FROM conversations WHERE user_id = ? ORDER BY id", (user_id,)
        )
        turns = await self._storage.fetch_all(
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
                for chat_id, at, kind, text in await self._storage.fetch_all(
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
                for at, model, purpose, prompt, completion, cost in await self._storage.fetch_all(
                    """SELECT created_at, model, purpose, prompt_text_tokens + prompt_audio_tokens,
                              completion_text_tokens + completion_audio_tokens, cost_usd
                       FROM usage_ledger WHERE user_id = ? ORDER BY id""",
                    (user_id,),
                )
            ],
        }


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
