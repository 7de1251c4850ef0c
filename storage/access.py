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
                """INSERT INTO refusals (user_id, last_notice_at) VALUES (?, ?)
                   ON CONFLICT (user_id) DO NOTHING RETURNING user_id""",
                (user_id, now),
            ):
                return True
            if await tx.execute(
                """UPDATE refusals SET refused = refused + 1, last_notice_at = ?
                   WHERE user_id = ? AND last_notice_at <= ?""",
                (now, user_id, now - quiet_seconds),
            ):
                return True
            await tx.execute("UPDATE refusals SET refused = refused + 1 WHERE user_id = ?", (user_id,))
            return False

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
