"""What the person is owed: /forget (everything about them, across tables), /export, retention, and the
opt-in raw audio. Deleting ends with the database's scrub, so removed words survive in no file."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.connection import Connection, Database
from storage.groups import UNNAMED
from storage.records import ForgetReport
from storage.usage import FORGOTTEN_SPEND_DAYS, UsageStore

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class RetentionReport:
    turns: int
    conversations: int
    jobs: int
    audio: int


def utc_day(at: float) -> float:
    """The start of the UTC day `at` falls in."""
    return at - at % DAY


class PrivacyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- /forget ------------------------------------------------------------------------------------

    async def forget_user(
        self, user_id: int, *, forgotten_key: int, day_of: Callable[[float], float] = utc_day
    ) -> ForgetReport:
        """Delete everything stored about a user: turns, conversations, settings, group messages, cached
        results, reminders, refusals, username bindings, rate windows, budget holds, and the messages their
        jobs carried in every chat; the ledger keeps its amounts under a pseudonym (see
        UsageStore.pseudonymise)."""
        async with self._db.transaction() as tx:
            turns = await tx.execute("DELETE FROM turns WHERE user_id = ?", (user_id,))
            conversations = await tx.execute("DELETE FROM conversations WHERE user_id = ?", (user_id,))
            users = await tx.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM kept_audio WHERE user_id = ?", (user_id,))
            await UsageStore.pseudonymise(tx, user_id, forgotten_key=forgotten_key, day_of=day_of)
            await tx.execute("DELETE FROM group_messages WHERE user_id = ?", (user_id,))
            # Other members' messages forwarded from them keep their words (they are the forwarder's message)
            # but no longer say whose they were.
            await tx.execute(
                """UPDATE group_messages SET forwarded_from = ?, forwarded_from_id = NULL
                   WHERE forwarded_from_id = ?""",
                (UNNAMED, user_id),
            )
            if tx.dialect.name == "sqlite":  # merge the search index: its old segments still hold their words
                await tx.execute("INSERT INTO group_search (group_search) VALUES ('optimize')")
            await tx.execute("DELETE FROM tool_cache WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM refusals WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM username_bindings WHERE user_id = ?", (user_id,))
            await _forget_in_jobs(tx, user_id)
            await tx.execute("DELETE FROM reminders WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM spend_holds WHERE user_id = ?", (user_id,))
            await tx.execute("DELETE FROM rate_windows WHERE subject = ?", (user_id,))  # his own, his private chat's
            report = ForgetReport(turns, conversations, users)
        await self._db.scrub()
        return report

    async def work_in_flight(self, user_id: int, *, besides: int) -> int:
        """Jobs running now (other than `besides`) that carry the person's messages: what they store when
        they finish arrives after a /forget made meanwhile, so /forget waits for them and forgets again."""
        rows = await self._db.fetch_all(
            "SELECT id, payload FROM jobs WHERE state = 'working' AND id <> ? AND payload LIKE ?",
            (besides, f"%{user_id}%"),
        )
        return sum(1 for _, payload in rows if _mentions(json.loads(payload), user_id))

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
            await tx.execute("DELETE FROM rate_windows WHERE expires_at <= ?", (now,))
            await tx.execute("DELETE FROM spend_holds WHERE expires_at <= ?", (now,))
            report = RetentionReport(turns, conversations, jobs, audio)
        await self._db.scrub()
        return report

    # --- export ------------------------------------------------------------------------------------

    async def export_user(self, user_id: int) -> dict[str, Any]:
        """Everything stored about a user, as plain data (the /export document)."""
        user = await self._db.fetch_one(
            "SELECT user_id, first_name, username, language_code, voice, created_at, last_seen_at, model, reply_mode,"
            " language, timezone, persona, persona_text FROM users WHERE user_id = ?",
            (user_id,),
        )
        conversations = await self._db.fetch_all(
            """SELECT c.id, c.chat_id, c.started_at, c.ended_at, s.summary FROM conversations c
               LEFT JOIN conversation_summaries s ON s.conversation_id = c.id WHERE c.user_id = ? ORDER BY c.id""",
            (user_id,),
        )
        turns = await self._db.fetch_all(
            """SELECT conversation_id, role, kind, text, audio_seconds, model, prompt_tokens, completion_tokens,
                      created_at, tool_calls
               FROM turns WHERE user_id = ? ORDER BY id""",
            (user_id,),
        )
        by_conversation: dict[int, list[dict[str, Any]]] = {}
        for conversation_id, role, kind, text, seconds, model, prompt, completion, created, tool_calls in turns:
            by_conversation.setdefault(conversation_id, []).append(
                {
                    "role": role,
                    "kind": kind,
                    "text": text,
                    "audio_seconds": seconds,
                    "model": model,
                    "tokens": {"prompt": prompt, "completion": completion},
                    "at": _iso(created),
                    **({"tool_calls": json.loads(tool_calls)} if tool_calls else {}),
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
                "timezone": user[10],
                "persona": user[11],
                "persona_instructions": user[12],
            },
            "conversations": [
                {
                    "chat_id": chat_id,
                    "started": _iso(started),
                    "ended": _iso(ended) if ended else None,
                    "summary_of_earlier_turns": summary,
                    "turns": by_conversation.get(conversation_id, []),
                }
                for conversation_id, chat_id, started, ended, summary in conversations
            ],
            "stored_audio_files": await self.kept_audio_count(user_id),
            "reminders": [
                {
                    "chat_id": chat_id,
                    "text": text,
                    "repeat": repeat,
                    "next": _iso(due),
                    "zone": zone,
                    "done": _iso(done) if done else None,
                }
                for chat_id, text, repeat, due, zone, done in await self._db.fetch_all(
                    "SELECT chat_id, text, repeat, due_at, zone, done_at FROM reminders WHERE user_id = ? ORDER BY id",
                    (user_id,),
                )
            ],
            "group_messages": [
                {"chat_id": chat_id, "at": _iso(at), "kind": kind, "text": text}
                for chat_id, at, kind, text in await self._db.fetch_all(
                    "SELECT chat_id, sent_at, kind, text FROM group_messages WHERE user_id = ? ORDER BY id",
                    (user_id,),
                )
            ],
            "transcripts_of_your_recordings": [
                {"at": _iso(at), "text": value}
                for key, value, at in await self._db.fetch_all(
                    "SELECT key, value, created_at FROM tool_cache WHERE user_id = ? ORDER BY created_at",
                    (user_id,),
                )
                if key.startswith("transcribe:")
            ],
            "messages_not_answered": await self._unanswered(user_id),
            "refusals": [
                {"times_refused": refused, "last_told": _iso(told)}
                for told, refused in await self._db.fetch_all(
                    "SELECT last_notice_at, refused FROM refusals WHERE user_id = ?", (user_id,)
                )
            ],
            "usernames_bound_to_you": [
                name
                for (name,) in await self._db.fetch_all(
                    "SELECT username FROM username_bindings WHERE user_id = ?", (user_id,)
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

    async def _unanswered(self, user_id: int) -> list[dict[str, Any]]:
        """Messages of theirs that failed or wait in a job (in any chat): the words they carry."""
        rows = await self._db.fetch_all(
            """SELECT chat_id, kind, state, payload, created_at FROM jobs
               WHERE state IN ('failed', 'queued', 'working') AND payload LIKE ? ORDER BY id""",
            (f"%{user_id}%",),
        )
        found = []
        for chat_id, kind, state, payload, created in rows:
            data = json.loads(payload)
            message = data.get("message") if isinstance(data, dict) else None
            sender = message.get("from") if isinstance(message, dict) else None
            if not isinstance(sender, dict) or sender.get("id") != user_id:
                continue
            words = message.get("text") or message.get("caption") if isinstance(message, dict) else None
            found.append({"chat_id": chat_id, "job": kind, "state": state, "text": words, "at": _iso(created)})
        return found


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def _forget_in_jobs(tx: Connection, user_id: int) -> None:
    """Job rows stay (they recognise redelivered updates) but lose every message of the person they carry,
    in any chat: their own jobs, and others' that quote them (a reply carries the message replied to).
    Work of theirs not yet started is dropped with it, as failed; work already running finishes."""
    rows = await tx.fetch_all(
        "SELECT id, state, payload FROM jobs WHERE payload LIKE ? AND payload <> '{}'", (f"%{user_id}%",)
    )
    for job_id, state, payload in rows:
        try:
            data = json.loads(payload)
        except ValueError:
            data = None
        if data is not None and not _mentions(data, user_id):
            continue
        if state == "working":
            continue
        await tx.execute(  # unless another process has started it meanwhile: running work finishes
            "UPDATE jobs SET payload = '{}', state = CASE WHEN state = 'queued' THEN 'failed' ELSE state END"
            " WHERE id = ? AND state <> 'working'",
            (job_id,),
        )


_PERSON_KEYS = frozenset({"from", "user", "sender_user", "from_user"})


def _mentions(value: Any, user_id: int) -> bool:
    """Whether a job's payload names the person: as a message's sender, a tapped button's user, anywhere."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _PERSON_KEYS and isinstance(item, dict) and item.get("id") == user_id:
                return True
            if key == "user_id" and item == user_id:
                return True
            if _mentions(item, user_id):
                return True
    elif isinstance(value, list):
        return any(_mentions(item, user_id) for item in value)
    return False
