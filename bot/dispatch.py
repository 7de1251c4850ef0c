"""From accepted update to finished job: durable intake, per-chat order across processes, taking over.

Every accepted update is written to the job table *before* any work starts; only then is it scheduled. A
job runs only once this process has taken it (`JobStore.take`: a lease on the oldest unfinished job of its
chat's lane), and keeps it by renewing the lease while it works; a job whose lease is lost stops. So a
chat's jobs run one at a time, in order, whichever processes accepted them, and different chats run in
parallel everywhere. A reply marked delivered is never sent again: such a job is only finished.

With one SQLite file there is one process: at start-up it takes back whatever its previous run left queued
or working, in order. With PostgreSQL, several processes share the table: one that finishes a chat's job
takes the chat's next one; and every POLL_SECONDS each looks for jobs nobody holds whose turn it is — those
another process accepted while the chat was busy, and those of a process that died, once their leases run
out. On a stop, running jobs get the grace period; the leases left are released for the others at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from telegram import Bot
from telegram.ext import JobQueue

from bot import texts
from bot.edge import Edge
from bot.jobs import Payload, Route
from bot.languages import Languages
from bot.replies import Run
from bot.sender import tell
from parley.i18n.catalog import using
from parley.jobs import Job
from parley.services import Services
from storage import JobRow
from storage.jobs import Taken

log = logging.getLogger(__name__)

BACKGROUND_SHARE = 0.5
"""Background work (a group log's transcriptions) may queue up to half of PARLEY_MAX_QUEUE beside it …"""
BACKGROUND_CHAT_SHARE = 0.25
"""… and one chat up to a quarter of that."""

STORAGE_RETRY_SECONDS = 5.0
STORAGE_RETRIES = 720
"""A job the database will not let start (or finish) is asked about again every 5 s, for up to an hour."""

MAX_ATTEMPTS = 3
"""A job that was started this often without finishing (the process died each time) is given up on."""

POLL_SECONDS = 1.0
"""With a shared database: how often a process looks for jobs it may take (see the module's docstring)."""


class Dispatcher:
    """Runs the job table: `routes` says, for each kind, how to read its payload and what runs it."""

    def __init__(
        self, services: Services, bot: Bot, routes: Mapping[str, Route[Any]], *, job_queue: JobQueue | None = None
    ) -> None:
        self.storage = services.storage
        self.scheduler = services.scheduler
        self.metrics = services.metrics
        self.max_queue = services.settings.operations.max_queue
        self.background_queue = max(1, math.ceil(self.max_queue * BACKGROUND_SHARE))
        self.background_per_chat = max(1, math.ceil(self.background_queue * BACKGROUND_CHAT_SHARE))
        self.routes = routes
        self.workers = services.settings.operations.workers
        self.lease = services.settings.operations.job_lease_seconds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        """Who holds a lease: this process (a restarted one is another owner)."""
        self._scheduled: set[int] = set()  # jobs in this process's queues or running here
        self._poller: asyncio.Task[None] | None = None
        languages = Languages(services.storage, services.settings.telegram.language)
        self.edge = Edge(services=services, bot=bot, jobs=self, job_queue=job_queue, languages=languages)

    async def accept(self, *, chat_id: int, source: str, job: Payload, message_id: int | None = None) -> bool:
        """Record and schedule one update's job. False when it was refused (busy) or already known."""
        route = self.routes.get(job.kind)
        if route is None:
            raise ValueError(f"no route for the job kind {job.kind!r}")
        if route.background:
            # Background work has a share of the queue of its own, and each chat a part of that share:
            # a group's flood of voice notes waits (or is dropped), never the people waiting for answers.
            lane, chat = self.scheduler.pending_in("background"), self.scheduler.pending_in("background", chat_id)
            if lane >= self.background_queue or chat >= self.background_per_chat:
                log.warning("chat=%s %s dropped: %d background jobs queued (%d here)", chat_id, job.kind, lane, chat)
                return False
        elif (waiting := self.scheduler.pending_in("")) >= self.max_queue:
            log.warning("chat=%s message=%s refused: %d jobs queued", chat_id, message_id, waiting)
            await tell(self.edge.bot, chat_id, texts.BUSY, reply_to=message_id)
            return False
        try:
            job_id = await self.storage.jobs.add(
                chat_id=chat_id,
                source=source,
                kind=job.kind,
                payload=job.to_json(),
                message_id=message_id,
                lane=_lane(route),
            )
        except Exception:  # the database refuses writes (a full disk …): the message cannot be taken
            log.exception("chat=%s message=%s could not be stored", chat_id, message_id)
            if not route.background:
                await tell(self.edge.bot, chat_id, texts.NOT_STORED, reply_to=message_id)
            return False
        if job_id is None:
            log.info("chat=%s %s already accepted: redelivered update ignored", chat_id, source)
            return False
        self._schedule(job_id, chat_id, job.kind)
        return True

    async def resume(self) -> int:
        """Schedule what is owed: on SQLite, whatever this process's previous run left unfinished (its leases
        were this process's own), in order; with a shared database, what nobody holds (see `start`)."""
        if self.storage.shared:
            return await self._poll()
        await self.storage.jobs.release()
        rows = await self.storage.jobs.unfinished()
        for row in rows:
            self._schedule(row.id, row.chat_id, row.kind)
        if rows:
            log.info("resumed %d unfinished jobs", len(rows))
        return len(rows)

    def start(self) -> None:
        """With a shared database: look for jobs to take every POLL_SECONDS until `stop`."""
        if self.storage.shared and self._poller is None:
            self._poller = asyncio.create_task(self._keep_polling(), name="jobs-poller")

    async def stop(self) -> None:
        """Stop looking for jobs (before the scheduler's shutdown)."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def release(self) -> None:
        """After the scheduler's shutdown: release the leases of jobs this process did not finish (cancelled
        past the grace period), so another process takes them at once rather than when the leases run out."""
        try:
            released = await self.storage.jobs.release(self.owner)
        except Exception as exc:
            log.warning("could not release this process's jobs (%s): others take them when the leases run out", exc)
            return
        if released:
            log.info("released %d unfinished jobs for other processes", released)

    async def _keep_polling(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._poll()
            except Exception as exc:  # the database blinked: the next round tries again
                log.warning("could not look for jobs to take: %s", exc)

    async def _poll(self) -> int:
        """Schedule jobs nobody holds whose turn it is, up to PARLEY_WORKERS of them (those beyond wait for the
        next round, or for a process with room)."""
        found = 0
        for job in await self.storage.jobs.claimable(self.workers + len(self._scheduled)):
            if job.id not in self._scheduled and found < self.workers:
                found += self._schedule(job.id, job.chat_id, job.kind)
        return found

    def _schedule(self, job_id: int, chat_id: int, kind: str) -> bool:
        if job_id in self._scheduled:
            return False
        route = self.routes.get(kind)

        async def run() -> None:
            try:
                await self.run(job_id)
            finally:
                self._scheduled.discard(job_id)

        job = Job(chat_id=chat_id, label=f"{kind}#{job_id}", run=run, lane=_lane(route))
        if not self.scheduler.submit(job):
            log.info("chat=%s job=%s left queued: shutting down", chat_id, job_id)
            return False
        self._scheduled.add(job_id)
        return True

    async def run(self, job_id: int) -> None:
        """Take the job and run it, if it is this process's to run now."""
        taken = await self._take(job_id)
        if taken is None:  # finished meanwhile, held by another process, not its turn, or the database refuses
            return
        row = taken.row
        try:
            if taken.started:
                await self._work(row)
            elif row.replied:  # the answer was out before a crash: only its bookkeeping was cut short
                await self._finish(row.id, ok=True, error=None)
            else:
                log.error("chat=%s job=%s %s gave up after %d attempts", row.chat_id, row.id, row.kind, row.attempts)
                await self._finish(row.id, ok=False, error=f"gave up after {row.attempts} attempts")
                with using(await self.edge.languages.of_chat(row.chat_id)):
                    await self._run_of(row).say(texts.GAVE_UP, reply_to=row.message_id)
        finally:
            if self.storage.shared:
                await self._next_of(row)

    async def _work(self, row: JobRow) -> None:
        route = self.routes.get(row.kind)
        job_id = row.id
        run = self._run_of(row)
        started, outcome, ok = time.perf_counter(), "failed", False
        try:
            async with self._holding(job_id):
                with using(await self.edge.languages.of_chat(row.chat_id)):  # each job speaks its chat's language
                    ok = await route(row, run) if route is not None else False
            outcome = "ok" if ok else outcome
        except LeaseLost:
            outcome = "lease lost"
            return  # another process runs it now, and finishes it
        except Exception as exc:
            outcome = type(exc).__name__
            self.metrics.error(outcome)
            # Finished, as failed: a job that raised must not sit "working" to be re-run at some later start;
            # and whoever sent it is told, not left waiting for an answer that will never come.
            await self._finish(job_id, ok=False, error=outcome)
            if route is not None and not route.background:
                await run.say(texts.FAILED_UNEXPECTEDLY, reply_to=row.message_id)
            raise
        finally:
            if route is None or not route.logs_itself or outcome == "lease lost":
                log.info(
                    "chat=%s message=%s job=%s kind=%s total=%.0fms outcome=%s",
                    row.chat_id,
                    row.message_id,
                    job_id,
                    row.kind,
                    (time.perf_counter() - started) * 1000,
                    outcome,
                )
        await self._finish(job_id, ok=ok, error=None if ok else "failed")

    @contextlib.asynccontextmanager
    async def _holding(self, job_id: int) -> AsyncIterator[None]:
        """Renew the job's lease every third of it while the block runs; when the lease is lost (this process
        stalled past it, and another took the job), the block is cancelled and LeaseLost raised."""
        task = asyncio.current_task()
        assert task is not None
        lost = False

        async def renew() -> None:
            nonlocal lost
            while True:
                await asyncio.sleep(self.lease / 3)
                try:
                    if await self.storage.jobs.renew(job_id, owner=self.owner, lease=self.lease):
                        continue
                except Exception as exc:  # a blink of the database: the lease has two more chances
                    log.warning("job=%s lease not renewed (%s)", job_id, exc)
                    continue
                lost = True
                task.cancel()
                return

        renewer = asyncio.create_task(renew(), name=f"lease-{job_id}")
        try:
            yield
        except asyncio.CancelledError:
            if lost and task.uncancel() == 0:
                log.warning("job=%s lost its lease to another process: stopped here", job_id)
                raise LeaseLost from None
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _next_of(self, row: JobRow) -> None:
        """A job of a chat is finished here: its chat's next job (accepted by any process) is taken here now,
        rather than at some process's next poll."""
        try:
            following = await self.storage.jobs.claimable(1, chat_id=row.chat_id, lane=row.lane)
        except Exception as exc:  # the pollers find it
            log.warning("chat=%s next job not looked up (%s)", row.chat_id, exc)
            return
        for job in following:
            self._schedule(job.id, job.chat_id, job.kind)

    async def _take(self, job_id: int) -> Taken | None:
        """Take the job. A database that refuses the write (a full disk) is asked again every few seconds: the
        job was accepted, so it is answered once writes work again, not at the next start."""
        for attempt in range(STORAGE_RETRIES):
            try:
                return await self.storage.jobs.take(
                    job_id, owner=self.owner, lease=self.lease, max_attempts=MAX_ATTEMPTS
                )
            except Exception as exc:
                if attempt == 0:
                    log.error("job=%s cannot start, the database refuses writes (%s): trying again", job_id, exc)
                await asyncio.sleep(STORAGE_RETRY_SECONDS)
        log.error("job=%s left queued: the database kept refusing writes", job_id)
        return None

    async def _finish(self, job_id: int, *, ok: bool, error: str | None) -> None:
        """Finish the job while this process holds it. A database that refuses the write is asked again every
        few seconds, and the chat's next job waits meanwhile (it is not its turn before this one is
        finished); if it never works the job is left to be taken again (a reply once sent is marked, so it
        is not sent twice)."""
        for attempt in range(STORAGE_RETRIES):
            try:
                if not await self.storage.jobs.finish(job_id, ok=ok, error=error, owner=self.owner):
                    log.warning("job=%s was no longer this process's to finish", job_id)
                return
            except Exception as exc:
                if attempt == 0:
                    log.error("job=%s cannot be marked finished, the database refuses writes (%s): trying again",
                              job_id, exc)  # fmt: skip
                await asyncio.sleep(STORAGE_RETRY_SECONDS)
        log.error("job=%s left unfinished: the database kept refusing writes", job_id)

    def _run_of(self, row: JobRow) -> Run:
        return Run(job_id=row.id, chat_id=row.chat_id, message_id=row.message_id, edge=self.edge)


class LeaseLost(Exception):
    """The job's lease ran out and another process took it over."""


def _lane(route: Route[Any] | None) -> str:
    """Background work runs in a lane of its own beside the chat's replies (in the scheduler and the table)."""
    return "background" if route is not None and route.background else ""
