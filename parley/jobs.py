"""Per-chat job scheduling: strictly in order within a chat, concurrent across chats.

Each chat with pending work gets one worker task that drains its queue and then exits, so an idle
chat costs nothing. A semaphore bounds how many jobs run at once across all chats. The queue itself is
in memory; durability is the job table's business (jobs are written there before they are submitted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

JobRunner = Callable[[], Awaitable[None]]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any] | None]) -> None:
    """Cancel helper tasks whose work is no longer wanted (all at once), and wait until each has stopped."""
    running = [task for task in tasks if task is not None and not task.done()]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def settled(task: asyncio.Task[Any]) -> None:
    """A helper task whose caller is leaving (done with it, or failing): stopped if still running, and its
    failure, if it had one the caller did not take, counted as seen (the caller's own error says more)."""
    if not task.done():
        await cancel_and_wait([task])
    elif not task.cancelled():
        task.exception()


@dataclass(frozen=True, slots=True)
class Job:
    chat_id: int
    label: str
    run: JobRunner
    lane: str = ""  # a chat's background work (e.g. transcribing its log) runs beside its replies, not behind

    @property
    def key(self) -> tuple[int, str]:
        return (self.chat_id, self.lane)


class ChatScheduler:
    def __init__(self, *, max_concurrent: int = 16) -> None:
        self._queues: dict[tuple[int, str], deque[Job]] = {}
        self._workers: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrent)
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True
        self.running = 0

    @property
    def pending(self) -> int:
        """Jobs accepted and not yet finished (waiting or running)."""
        return sum(len(q) for q in self._queues.values())

    def pending_in(self, lane: str, chat_id: int | None = None) -> int:
        """Jobs accepted and not yet finished in one lane (of one chat, or of all)."""
        return sum(len(q) for (chat, name), q in self._queues.items() if name == lane and chat_id in (None, chat))

    @property
    def active_chats(self) -> int:
        return len(self._workers)

    def submit(self, job: Job) -> bool:
        """Queue a job behind the chat's earlier ones. False once shutdown has begun."""
        if not self._accepting:
            return False
        self._queues.setdefault(job.key, deque()).append(job)
        if job.key not in self._workers:
            self._idle.clear()
            self._workers[job.key] = asyncio.create_task(self._drain(job.key), name=f"chat-{job.chat_id}{job.lane}")
        return True

    async def _drain(self, key: tuple[int, str]) -> None:
        queue = self._queues[key]
        chat_id = key[0]
        try:
            while queue and self._accepting:
                job = queue[0]
                async with self._slots:
                    if not self._accepting:
                        break
                    self.running += 1
                    try:
                        await job.run()
                    except Exception:
                        # Jobs report their own failures to the user; this is the last line of defence.
                        log.exception("job %s in chat %s failed", job.label, chat_id)
                    finally:
                        self.running -= 1
                queue.popleft()
        finally:
            if not queue or not self._accepting:
                self._queues.pop(key, None)
            self._workers.pop(key, None)
            if not self._workers:
                self._idle.set()

    async def shutdown(self, grace_seconds: float) -> None:
        """Start nothing new; give running jobs `grace_seconds` to finish, then cancel them.

        Jobs that never started (or were cancelled) stay queued or working in the job table and are
        resumed at the next start.
        """
        self._accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_seconds)
        except TimeoutError:
            log.warning("shutdown: %d jobs still running after %.0f s, cancelling", self.running, grace_seconds)
        for task in list(self._workers.values()):
            task.cancel()
        if self._workers:
            await asyncio.gather(*self._workers.values(), return_exceptions=True)

    async def wait_idle(self) -> None:
        await self._idle.wait()


class MemoryBudget:
    """Bytes that jobs in progress may hold at once, handed out first come, first served.

    Jobs mostly wait for the model, so many run at once (PARLEY_WORKERS); what bounds them is memory. A
    voice turn holds its decoded recording several times over while the model hears it (the WAV, its
    base64 in the request, the SDK's JSON body), so a burst of long recordings could take gigabytes where
    a burst of short notes takes megabytes: each turn takes its share here first, and waits when the
    budget is spent. A share larger than the whole budget is granted when nothing else is held, so no job
    waits forever."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.held = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, amount: int) -> None:
        if not self._waiters and self._fits(amount):
            self.held += amount
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((amount, waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(amount)  # granted just as the wait was cancelled: hand it on
            else:
                with contextlib.suppress(ValueError):  # (already passed over, if the budget moved meanwhile)
                    self._waiters.remove((amount, waiter))
                self._wake()
            raise

    def release(self, amount: int) -> None:
        self.held -= amount
        self._wake()

    def _fits(self, amount: int) -> bool:
        return self.held + amount <= self.total or self.held == 0

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            amount, waiter = self._waiters.popleft()
            if not waiter.done():
                self.held += amount
                waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def share(self, amount: int) -> AsyncIterator[Share]:
        """Hold `amount` bytes for the block; `Share.resize` corrects the estimate once the truth is known."""
        await self.take(amount)
        share = Share(self, amount)
        try:
            yield share
        finally:
            self.release(share.amount)


class Share:
    def __init__(self, budget: MemoryBudget, amount: int) -> None:
        self.budget, self.amount = budget, amount

    def resize(self, amount: int) -> None:
        """Hold `amount` instead, once the truth is known: less is given back at once; more is taken at
        once too (the recording is in memory by then; waiting for it could only deadlock), so the budget
        may be overdrawn until this share ends, and newcomers wait meanwhile."""
        self.budget.held += amount - self.amount
        self.amount = amount
        self.budget._wake()
