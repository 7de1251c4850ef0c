"""SQLite: the embedded default. One aiosqlite connection in autocommit mode; writes go through
`transaction()`, which serialises them with a lock so concurrent chats never interleave half-finished
transactions (SQLite has one writer at a time anyway)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite

from storage.connection import SQLITE, Connection, Database, Params, StorageUnavailable

WAL_SWITCH_SECONDS = 5.0
"""How long a start-up keeps trying to put the file in WAL mode while other processes do the same."""


async def _enter_wal(db: aiosqlite.Connection) -> None:
    """Switch the file to WAL. The switch needs the file to itself, and while another connection is midway
    through the same switch (opening the new write-ahead log) SQLite answers "database is locked" at once,
    without its busy handler: processes starting together on a new file retry here instead of failing."""
    deadline = time.monotonic() + WAL_SWITCH_SECONDS
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> SqliteDatabase:
        """Open (creating with owner-only permissions if new) and tune the database; no migrating here."""
        path = Path(path)
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            # The wait for a busy file first: switching a new file to WAL takes it exclusively, and processes
            # starting at once would otherwise fail at once with "database is locked".
            await db.execute("PRAGMA busy_timeout=5000")
            await _enter_wal(db)
            await db.execute("PRAGMA foreign_keys=ON")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA secure_delete=ON")  # deleted content is overwritten, not left in free pages
        except BaseException:
            await db.close()
            raise
        return cls(db, path)

    @property
    def description(self) -> str:
        return str(self.path)

    async def close(self) -> None:
        await self._db.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._write_lock:
            began = False
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                began = True
                yield self
            except BaseException:
                if began or self._db.in_transaction:  # a cancel can land just after BEGIN took effect
                    await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """Each migration's BEGIN IMMEDIATE already excludes other processes; `migrate` re-checks inside it."""
        yield

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._db.execute(sql, params) as cursor:
            return cursor.rowcount

    async def insert(self, sql: str, params: Params = ()) -> int | None:
        rows = await self._db.execute_fetchall(sql, params)  # one trip to the worker thread
        return int(next(iter(rows))[0]) if rows else None

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        rows = await self._db.execute_fetchall(sql, params)
        return tuple(next(iter(rows))) if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._db.execute_fetchall(sql, params)]

    async def lock(self, name: str) -> None:
        """Nothing to take: a transaction here began IMMEDIATE, holding the database's one write lock
        (against this process's other tasks and every other process) until it ends."""

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """Reads inside see one consistent state of the database, while other processes go on writing
        (a read transaction under WAL); this process's writes wait until it ends."""
        async with self._write_lock:
            await self._db.execute("BEGIN")
            try:
                yield
            finally:
                await self._db.execute("COMMIT")

    async def batches(self, sql: str, size: int, params: Params = ()) -> AsyncIterator[list[tuple[Any, ...]]]:
        """A query's rows, `size` at a time: a table of any size in bounded memory."""
        async with self._db.execute(sql, params) as cursor:
            while rows := await cursor.fetchmany(size):
                yield [tuple(row) for row in rows]

    async def scrub(self) -> None:
        """secure_delete already overwrote deleted rows in the database file; this pushes the write-ahead log
        into it and truncates the log, so removed content survives in no file."""
        await self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def backup_file(source: Path | str, target: Path | str) -> None:
    """A consistent copy of a live database (SQLite's online backup API), private to its owner like the
    original, made without migrating or otherwise touching the source."""
    target = Path(target)
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    origin = await aiosqlite.connect(f"file:{Path(source)}?mode=ro", uri=True)
    try:
        destination = await aiosqlite.connect(target)
        try:
            await origin.backup(destination)
        finally:
            await destination.close()
    finally:
        await origin.close()


def inspect_file(path: Path) -> list[str]:
    """The migrations an existing database file has had, after proving it can be written (the write lock
    taken and released, nothing written); it is neither created nor migrated. StorageUnavailable says why
    not: it cannot be opened for writing, or it cannot be written."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=5, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"cannot be opened for writing ({exc})") from exc
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "_migrations" not in tables:
            return []
        return [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
    except sqlite3.Error as exc:
        raise StorageUnavailable(f"is not writable ({exc})") from exc
    finally:
        db.close()
