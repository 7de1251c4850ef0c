"""Reminders that fire: a loop that claims due reminders from the database and hands each to `fire`.

The database is the schedule, so reminders survive restarts and a reminder due while Parley was down fires
when it is back (a repeating one then moves to its next occurrence, not through every missed one). Each
due reminder is claimed for a lease before it is fired, so several processes sharing a database fire it
once. A delivery that fails is retried with backoff a few times; then that occurrence is given up (and
logged), a repeating reminder going on to its next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from parley.actions.recurrence import next_due
from storage.reminders import Reminder, ReminderStore

log = logging.getLogger(__name__)

Fire = Callable[[Reminder], Awaitable[None]]
"""Delivers one reminder (the edge: a voice note in the person's voice, and its text); raises if it could not."""

POLL_SECONDS = 30.0
"""The longest sleep: reminders created by another process are seen at least this often."""
LEASE_SECONDS = 300.0
BATCH = 20
CONCURRENCY = 4
MAX_ATTEMPTS = 5
RETRY_SECONDS = (30.0, 120.0, 600.0, 1800.0)


class ReminderScheduler:
    def __init__(
        self,
        store: ReminderStore,
        fire: Fire,
        *,
        now: Callable[[], float] = time.time,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.fire = fire
        self.now = now
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.claimer = f"{secrets.token_hex(6)}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def wake(self) -> None:
        """A reminder was just created or changed: look again now rather than after the current sleep."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reminders")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_due()
                delay = self.poll_seconds
                soonest = await self.store.next_due_at()
                if soonest is not None:
                    delay = min(delay, max(0.0, soonest - self.now()))
            except Exception:  # the database blinked: try again after a pause, never stop firing for good
                log.exception("reminders: could not check for due reminders")
                delay = self.poll_seconds
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.05))

    async def run_due(self) -> int:
        """Claim and fire what is due now; returns how many were fired."""
        fired = 0
        while True:
            due = await self.store.claim_due(
                now=self.now(), lease=self.lease_seconds, claimer=self.claimer, limit=BATCH
            )
            if not due:
                return fired
            results = await asyncio.gather(*(self._fire_one(reminder) for reminder in due))
            fired += sum(results)
            if len(due) < BATCH:
                return fired

    async def _fire_one(self, reminder: Reminder) -> bool:
        async with self._slots:
            try:
                await self.fire(reminder)
            except Exception as exc:
                return await self._failed(reminder, exc)
        following = self._following(reminder)
        if not await self.store.finish(reminder, claimer=self.claimer, next_due=following):
            log.warning("reminder %s: the claim ran out while it was delivered (it may fire twice)", reminder.id)
        log.info("reminder %s fired for user %s in chat %s", reminder.id, reminder.user_id, reminder.chat_id)
        return True

    async def _failed(self, reminder: Reminder, exc: Exception) -> bool:
        attempt = reminder.attempts + 1
        if attempt >= MAX_ATTEMPTS:
            log.error("reminder %s not delivered after %d attempts, giving this time up: %s", reminder.id, attempt, exc)
            await self.store.finish(reminder, claimer=self.claimer, next_due=self._following(reminder))
            return False
        backoff = RETRY_SECONDS[min(attempt - 1, len(RETRY_SECONDS) - 1)]
        log.warning("reminder %s not delivered (attempt %d), again in %.0f s: %s", reminder.id, attempt, backoff, exc)
        await self.store.retry(reminder, claimer=self.claimer, at=self.now() + backoff)
        return False

    def _following(self, reminder: Reminder) -> float | None:
        """The next occurrence after now (after a downtime: the next one still ahead, not every missed one)."""
        return next_due(
            datetime.fromisoformat(reminder.first), ZoneInfo(reminder.zone), reminder.repeat,
            max(self.now(), reminder.due_at),
        )  # fmt: skip
