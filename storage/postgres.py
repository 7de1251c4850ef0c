"""PostgreSQL: the way to share one database between several Parley processes (asyncpg, a small pool).

Reads run on any pooled connection; a transaction holds one connection from BEGIN to COMMIT. Unlike the
SQLite engine nothing serialises writes in the process: PostgreSQL's row locks do, so each table module's
writes are single statements or short transactions that stay correct when they run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlsplit, urlunsplit

from storage.connection import POSTGRESQL, Connection, Database, Params, StorageUnavailable, lock_key

if TYPE_CHECKING:
    import asyncpg  # imported when a PostgreSQL database is opened: a bot on SQLite never loads it

SCHEMES = ("postgresql", "postgres")

_MIGRATION_LOCK = zlib.crc32(b"parley migrations")
"""The advisory lock key every Parley process takes while migrating (any fixed number would do)."""
DEFAULT_POOL_SIZE = 10
"""Connections per process (PARLEY_DB_POOL): a job holds one only for a statement or a short transaction."""


def is_postgres_url(target: object) -> TypeGuard[str]:
    return isinstance(target, str) and urlsplit(target).scheme in SCHEMES


def redacted(url: str) -> str:
    """user@host:port/database: what a message may show of a connection URL (never the password)."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def _changed(status: str) -> int:
    """The row count at the end of a command tag ("UPDATE 3", "INSERT 0 1"); 0 for DDL ("CREATE TABLE")."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class _Statements(Connection):
    """The Connection operations over anything with asyncpg's execute/fetch methods (a pool or a connection)."""

    dialect = POSTGRESQL

    def __init__(self, target: asyncpg.Pool | asyncpg.Connection) -> None:
        self._target = target

    async def execute(self, sql: str, params: Params = ()) -> int:
        return _changed(await self._target.execute(POSTGRESQL.sql(sql), *params))

    async def insert(self, sql: str, params: Params = ()) -> int | None:
        value = await self._target.fetchval(POSTGRESQL.sql(sql), *params)
        return None if value is None else int(value)

    async def fetch_one(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row = await self._target.fetchrow(POSTGRESQL.sql(sql), *params)
        return None if row is None else tuple(row)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._target.fetch(POSTGRESQL.sql(sql), *params)]

    async def lock(self, name: str) -> None:
        """A transaction-level advisory lock: released by COMMIT or ROLLBACK, never left behind by a process
        that dies (its connection closes, and the transaction with it)."""
        await self._target.execute("SELECT pg_advisory_xact_lock($1)", lock_key(name))


class PostgresDatabase(_Statements, Database):
    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        super().__init__(pool)
        self._pool = pool
        self.url = url

    @classmethod
    async def open(cls, url: str, *, max_connections: int = DEFAULT_POOL_SIZE) -> PostgresDatabase:
        """Connect (a pool of up to `max_connections`); no migrating here."""
        import asyncpg

        try:
            pool = await asyncpg.create_pool(url, min_size=1, max_size=max_connections, command_timeout=60, timeout=30)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageUnavailable(f"cannot connect to {redacted(url)} ({type(exc).__name__}: {exc})") from exc
        return cls(pool, url)

    @property
    def description(self) -> str:
        return redacted(self.url)

    async def close(self) -> None:
        await self._pool.close()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self._pool.acquire() as connection, connection.transaction():
            yield _Statements(connection)

    async def prove_writable(self) -> None:
        """That Parley could create its tables here: one made and dropped in a transaction, nothing kept."""
        async with self.transaction() as tx:
            await tx.execute("CREATE TABLE parley_doctor_probe (x INTEGER)")
            await tx.execute("DROP TABLE parley_doctor_probe")

    def connection(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """One pooled connection of one's own, for work beyond the Connection operations (bulk COPY)."""
        return self._pool.acquire()

    @contextlib.asynccontextmanager
    async def migration_lock(self) -> AsyncIterator[None]:
        """A session-level advisory lock on its own connection: the first process to start migrates, the
        others wait here and then find nothing left to do."""
        async with self._pool.acquire() as connection:
            await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                yield
            finally:
                await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    async def scrub(self) -> None:
        """Nothing to do for correctness: a deleted row is invisible to every query at once. What PostgreSQL
        keeps for a while is the dead row version in the table's pages until (auto)vacuum reclaims the space
        (VACUUM marks it reusable; only VACUUM FULL rewrites the file), the write-ahead log segments until
        they are recycled after a checkpoint, and whatever WAL archives, replicas and backups the operator
        runs. Erasing those is the database operator's retention policy, not something a client can force."""


async def _connect(url: str) -> asyncpg.Connection:
    import asyncpg

    return await asyncpg.connect(url)


async def create_schema(admin_url: str, prefix: str) -> tuple[str, str]:
    """A new, empty schema named `prefix_<random>` on the server, and a URL whose connections use it: a
    database of one's own (for a benchmark) without the right to create databases."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    connection = await _connect(admin_url)
    try:
        await connection.execute(f'CREATE SCHEMA "{name}"')
    finally:
        await connection.close()
    parts = urlsplit(admin_url)
    return name, urlunsplit((parts.scheme, parts.netloc, parts.path, f"search_path={name}", ""))


async def drop_schema(admin_url: str, name: str) -> None:
    """Drop a schema made by `create_schema`, with everything in it."""
    connection = await _connect(admin_url)
    try:
        await connection.execute(f'DROP SCHEMA "{name}" CASCADE')
    finally:
        await connection.close()


async def transaction_count(url: str) -> int:
    """Transactions the server has committed or rolled back in this database so far (its statistics, which
    the server publishes within a second or so): every statement outside a transaction counts as one."""
    connection = await _connect(url)
    try:
        await asyncio.sleep(1.5)  # let every backend publish its counts
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        value = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
        return int(value)
    finally:
        await connection.close()


async def server_version(url: str) -> str:
    """The server's version number ("16.4")."""
    connection = await _connect(url)
    try:
        return str(await connection.fetchval("SHOW server_version")).split()[0]
    finally:
        await connection.close()
