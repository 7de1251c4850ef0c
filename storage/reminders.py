"""The reminders table: what each person asked to be reminded of, in which chat, and when it fires next.

Firing is claimed, not assumed: `claim_due` marks due reminders as taken by one process for a lease, in one
`UPDATE … WHERE … RETURNING` whose conditions are checked again on each row it changes, so two processes
sharing a PostgreSQL database never both take the same reminder. The claimer then `finish`es it (done,
or moved to its next occurrence) or `retry`s it later; a claimer that dies leaves a lease that expires,
and another process fires the reminder instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from storage.connection import Database

REPEATS = ("none", "daily", "weekdays", "weekly", "monthly")


@dataclass(frozen=True, slots=True)
class Reminder:
    id: int
    user_id: int
    chat_id: int
    thread_id: int
    text: str
    first: str
    """The first occurrence as local wall time, `YYYY-MM-DDTHH:MM`, in `zone`: what repeats keep to."""
    zone: str
    repeat: str
    due_at: float
    """When it fires next (epoch seconds)."""
    attempts: int
    """Failed deliveries of the current occurrence."""


_COLUMNS = "id, user_id, chat_id, thread_id, text, first_local, zone, repeat, due_at, attempts"


def _reminder(row: tuple[Any, ...]) -> Reminder:
    return Reminder(*row)


class ReminderStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(
        self,
        *,
        user_id: int,
        chat_id: int,
        text: str,
        first: str,
        zone: str,
        repeat: str,
        due_at: float,
        thread_id: int = 0,
    ) -> Reminder:
        if repeat not in REPEATS:
            raise ValueError(repeat)
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""INSERT INTO reminders (user_id, chat_id, thread_id, text, first_local, zone, repeat, due_at,
                        created_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}""",
                (user_id, chat_id, thread_id, text, first, zone, repeat, due_at, time.time()),
            )
        assert row is not None
        return _reminder(row)

    async def pending(self, user_id: int, chat_id: int, limit: int) -> list[Reminder]:
        """One person's reminders in one chat that will still fire, soonest first."""
        rows = await self._db.fetch_all(
            f"""SELECT {_COLUMNS} FROM reminders WHERE user_id = ? AND chat_id = ? AND done_at IS NULL
                ORDER BY due_at, id LIMIT ?""",
            (user_id, chat_id, limit),
        )
        return [_reminder(row) for row in rows]

    async def cancel(self, reminder_id: int, *, user_id: int, chat_id: int) -> Reminder | None:
        """Stop a reminder for good, if it is this person's in this chat and still pending."""
        now = time.time()
        async with self._db.transaction() as tx:
            row = await tx.fetch_one(
                f"""UPDATE reminders SET done_at = ?, cancelled_at = ?
                    WHERE id = ? AND user_id = ? AND chat_id = ? AND done_at IS NULL RETURNING {_COLUMNS}""",
                (now, now, reminder_id, user_id, chat_id),
            )
        return _reminder(row) if row else None

    async def claim_due(self, *, now: float, lease: float, claimer: str, limit: int) -> list[Reminder]:
        """Take up to `limit` due reminders no one holds, for `lease` seconds."""
        async with self._db.transaction() as tx:
            rows = await tx.fetch_all(
                f"""UPDATE reminders SET claimed_by = ?, claimed_until = ?
                    WHERE id IN (
                        SELECT id FROM reminders
                        WHERE done_at IS NULL AND due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                        ORDER BY due_at, id LIMIT ?
                    )
                    AND done_at IS NULL AND due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
                    RETURNING {_COLUMNS}""",
                (claimer, now + lease, now, now, limit, now, now),
            )
        return sorted((_reminder(row) for row in rows), key=lambda r: (r.due_at, r.id))

    async def finish(self, reminder: Reminder, *, claimer: str, next_due: float | None) -> bool:
        """Delivered (or given up): done when `next_due` is None, else moved to it. False if the claim was
        lost meanwhile (its lease ran out and another process took it)."""
        now = time.time()
        moved = "done_at = ?" if next_due is None else "due_at = ?"
        async with self._db.transaction() as tx:
            changed = await tx.execute(
                f"""UPDATE reminders SET {moved}, claimed_by = NULL, claimed_until = NULL, attempts = 0,
                        fired_count = fired_count + 1, last_fired_at = ?
                    WHERE id = ? AND claimed_by = ? AND done_at IS NULL""",
                (now if next_due is None else next_due, now, reminder.id, claimer),
            )
        return changed > 0

    async def retry(self, reminder: Reminder, *, claimer: str, at: float) -> None:
        """Not delivered: hold the claim until `at`, when it is due again, and count the attempt."""
        async with self._db.transaction() as tx:
            await tx.execute(
                """UPDATE reminders SET claimed_until = ?, attempts = attempts + 1
                   WHERE id = ? AND claimed_by = ? AND done_at IS NULL""",
                (at, reminder.id, claimer),
            )

    async def next_due_at(self) -> float | None:
        """When a pending reminder can next be claimed (its due time, or the end of a claim on it)."""
        row = await self._db.fetch_one(
            """SELECT MIN(CASE WHEN claimed_until IS NOT NULL AND claimed_until > due_at THEN claimed_until
                               ELSE due_at END)
               FROM reminders WHERE done_at IS NULL"""
        )
        return float(row[0]) if row and row[0] is not None else None

    async def prune(self, before: float) -> int:
        """Delete reminders that finished (fired or cancelled) before `before`."""
        async with self._db.transaction() as tx:
            return await tx.execute("DELETE FROM reminders WHERE done_at IS NOT NULL AND done_at < ?", (before,))
