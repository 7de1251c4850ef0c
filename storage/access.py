"""Who may talk: admins' allow/deny overrides on top of the environment's lists, refusal notices (only who
was refused and when, never what they sent), and the admins' overview of users."""

from __future__ import annotations

import time
from dataclasses import dataclass

from storage.connection import Database


@dataclass(frozen=True, slots=True)
class UserSummary:
    user_id: int
    first_name: str | None
    username: str | None
    last_seen_at: float | None
    turns: int
    tokens: int


@dataclass(frozen=True, slots=True)
class Refusal:
    user_id: int
    refused: int  # how many messages were refused
    last_at: float


class AccessStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def overrides(self) -> dict[str, bool]:
        rows = await self._db.fetch_all("SELECT subject, allowed FROM access_overrides")
        return {subject: bool(allowed) for subject, allowed in rows}

    async def set(self, subject: str, *, allowed: bool, changed_by: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO access_overrides (subject, allowed, changed_by, changed_at) VALUES (?, ?, ?, ?)
                   ON CONFLICT (subject) DO UPDATE SET allowed = excluded.allowed,
                       changed_by = excluded.changed_by, changed_at = excluded.changed_at""",
                (subject, int(allowed), changed_by, time.time()),
            )

    async def bindings(self) -> dict[str, int]:
        """'@name' → the user id that entry was first seen with."""
        rows = await self._db.fetch_all("SELECT username, user_id FROM username_bindings")
        return {username: int(user_id) for username, user_id in rows}

    async def bind(self, username: str, user_id: int) -> int:
        """Bind '@name' to `user_id` unless it is bound already; return the id it is bound to."""
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO username_bindings (username, user_id, bound_at) VALUES (?, ?, ?)
                   ON CONFLICT (username) DO NOTHING""",
                (username, user_id, time.time()),
            )
            row = await tx.fetch_one("SELECT user_id FROM username_bindings WHERE username = ?", (username,))
        return int(row[0]) if row else user_id

    async def note_refusal(self, user_id: int, *, quiet_seconds: float, now: float | None = None) -> bool:
        """Count a refused message; True when the user should be told (not told within `quiet_seconds`).

        Each step is one statement that decides under the row's lock, so two refusals arriving at once (on
        PostgreSQL, truly at once) tell the person once and count both."""
        now = time.time() if now is None else now
        async with self._db.transaction() as tx:
            if await tx.insert(
                """INSERT INTO refusals (user_id, last_notice_at, last_refused_at) VALUES (?, ?, ?)
                   ON CONFLICT (user_id) DO NOTHING RETURNING user_id""",
                (user_id, now, now),
            ):
                return True
            if await tx.execute(
                """UPDATE refusals SET refused = refused + 1, last_notice_at = ?, last_refused_at = ?
                   WHERE user_id = ? AND last_notice_at <= ?""",
                (now, now, user_id, now - quiet_seconds),
            ):
                return True
            await tx.execute(
                "UPDATE refusals SET refused = refused + 1, last_refused_at = ? WHERE user_id = ?", (now, user_id)
            )
            return False

    async def note_admins_told(self, user_id: int, *, quiet_seconds: float, now: float | None = None) -> bool:
        """True when the admins should hear of this refused person (not told of them within `quiet_seconds`);
        one statement under the row's lock, so two processes never both tell. Needs the refusal noted first."""
        now = time.time() if now is None else now
        async with self._db.transaction() as tx:
            return bool(
                await tx.execute(
                    """UPDATE refusals SET admins_told_at = ?
                       WHERE user_id = ? AND (admins_told_at IS NULL OR admins_told_at <= ?)""",
                    (now, user_id, now - quiet_seconds),
                )
            )

    async def unnote_admins_told(self, user_id: int) -> None:
        """The admins could not be told after all (none of them has started the bot yet): the person's next
        refused message tries again rather than counting as told for the day."""
        async with self._db.transaction() as tx:
            await tx.execute("UPDATE refusals SET admins_told_at = NULL WHERE user_id = ?", (user_id,))

    async def recent_refusals(self, limit: int = 10) -> list[Refusal]:
        """The people refused most recently: who, how often, when last (nothing of what they sent)."""
        rows = await self._db.fetch_all(
            """SELECT user_id, refused, COALESCE(last_refused_at, last_notice_at) AS last_at FROM refusals
               ORDER BY last_at DESC, user_id LIMIT ?""",
            (limit,),
        )
        return [Refusal(int(user_id), int(refused), float(last_at)) for user_id, refused, last_at in rows]

    async def note_group_notice(self, chat_id: int, *, quiet_seconds: float, now: float | None = None) -> bool:
        """True when a group that is not allowed should be told how to switch the bot on (not told within
        `quiet_seconds`); decided in one statement per step, like a refusal notice."""
        now = time.time() if now is None else now
        async with self._db.transaction() as tx:
            if await tx.insert(
                """INSERT INTO group_notices (chat_id, last_notice_at) VALUES (?, ?)
                   ON CONFLICT (chat_id) DO NOTHING RETURNING chat_id""",
                (chat_id, now),
            ):
                return True
            return bool(
                await tx.execute(
                    "UPDATE group_notices SET last_notice_at = ? WHERE chat_id = ? AND last_notice_at <= ?",
                    (now, chat_id, now - quiet_seconds),
                )
            )

    async def users_overview(self, limit: int = 50) -> list[UserSummary]:
        rows = await self._db.fetch_all(
            """SELECT u.user_id, u.first_name, u.username, u.last_seen_at,
                      COUNT(t.id), COALESCE(SUM(COALESCE(t.prompt_tokens, 0) + COALESCE(t.completion_tokens, 0)), 0)
               FROM users u LEFT JOIN turns t ON t.user_id = u.user_id
               GROUP BY u.user_id ORDER BY u.last_seen_at DESC LIMIT ?""",
            (limit,),
        )
        return [
            UserSummary(user, first, name, seen, int(turns), int(tokens))
            for user, first, name, seen, turns, tokens in rows
        ]
