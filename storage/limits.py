"""The rate windows: for each limited thing (a user, a group chat, a command in a chat), the times of its
recent hits, kept in the database so that every process sharing it counts the same messages.

The counting rule is the caller's (parley/access.py); this module gives it the window to read and change
inside one transaction that holds the window's lock, so two processes never both see room for one more.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from storage.connection import Database


@dataclass(slots=True)
class Window:
    """One window as stored; change it in place inside `RateStore.window`, and it is written back."""

    hits: list[float] = field(default_factory=list)
    """Epoch seconds of the recent hits, oldest first."""
    warned: bool = False
    """Told to slow down in this burst already."""
    expires_at: float = 0.0
    """When nothing in it counts any more (the row may then be deleted)."""


def _hits(text: str) -> list[float]:
    return [float(x) for x in text.split()]


class RateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    @contextlib.asynccontextmanager
    async def window(self, scope: str, subject: int) -> AsyncIterator[Window]:
        """The window of `subject` in `scope`, locked until the block ends and then stored as the block left it
        (the block must not wait on anything but itself: every process's hit on this window waits for it)."""
        async with self._db.transaction() as tx:
            await tx.lock(f"rate:{scope}:{subject}")
            row = await tx.fetch_one(
                "SELECT hits, warned, expires_at FROM rate_windows WHERE scope = ? AND subject = ?", (scope, subject)
            )
            window = Window(_hits(row[0]), bool(row[1]), float(row[2])) if row else Window()
            before = (list(window.hits), window.warned, window.expires_at)
            yield window
            if (window.hits, window.warned, window.expires_at) == before:
                return
            await tx.execute(
                """INSERT INTO rate_windows (scope, subject, hits, warned, expires_at) VALUES (?, ?, ?, ?, ?)
                   ON CONFLICT (scope, subject) DO UPDATE
                   SET hits = excluded.hits, warned = excluded.warned, expires_at = excluded.expires_at""",
                (scope, subject, " ".join(f"{hit:.3f}" for hit in window.hits), int(window.warned), window.expires_at),
            )

    async def prune(self, now: float) -> int:
        """Delete the windows nothing in counts any more: rows follow active people, not everyone ever seen."""
        async with self._db.transaction() as tx:
            return await tx.execute("DELETE FROM rate_windows WHERE expires_at <= ?", (now,))

    async def count(self) -> int:
        row = await self._db.fetch_one("SELECT COUNT(*) FROM rate_windows")
        return int(row[0]) if row else 0
