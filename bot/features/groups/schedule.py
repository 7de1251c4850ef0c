"""Daily digests on python-telegram-bot's JobQueue; the schedule itself lives in the database, and the
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


def schedule(edge: Edge, chat_id: int, at: str, timezone: str) -> None:
    if edge.job_queue is None:
        return
    cancel(edge, chat_id)
    hour, minute = (int(x) for x in at.split(":"))
    when = datetime.now(ZoneInfo(timezone)).replace(hour=hour, minute=minute, second=0, microsecond=0).timetz()
    edge.job_queue.run_daily(_firer(edge), time=when, name=f"digest:{chat_id}", chat_id=chat_id)


def cancel(edge: Edge, chat_id: int) -> None:
    if edge.job_queue is None:
        return
    for job in edge.job_queue.get_jobs_by_name(f"digest:{chat_id}"):
        job.schedule_removal()


async def restore(edge: Edge) -> None:
    for digest in await edge.services.storage.groups.digests():
        schedule(edge, digest.chat_id, digest.time, digest.timezone)


def _firer(edge: Edge) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    async def fire(context: CallbackContext[Any, Any, Any, Any]) -> None:
        job = context.job
        if job is None or job.chat_id is None:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        await edge.jobs.accept(chat_id=job.chat_id, source=f"digest:{day}", job=Summarize(digest=True))

    return fire
