"""/summary and /digest: a spoken summary of what the group said, with its points written out and linked to
the messages they come from; on demand for a span ("week", "yesterday", "3 hours"…), or as a daily or weekly
digest."""

from __future__ import annotations

import logging
import time
from zoneinfo import ZoneInfo

from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot import texts
from bot.features.groups import schedule
from bot.features.groups.cite import render, send_cited
from bot.features.groups.payloads import SetDigest, Summarize
from bot.intake import Incoming
from bot.replies import Run
from bot.sender import StatusMessage
from parley.access import Requester
from parley.errors import ParleyError
from parley.i18n.catalog import current
from parley.i18n.locales import english_name
from parley.periods import Schedule, Span, parse_schedule, parse_span
from storage.groups import GroupMessage, GroupStore

log = logging.getLogger(__name__)

# --- handlers --------------------------------------------------------------------------------------


def summary(got: Incoming) -> Summarize:
    return Summarize(span=got.argument, user_id=got.user.id, message_id=got.message.message_id, thread_id=got.thread_id)


def digest(got: Incoming) -> SetDigest:
    return SetDigest(user_id=got.user.id, args=list(got.args), message_id=got.message.message_id)


# --- jobs ------------------------------------------------------------------------------------------


async def summarize(job: Summarize, run: Run) -> bool:
    services, chat_id = run.services, run.chat_id
    reply_to, thread = job.message_id, job.thread_id
    if job.digest and not await services.access.allows(
        Requester(user_id=0, username=None, chat_id=chat_id, in_group=True)
    ):
        log.info("chat=%s digest skipped: the group is no longer allowed", chat_id)
        schedule.cancel(run.edge, chat_id)
        return True
    if not run.bot.can_read_all_group_messages:
        await run.say(texts.PRIVACY_MODE, reply_to=reply_to, thread_id=thread)
    groups = services.storage.groups
    zone = ZoneInfo(job.timezone or services.settings.groups.timezone)
    try:
        span = parse_span(job.span, now=time.time(), zone=zone, last_summarized=await groups.last_summarized(chat_id))
    except ValueError:
        return await run.say(texts.SUMMARY_USAGE, reply_to=reply_to, thread_id=thread)
    messages = await span_messages(groups, chat_id, span)
    if not messages:
        return await run.say(texts.NOTHING_TO_SUMMARIZE, reply_to=reply_to, thread_id=thread)
    summarizer = services.summarizer
    async with StatusMessage(
        run.bot, chat_id, texts.reading(len(messages), None), reply_to=reply_to, thread_id=thread
    ) as status:

        async def progress(done: int, total: int) -> None:
            await status.update(texts.reading(len(messages), (done, total)))

        spend = services.engine.spend
        estimate = spend.prices.estimate_reply(
            services.model.model, text_tokens=summarizer.estimate_tokens(messages), audio_seconds=60
        )
        try:
            async with spend.metered(user_id=job.user_id or 0, chat_id=chat_id, estimate=estimate) as record:
                result = await summarizer.summarize(
                    messages, voice=services.settings.model.voice, timezone=zone.key, progress=progress, record=record,
                    language=english_name(current()),
                )  # fmt: skip
            pages = render(result.points, chat_id)
            sent = await run.send(
                "summary",
                lambda: send_cited(
                    run.bot, chat_id, result.reply, pages, caption=result.header, reply_to=reply_to, thread_id=thread
                ),
                reply_to=reply_to,
                thread_id=thread,
            )
            if sent is None:
                return False
            # Out: a crash from here on must neither post it again nor summarise the same span twice.
            await run.delivered()
            await groups.set_last_summarized(chat_id, max(m.message_id for m in messages))
            await groups.remember_summary(chat_id, sent, messages[0].sent_at, messages[-1].sent_at)
        except ParleyError as exc:
            log.warning("chat=%s summary failed: %s", chat_id, exc)
            await run.fail(exc, reply_to=reply_to, thread_id=thread)
            return False
    log.info("chat=%s summary of %d messages in %d chunks", chat_id, len(messages), result.chunks)
    return True


async def set_digest(job: SetDigest, run: Run) -> bool:
    """/digest alone: the schedule. /digest HH:MM [timezone], /digest weekly mon HH:MM [timezone], /digest off
    — changes are for group admins only (asked of Telegram, not assumed)."""
    chat_id, reply_to = run.chat_id, job.message_id
    groups = run.services.storage.groups
    if not job.args:
        current = await groups.digest(chat_id)
        when = Schedule(current.time, current.timezone, current.weekday).describe() if current else None
        return await run.say(texts.digest_schedule(when), reply_to=reply_to)
    try:
        member = await run.bot.get_chat_member(chat_id, job.user_id)
    except TelegramError as exc:
        log.warning("chat=%s getChatMember failed: %s", chat_id, exc)
        return await run.say(texts.DIGEST_ADMINS_ONLY, reply_to=reply_to)
    if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        return await run.say(texts.DIGEST_ADMINS_ONLY, reply_to=reply_to)
    try:
        chosen = parse_schedule(job.args, default_timezone=run.services.settings.groups.timezone)
    except ValueError:
        return await run.say(texts.DIGEST_USAGE, reply_to=reply_to)
    if chosen is None:
        await groups.set_digest(chat_id, None, None)
        schedule.cancel(run.edge, chat_id)
        return await run.say(texts.DIGEST_OFF, reply_to=reply_to)
    await groups.set_digest(chat_id, chosen.time, chosen.timezone, chosen.weekday)
    schedule.schedule(run.edge, chat_id, chosen)
    return await run.say(texts.digest_set(chosen.describe()), reply_to=reply_to)


async def span_messages(groups: GroupStore, chat_id: int, span: Span) -> list[GroupMessage]:
    if span.last is not None:
        return await groups.last(chat_id, span.last)
    if span.after_id is not None:
        return await groups.after(chat_id, span.after_id)
    return await groups.between(chat_id, span.since or 0.0, span.until if span.until is not None else float("inf"))
