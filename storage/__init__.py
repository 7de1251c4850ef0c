"""Parley's SQLite storage: the only package that knows the schema or writes SQL."""

from storage.database import ForgetReport, NewTurn, Storage, StoredTurn, Usage, backup_file
from storage.jobs import JobRow

__all__ = ["ForgetReport", "JobRow", "NewTurn", "Storage", "StoredTurn", "Usage", "backup_file"]
