"""Parley's SQLite storage: the only package that knows the schema or writes SQL."""

from storage.database import ForgetReport, NewTurn, Storage, StoredTurn, Usage

__all__ = ["ForgetReport", "NewTurn", "Storage", "StoredTurn", "Usage"]
