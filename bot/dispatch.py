"""From accepted update to finished job: durable intake, per-chat scheduling, resume after a crash.

Every accepted update is written to the job table *before* any work starts; only then is it scheduled.
At start-up, whatever a crash or a stop left queued or working is scheduled again, in its original order.
A redelivered update finds its row already there and is dropped, so nothing is answered twice.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
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

log = logging.getLogger(__name__)

BACKGROUND_SHARE = 0.5
"""Background work (a group log's transcriptions) may queue up to half of PARLEY_MAX_QUEUE beside it …"""
BACKGROUND_CHAT_SHARE = 0.25
"""… and one chat up to a quarter of that."""

STORAGE_RETRY_SECONDS = 5.0
STORAGE_RETRIES = 720
"""A job the database will not let start is asked about again every 5 s, for up to an hour."""

MAX_ATTEMPTS = 3
"""A job that was started this often without finishing (the process died each time) is given up on."""


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
                chat_id=chat_id, source=source, kind=job.kind, payload=job.to_json(), message_id=message_id
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
        """Schedule what a crash or a stop left unfinished; give up on jobs that keep dying."""
        resumed = 0
        for row in await self.storage.jobs.unfinished():
            if row.replied:  # the answer was out before the stop: only its bookkeeping was cut short
                await self.storage.jobs.finish(row.id, ok=True)
                continue
            if row.attempts >= MAX_ATTEMPTS:
                log.error("chat=%s job=%s %s gave up after %d attempts", row.chat_id, row.id, row.kind, row.attempts)
                await self.storage.jobs.finish(row.id, ok=False, error=f"gave up after {row.attempts} attempts")
                with using(await self.edge.languages.of_chat(row.chat_id)):
                    await tell(self.edge.bot, row.chat_id, texts.GAVE_UP, reply_to=row.message_id)
                continue
            self._schedule(row.id, row.chat_id, row.kind)
            resumed += 1
        if resumed:
            log.info("resumed %d unfinished jobs", resumed)
        return resumed

    def _schedule(self, job_id: int, chat_id: int, kind: str) -> None:
        route = self.routes.get(kind)
        lane = "background" if route is not None and route.background else ""
        job = Job(chat_id=chat_id, label=f"{kind}#{job_id}", run=lambda: self.run(job_id), lane=lane)
        if not self.scheduler.submit(job):
            log.info("chat=%s job=%s left queued: shutting down", chat_id, job_id)

    async def run(self, job_id: int) -> None:
        row = await self._start(job_id)
        if row is None:  # finished meanwhile (e.g. run by a Retry tap), or the database is still refusing
            return
        route = self.routes.get(row.kind)
        started, outcome, ok = time.perf_counter(), "failed", False
        try:
            with using(await self.edge.languages.of_chat(row.chat_id)):  # each job speaks its chat's language
                ok = await route(row, self._run_of(row)) if route is not None else False
            outcome = "ok" if ok else outcome
        except Exception as exc:
            outcome = type(exc).__name__
            self.metrics.error(outcome)
            # Finished, as failed: a job that raised must not sit "working" to be re-run at some later start;
            # and whoever sent it is told, not left waiting for an answer that will never come.
            await self._finish(job_id, ok=False, error=outcome)
            if route is not None and not route.background:
                await tell(self.edge.bot, row.chat_id, texts.FAILED_UNEXPECTEDLY, reply_to=row.message_id)
            raise
        finally:
            if route is None or not route.logs_itself:
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

    async def _start(self, job_id: int) -> JobRow | None:
        """Mark the job working. A database that refuses the write (a full disk) is asked again every
        few seconds: the job was accepted, so it is answered once writes work again, not at the next start."""
        for attempt in range(STORAGE_RETRIES):
            try:
                return await self.storage.jobs.start(job_id)
            except Exception as exc:
                if attempt == 0:
                    log.error("job=%s cannot start, the database refuses writes (%s): trying again", job_id, exc)
                await asyncio.sleep(STORAGE_RETRY_SECONDS)
        log.error("job=%s left queued: the database kept refusing writes", job_id)
        return None

    async def _finish(self, job_id: int, *, ok: bool, error: str | None) -> None:
        """Finish the job; when even that cannot be written, it is left to be resumed (a reply once sent is
        marked, so it is not sent twice)."""
        try:
            await self.storage.jobs.finish(job_id, ok=ok, error=error)
        except Exception:
            log.exception("job=%s could not be marked finished", job_id)

    def _run_of(self, row: JobRow) -> Run:
        return Run(job_id=row.id, chat_id=row.chat_id, message_id=row.message_id, edge=self.edge)
