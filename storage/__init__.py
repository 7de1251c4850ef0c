"""Parley's storage: the only package that knows the schema or writes SQL.

Layers, bottom up: `connection` (a database, transactions, the dialect) with its engines (`sqlite`,
`postgres`); `records` (what goes in and out); one module per group of tables (users, turns, jobs, groups,
usage and its budget holds, access, privacy, cache, reminders, updates, limits: the rate windows, schedule:
the claims of scheduled work), each importing only the layers below; `facade.Storage`, which assembles
them.
"""

from storage.connection import StorageUnavailable
from storage.facade import Storage
from storage.jobs import JobRow
from storage.records import ForgetReport, NewTurn, Preferences, StoredTurn, Usage
from storage.sqlite import backup_file

__all__ = [
    "ForgetReport",
    "JobRow",
    "NewTurn",
    "Preferences",
    "Storage",
    "StorageUnavailable",
    "StoredTurn",
    "Usage",
    "backup_file",
]
