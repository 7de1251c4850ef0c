"""From accepted update to finished job: durable intake, per-chat scheduling, resume after a crash.

Every accepted update is written to the job table *before* any work starts; only then is it scheduled.
At start-up, whatever a crash or a stop left queued or working is scheduled again, in its original order.
A redelivered update finds its row already there and is dropped, so nothing is answered twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot import texts
from bot.groups import GroupJobs
from bot.jobs import ChatJobs
from bot.sender import tell
from bot.spending import SpendCommands
from bot.tools import ToolJobs
from parley.jobs import ChatScheduler, Job
from storage import JobRow, Storage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""A job that was started this often without finishing (the process died each time) is given up on."""

JobHandler = Callable[[JobRow], Awaitable[bool]]
BACKGROUND_KINDS = frozenset({"transcribe_log"})


class Dispatcher:
    def __init__(
        self,
        *,
        storage: Storage,
        scheduler: ChatScheduler,
        jobs: ChatJobs,
        groups: GroupJobs,
        tools: ToolJobs,
        max_queue: int,
    ) -> None:
        self.storage = storage
        self.scheduler = scheduler
        self.jobs = jobs
        self.groups = groups
        self.max_queue = max_queue
        self._handlers: dict[str, JobHandler] = {
            "converse": jobs.converse,
            "say": jobs.say,
            "reset": jobs.reset,
            "voice": jobs.voice,
            "forget": jobs.ask_forget,
            "export": jobs.export,
            "access": jobs.change_access,
            "users": jobs.users,
            **SpendCommands(jobs.services, jobs.bot).handlers(),  # usage, model, stats
            "summary": groups.summary,
            "digest": groups.digest,
            "transcribe_log": groups.transcribe_log,
            "transcribe": tools.transcribe,
            "tone": tools.tone,
            "speak": tools.speak,
            "mode": tools.mode,
            "button": jobs.button,
            "retry": self._retry,
        }

    async def accept(
        self, *, chat_id: int, source: str, kind: str, payload: dict[str, Any], message_id: int | None = None
    ) -> bool:
        """Record and schedule one update's job. False when it was refused (busy) or already known."""
        if kind not in self._handlers:
            raise ValueError(f"unknown job kind {kind!r}")
        if self.scheduler.pending >= self.max_queue:
            if kind in BACKGROUND_KINDS:  # nobody is waiting for it: drop quietly rather than spam a group
                log.warning("chat=%s %s dropped: %d jobs queued", chat_id, kind, self.scheduler.pending)
                return False
            log.warning("chat=%s message=%s refused: %d jobs queued", chat_id, message_id, self.scheduler.pending)
            await self._tell_busy(chat_id, message_id)
            return False
        job_id = await self.storage.jobs.add(
            chat_id=chat_id, source=source, kind=kind, payload=payload, message_id=message_id
        )
        if job_id is None:
            log.info("chat=%s %s already accepted: redelivered update ignored", chat_id, source)
            return False
        self._schedule(job_id, chat_id, kind)
        return True

    async def resume(self) -> int:
        """Schedule what a crash or a stop left unfinished; give up on jobs that keep dying."""
        resumed = 0
        for row in await self.storage.jobs.unfinished():
            if row.replied:  # the answer was out before the stop: only its bookkeeping was cut short
                await self.storage.jobs.finish(row.id, ok=True)
                continue
            if row.attempts >= MAX_ATTEMPTS:
                log.error("chat=%s job=%s %s gave up after %d attempts", row.chat_id, row.id, row.kind, row.attempts)
                await self.storage.jobs.finish(row.id, ok=False, error=f"gave up after {row.attempts} attempts")
                await self.jobs.tell_given_up(row)
                continue
            self._schedule(row.id, row.chat_id, row.kind)
            resumed += 1
        if resumed:
            log.info("resumed %d unfinished jobs", resumed)
        return resumed

    def _schedule(self, job_id: int, chat_id: int, kind: str) -> None:
        lane = "background" if kind in BACKGROUND_KINDS else ""
        job = Job(chat_id=chat_id, label=f"{kind}#{job_id}", run=lambda: self.run(job_id), lane=lane)
        if not self.scheduler.submit(job):
            log.info("chat=%s job=%s left queued: shutting down", chat_id, job_id)

    async def run(self, job_id: int) -> None:
        row = await self.storage.jobs.start(job_id)
        if row is None:  # finished meanwhile (e.g. run by a Retry tap)
            return
        handler = self._handlers.get(row.kind)
        started, outcome, ok = time.perf_counter(), "failed", False
        try:
            ok = await handler(row) if handler else False
            outcome = "ok" if ok else outcome
        except Exception as exc:
            outcome = type(exc).__name__
            self.jobs.services.metrics.error(outcome)
            # Finished, as failed: a job that raised must not sit "working" to be re-run at some later start.
            await self.storage.jobs.finish(job_id, ok=False, error=outcome)
            raise
        finally:
            if row.kind != "converse":  # a conversation turn logs its own line, with each step's duration
                log.info(
                    "chat=%s message=%s job=%s kind=%s total=%.0fms outcome=%s",
                    row.chat_id,
                    row.message_id,
                    job_id,
                    row.kind,
                    (time.perf_counter() - started) * 1000,
                    outcome,
                )
        await self.storage.jobs.finish(job_id, ok=ok, error=None if ok else "failed")

    async def _retry(self, row: JobRow) -> bool:
        """The Retry button: put the failed job back and run it now, in this chat's turn."""
        failed_id = int(row.payload["job_id"])
        original = await self.storage.jobs.requeue(failed_id, row.chat_id)
        await self.jobs.acknowledge_retry(row, retrying=original is not None)
        if original is not None:
            await self.run(failed_id)
        return True

    async def _tell_busy(self, chat_id: int, message_id: int | None) -> None:
        await tell(self.jobs.bot, chat_id, texts.BUSY, reply_to=message_id)
