"""`parley migrate-db --to postgresql://…`: move an existing SQLite database (PARLEY_DB) into PostgreSQL.

Like `parley backup` it needs only the database setting, not the bot's secrets. It can be run again: a
second run copies only what is missing. Stop the bot first, then start it with DATABASE_URL set.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from parley.config import read_environment
from storage import StorageUnavailable
from storage.postgres import is_postgres_url, redacted
from storage.transfer import TransferError, copy_sqlite_to_postgres

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


def migrate_db(env_file: str, target: str) -> int:
    source = Path(read_environment(env_file).get("PARLEY_DB") or "parley.db")
    if not source.is_file():
        print(f"parley: PARLEY_DB: no database at {source}", file=sys.stderr)
        return EXIT_CONFIG
    if not is_postgres_url(target):
        print("parley: --to must be a postgresql://user:password@host:5432/database URL", file=sys.stderr)
        return EXIT_CONFIG
    where = redacted(target)
    try:
        report = asyncio.run(copy_sqlite_to_postgres(source, target))
    except StorageUnavailable as exc:
        print(f"parley: {exc}: check the server, the URL and the password", file=sys.stderr)
        return EXIT_CONFIG
    except TransferError as exc:
        print(f"parley: cannot copy {source} into {where}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    width = max(len(table.table) for table in report)
    for table in report:
        print(
            f"  {table.table:<{width}}  {table.source_rows:>9} in SQLite  {table.copied:>9} copied now"
            f"  {table.target_rows:>9} in PostgreSQL{'' if table.complete else '  MISSING ROWS'}"
        )
    if not all(table.complete for table in report):
        print(f"parley: {where} has fewer rows than {source} in some tables (marked above)", file=sys.stderr)
        return EXIT_FAILURE
    print(f"parley: {source} copied into {where}; start the bot with DATABASE_URL set to it")
    return EXIT_OK
