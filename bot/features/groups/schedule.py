"""Daily and weekly digests on python-telegram-bot's JobQueue, posted once however many processes run.

The schedule lives in the database. Each process keeps its JobQueue in step with it — at start-up and then
every SYNC_SECONDS, so a digest set or turned off through another process is followed here too — and each
process's timer fires. The one that claims the occurrence in the database (storage/schedule.py) queues the
digest, a durable summary job like any other (keyed by its day as well); the others do nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram.ext import CallbackContext, Job

from bot.edge import Edge
from bot.features.groups.payloads import Summarize
from parley.periods import Schedule

log = logging.getLogger(__name__)

SYNC_SECONDS = 60.0
"""How often each process reads the schedule again: how late a change made elsewhere reaches it."""

_LATE_SECONDS = 120.0
"""A timer this far past its time may not have fired yet: syncing leaves it alone."""


def schedule(edge: Edge, chat_id: int, digest: Schedule) -> None:
    if edge.job_queue is None:
        return
    cancel(edge, chat_id)
    hour, minute = (int(x) for x in digest.time.split(":"))
    zone = ZoneInfo(digest.timezone)
    when = datetime.now(zone).replace(hour=hour, minute=minute, second=0, microsecond=0).timetz()
    # python-telegram-bot counts days from Sunday (0); a Schedule from Monday (0), as Python does.
    days = ((digest.weekday + 1) % 7,) if digest.weekday is not None else tuple(range(7))
    edge.job_queue.run_daily(
        _firer(edge), time=when, days=days, name=f"digest:{chat_id}", chat_id=chat_id, data=digest.span
    )


def cancel(edge: Edge, chat_id: int) -> None:
    if edge.job_queue is None:
        return
    for job in edge.job_queue.get_jobs_by_name(f"digest:{chat_id}"):
        job.schedule_removal()


async def restore(edge: Edge) -> None:
    """This process's digest timers as the database has them: each stored schedule, and nothing else."""
    if edge.job_queue is None:
        return
    stored = {
        d.chat_id: Schedule(d.time, d.timezone, d.weekday) for d in await edge.services.storage.groups.digests()
    }
    now = time.time()
    for job in edge.job_queue.jobs():
        if job.name and job.name.startswith("digest:") and job.chat_id not in stored:
            job.schedule_removal()  # turned off elsewhere
    for chat_id, digest in stored.items():
        timers = edge.job_queue.get_jobs_by_name(f"digest:{chat_id}")
        if len(timers) != 1 or not _keeps(timers[0], digest, now):
            schedule(edge, chat_id, digest)


def sync(edge: Edge) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    """The JobQueue callback that restores the timers again, every SYNC_SECONDS."""

    async def again(_context: CallbackContext[Any, Any, Any, Any]) -> None:
        await restore(edge)

    return again


def _keeps(timer: Job[Any], digest: Schedule, now: float) -> bool:
    """The timer fires as `digest` says (its next time is one of the digest's, the next one or one that has
    only just passed and may still be firing)."""
    if timer.next_t is None or timer.data != digest.span:
        return False
    at = timer.next_t.timestamp()
    return any(abs(at - due) < 1.0 for due in (digest.next_after(now), digest.next_after(now - _LATE_SECONDS)))


def _firer(edge: Edge) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    async def fire(context: CallbackContext[Any, Any, Any, Any]) -> None:
        job = context.job
        if job is None or job.chat_id is None:
            return
        storage = edge.services.storage
        stored = await storage.groups.digest(job.chat_id)  # turned off or changed in another process?
        if stored is None:
            cancel(edge, job.chat_id)
            return
        digest = Schedule(stored.time, stored.timezone, stored.weekday)
        now = time.time()
        if not await storage.schedule.claim(f"digest:{job.chat_id}", digest.nearest(now)):
            log.info("chat=%s this digest was claimed by another process (or already posted)", job.chat_id)
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        await edge.jobs.accept(
            chat_id=job.chat_id, source=f"digest:{day}", job=Summarize(span=digest.span, digest=True)
        )

    return fire
