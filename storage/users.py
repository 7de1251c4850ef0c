"""The users table: who has talked to the bot, and each person's preferences (one row, one read)."""

from __future__ import annotations

import time

from storage.connection import Database
from storage.records import PREFERENCE_FIELDS, Preferences

_PREFERENCES = ", ".join(PREFERENCE_FIELDS)


class UserStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def touch(
        self, user_id: int, *, first_name: str | None, username: str | None, language_code: str | None
    ) -> None:
        now = time.time()
        async with self._db.transaction() as tx:
            await tx.execute(
                """INSERT INTO users (user_id, first_name, username, language_code, created_at, last_seen_at)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (user_id) DO UPDATE SET first_name = excluded.first_name,
                       username = excluded.username, language_code = excluded.language_code,
                       last_seen_at = excluded.last_seen_at""",
                (user_id, first_name, username, language_code, now, now),
            )

    async def preferences(self, user_id: int) -> Preferences:
        """Everything the user chose, in one query; all None for someone who never chose anything."""
        row = await self._db.fetch_one(f"SELECT {_PREFERENCES} FROM users WHERE user_id = ?", (user_id,))
        return Preferences(*row) if row else Preferences()

    async def languages(self, user_id: int) -> tuple[str | None, str | None]:
        """(the locale the person chose, the language_code of their Telegram app), each None when unknown."""
        row = await self._db.fetch_one("SELECT language, language_code FROM users WHERE user_id = ?", (user_id,))
        return (row[0], row[1]) if row else (None, None)

    async def update_preferences(self, user_id: int, **changes: str | None) -> None:
        """Set the named preferences (fields of `Preferences`), leaving the others as they are."""
        unknown = set(changes) - set(PREFERENCE_FIELDS)
        if unknown or not changes:  # column names are spliced into SQL: only Preferences' fields, ever
            raise ValueError(f"not a preference: {sorted(unknown)}")
        names = [name for name in PREFERENCE_FIELDS if name in changes]
        now = time.time()
        async with self._db.transaction() as tx:
            await tx.execute(
                f"""INSERT INTO users (user_id, {", ".join(names)}, created_at, last_seen_at)
                    VALUES (?, {", ".join("?" for _ in names)}, ?, ?)
                    ON CONFLICT (user_id) DO UPDATE SET
                        {", ".join(f"{name} = excluded.{name}" for name in names)}""",
                (user_id, *(changes[name] for name in names), now, now),
            )
