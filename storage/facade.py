"""`Storage`: one object that opens the database, migrates it, and hands out one store per group of tables.

It only assembles: every query lives in a table module (users, turns, jobs, groups, usage, access, privacy,
cache, reminders, updates, rate windows, the schedule's claims), and none of them imports this one.
"""

from __future__ import annotations

from pathlib import Path

from storage.access import AccessStore
from storage.cache import CacheStore
from storage.connection import Database
from storage.groups import GroupStore
from storage.jobs import JobStore
from storage.limits import RateStore
from storage.migrations import migrate
from storage.postgres import DEFAULT_POOL_SIZE, PostgresDatabase, is_postgres_url
from storage.privacy import PrivacyStore
from storage.reminders import ReminderStore
from storage.schedule import ScheduleStore
from storage.sqlite import SqliteDatabase
from storage.turns import TurnStore
from storage.updates import UpdateStore
from storage.usage import UsageStore
from storage.users import UserStore


class Storage:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.users = UserStore(db)
        self.turns = TurnStore(db)
        self.jobs = JobStore(db)
        self.groups = GroupStore(db)
        self.usage = UsageStore(db)
        self.access = AccessStore(db)
        self.privacy = PrivacyStore(db)
        self.cache = CacheStore(db)
        self.reminders = ReminderStore(db)
        self.updates = UpdateStore(db)
        self.rates = RateStore(db)
        self.schedule = ScheduleStore(db)

    @classmethod
    async def open(cls, where: Path | str, *, pool_size: int = DEFAULT_POOL_SIZE) -> Storage:
        """Open and migrate the database: a postgresql:// URL (a pool of up to `pool_size` connections), or
        a SQLite file (created with owner-only permissions if new)."""
        db: Database = (
            await PostgresDatabase.open(where, max_connections=pool_size)
            if is_postgres_url(where)
            else await SqliteDatabase.open(where)
        )
        try:
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return cls(db)

    @property
    def shared(self) -> bool:
        """Several processes may use this database at once (PostgreSQL); a SQLite file has one."""
        return not isinstance(self.db, SqliteDatabase)

    @property
    def path(self) -> Path | None:
        """The SQLite file, None for a database server."""
        return self.db.path if isinstance(self.db, SqliteDatabase) else None

    async def close(self) -> None:
        await self.db.close()
