"""What is kept about a person, for them: /export (all of it, as a file), /forget (all of it deleted, after a
confirming tap), and the retention that deletes what is older than PARLEY_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from parley.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AskForget(Payload, kind="forget"):
    pass


@dataclass(frozen=True, slots=True)
class Export(Payload, kind="export"):
    user_id: int


@dataclass(frozen=True, slots=True)
class ForgetAnswer(CallbackData, prefix="forget"):
    answer: str  # yes | no


# --- handlers --------------------------------------------------------------------------------------


def forget(got: Incoming) -> AskForget:
    return AskForget()


def export(got: Incoming) -> Export:
    return Export(user_id=got.user.id)


def forget_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.FORGET_YES, callback_data=ForgetAnswer("yes").pack()),
                InlineKeyboardButton(texts.FORGET_NO, callback_data=ForgetAnswer("no").pack()),
            ]
        ]
    )


# --- jobs ------------------------------------------------------------------------------------------


async def ask_forget(job: AskForget, run: Run) -> bool:
    return await run.say(texts.FORGET_CONFIRM, keyboard=forget_keyboard())


async def forget_tapped(tap: ForgetAnswer, press: Press, run: Run) -> str:
    if tap.answer != "yes":
        return texts.FORGET_CANCELLED
    report = await run.services.engine.forget(press.user_id)
    # Their messages being answered right now (in a group, say) store their words when they finish: wait
    # for those, then forget once more, so nothing of theirs is written after the answer says it is gone.
    for _ in range(FORGET_WAIT_SECONDS):
        if not await run.services.storage.privacy.work_in_flight(press.user_id, besides=run.job_id):
            break
        await asyncio.sleep(1.0)
    await run.services.engine.forget(press.user_id)
    return texts.forget_done(report.turns)


async def send_export(job: Export, run: Run) -> bool:
    """The user's stored data as a JSON document (their right to see what is kept about them)."""
    data = await run.services.storage.privacy.export_user(job.user_id)
    document = json.dumps(data, ensure_ascii=False, indent=2).encode()
    if await run.document(document, "parley-export.json", caption=texts.EXPORT_CAPTION) is None:
        return False
    await run.delivered()
    return True


FORGET_WAIT_SECONDS = 300
"""How long /forget waits for the person's messages being answered elsewhere before forgetting again."""

BUTTONS = (Button(ForgetAnswer, forget_tapped),)


# --- retention -------------------------------------------------------------------------------------


async def retention_due(services: Services, every: float) -> None:
    """The JobQueue's sweep, every `every` seconds in each process: the process that claims this period's
    slot in the database runs it, the others have nothing to do."""
    now = time.time()
    if await services.storage.schedule.claim("retention", now - now % every):
        await apply_retention(services)


async def apply_retention(services: Services) -> None:
    """Delete what is older than PARLEY_RETENTION_DAYS (each process at its start-up, where it deletes what
    an earlier run left only if time passed; then daily, once across all processes, by `retention_due`).
    Also drops rate windows and budget holds nothing counts any more."""
    settings = services.settings
    report = await services.storage.privacy.apply_retention(
        days=settings.privacy.retention_days, audio_days=settings.privacy.audio_retention_days
    )
    group_days = min(
        settings.privacy.group_retention_days or settings.privacy.retention_days, settings.privacy.retention_days
    )
    group_messages = await services.storage.groups.prune(time.time() - group_days * 86400)
    await services.storage.db.scrub()  # what was pruned survives in no file
    if group_messages:
        log.info("retention (%g days): deleted %d group log entries", group_days, group_messages)
    log.info(
        "retention (%g days): deleted %d turns, %d conversations, %d jobs, %d audio files",
        settings.privacy.retention_days,
        report.turns,
        report.conversations,
        report.jobs,
        report.audio,
    )
