"""Daily and weekly digests on python-telegram-bot's JobQueue; the schedule itself lives in the database, and the
JobQueue is rebuilt from there at every start. A digest is a durable summary job like any other, keyed by
its day so it runs once."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from telegram.ext import CallbackContext

from bot.edge import Edge
from bot.features.groups.payloads import Summarize
from parley.periods import Schedule


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
    for digest in await edge.services.storage.groups.digests():
        schedule(edge, digest.chat_id, Schedule(digest.time, digest.timezone, digest.weekday))


def _firer(edge: Edge) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    async def fire(context: CallbackContext[Any, Any, Any, Any]) -> None:
        job = context.job
        if job is None or job.chat_id is None:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        span = job.data if isinstance(job.data, str) else ""
        await edge.jobs.accept(chat_id=job.chat_id, source=f"digest:{day}", job=Summarize(span=span, digest=True))

    return fire
