"""Moving up: copy a SQLite database, every table, into PostgreSQL (`parley migrate-db --to …`).

Both sides are first brought to the latest migration, so their tables match column for column (checked).
The source is read in one snapshot (SQLite's WAL lets the bot keep writing meanwhile, though what it writes
after the snapshot is not copied: stop the bot first). The target is written in ONE transaction: all or
nothing. Each table's rows stream in batches through COPY into a temporary table, then move with
`INSERT … ON CONFLICT DO NOTHING`, so a second run adds only what is missing (a table without a key is
merged row by row, counting duplicates). Afterwards every identity sequence is set past the largest copied
id, so the bot's next rows get fresh ids, and every table's row count is compared.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.migrations import migrate
from storage.postgres import PostgresDatabase
from storage.sqlite import SqliteDatabase

if TYPE_CHECKING:
    import asyncpg

BATCH = 5000
"""Rows per COPY: bounds the memory a table of any size needs."""


@dataclass(frozen=True, slots=True)
class TableCopy:
    table: str
    source_rows: int
    copied: int  # rows added by this run (0 on a run that finds everything already there)
    target_rows: int

    @property
    def complete(self) -> bool:
        """Every source row has a place in the target (which may hold more: rows written on PostgreSQL)."""
        return self.target_rows >= self.source_rows


class TransferError(Exception):
    """The databases cannot be copied as they are (different tables or columns)."""


async def copy_sqlite_to_postgres(source: Path, target_url: str) -> list[TableCopy]:
    """Copy every table of the SQLite file `source` into the PostgreSQL database at `target_url`."""
    sqlite = await SqliteDatabase.open(source)
    try:
        await migrate(sqlite)
        postgres = await PostgresDatabase.open(target_url, max_connections=2)
        try:
            await migrate(postgres)
            return await _copy(sqlite, postgres)
        finally:
            await postgres.close()
    finally:
        await sqlite.close()


async def _copy(sqlite: SqliteDatabase, postgres: PostgresDatabase) -> list[TableCopy]:
    report: list[TableCopy] = []
    async with sqlite.snapshot(), postgres.connection() as connection, connection.transaction():
        tables = await _tables(sqlite)
        for table in tables:
            columns = await _columns(sqlite, table)
            target_columns = await _target_columns(connection, table)
            if set(columns) != set(target_columns):
                raise TransferError(f"{table}: columns differ ({sorted(set(columns) ^ set(target_columns))})")
            before = await _count(connection, table)
            if await _keyed(connection, table):
                await _copy_keyed(sqlite, connection, table, columns)
            else:
                await _merge_unkeyed(sqlite, connection, table, columns)
            after = await _count(connection, table)
            [(source_rows,)] = await sqlite.fetch_all(f'SELECT COUNT(*) FROM "{table}"')
            report.append(TableCopy(table, int(source_rows), after - before, after))
        await _advance_sequences(connection)
    return report


async def _tables(sqlite: SqliteDatabase) -> list[str]:
    """Every table but the migrations' record, parents before the tables whose foreign keys point at them.
    SQLite's own search index (a virtual table and its shadow tables) stays behind: PostgreSQL indexes the
    same folded text its own way."""
    names = [
        row[0]
        for row in await sqlite.fetch_all(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'"
            " AND name NOT LIKE 'sqlite_%' AND name != '_migrations' ORDER BY name"
        )
    ]
    parents = {
        name: {row[2] for row in await sqlite.fetch_all(f'PRAGMA foreign_key_list("{name}")')} - {name}
        for name in names
    }
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise TransferError(f"foreign keys form a cycle among {sorted(set(names) - set(ordered))}")
        ordered.extend(ready)
    return ordered


async def _columns(sqlite: SqliteDatabase, table: str) -> list[str]:
    return [row[1] for row in await sqlite.fetch_all(f'PRAGMA table_info("{table}")')]


async def _target_columns(connection: asyncpg.Connection, table: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    if not rows:
        raise TransferError(f"{table}: no such table in the target")
    return [row[0] for row in rows]


async def _keyed(connection: asyncpg.Connection, table: str) -> bool:
    """Has a primary key or unique constraint, so ON CONFLICT can recognise rows already copied."""
    return bool(
        await connection.fetchval(
            "SELECT COUNT(*) FROM information_schema.table_constraints WHERE table_schema = current_schema()"
            " AND table_name = $1 AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            table,
        )
    )


async def _count(connection: asyncpg.Connection, table: str) -> int:
    return int(await connection.fetchval(f'SELECT COUNT(*) FROM "{table}"'))


async def _rows(sqlite: SqliteDatabase, table: str, columns: list[str]) -> AsyncIterator[list[tuple[Any, ...]]]:
    names = ", ".join(f'"{c}"' for c in columns)
    async for batch in sqlite.batches(f'SELECT {names} FROM "{table}" ORDER BY rowid', BATCH):
        yield batch


async def _copy_keyed(sqlite: SqliteDatabase, connection: asyncpg.Connection, table: str, columns: list[str]) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    staging = f"_copy_{table}"
    await connection.execute(f'CREATE TEMPORARY TABLE "{staging}" (LIKE "{table}") ON COMMIT DROP')
    async for batch in _rows(sqlite, table, columns):
        await connection.copy_records_to_table(staging, records=batch, columns=columns)
        await connection.execute(
            f'INSERT INTO "{table}" ({names}) SELECT {names} FROM "{staging}" ON CONFLICT DO NOTHING'
        )
        await connection.execute(f'TRUNCATE "{staging}"')


async def _merge_unkeyed(
    sqlite: SqliteDatabase, connection: asyncpg.Connection, table: str, columns: list[str]
) -> None:
    """Add the source rows the target lacks, as a multiset: a row twice in the source is there twice."""
    names = ", ".join(f'"{c}"' for c in columns)
    present = Counter(tuple(row) for row in await connection.fetch(f'SELECT {names} FROM "{table}"'))
    async for batch in _rows(sqlite, table, columns):
        missing = []
        for row in batch:
            if present[row] > 0:
                present[row] -= 1
            else:
                missing.append(row)
        if missing:
            await connection.copy_records_to_table(table, records=missing, columns=columns)


async def _advance_sequences(connection: asyncpg.Connection) -> None:
    """Every identity column's sequence past the largest id now in its table."""
    for table, column in await connection.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ):
        await connection.execute(
            f'SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT MAX("{column}") FROM "{table}"), 0)'
            " + 1, false)",
            f'"{table}"',
            column,
        )
