"""/summary and /digest: a spoken summary of what the group said, on demand or every day at a set time."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot import texts
from bot.features.groups import schedule
from bot.features.groups.payloads import SetDigest, Summarize
from bot.intake import Incoming
from bot.replies import Run
from bot.sender import StatusMessage, send_reply
from parley.access import Requester
from parley.errors import ParleyError
from parley.i18n.catalog import current
from parley.i18n.locales import english_name

log = logging.getLogger(__name__)

DEFAULT_SPAN_SECONDS = 24 * 3600.0
_DURATION_RE = re.compile(r"^(\d+)\s*([mhd])$", re.IGNORECASE)
_DIGEST_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


# --- handlers --------------------------------------------------------------------------------------


def summary(got: Incoming) -> Summarize:
    return Summarize(span=got.argument, user_id=got.user.id, message_id=got.message.message_id, thread_id=got.thread_id)


def digest(got: Incoming) -> SetDigest:
    return SetDigest(user_id=got.user.id, args=list(got.args), message_id=got.message.message_id)


def parse_span(argument: str, *, now: float, zone: ZoneInfo, last_summarized: int | None) -> tuple[str, float | int]:
    """'' → after the last summary's messages (or the last 24 h); '3h'/'90m'/'2d' → a duration;
    '200' → the last N messages; 'today' → since midnight in the group's timezone."""
    argument = argument.strip().lower()
    if not argument:
        if last_summarized is not None:
            return "after", last_summarized
        return "since", now - DEFAULT_SPAN_SECONDS
    if argument == "today":
        midnight = datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return "since", midnight.timestamp()
    if argument.isdigit() and int(argument) > 0:
        return "last", min(int(argument), 10_000)
    match = _DURATION_RE.match(argument)
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2).lower()]
        return "since", now - timedelta(**{unit: int(match.group(1))}).total_seconds()
    raise ValueError(argument)


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
        mode, value = parse_span(
            job.span, now=time.time(), zone=zone, last_summarized=await groups.last_summarized(chat_id)
        )
    except ValueError:
        return await run.say(texts.SUMMARY_USAGE, reply_to=reply_to, thread_id=thread)
    if mode == "last":
        messages = await groups.last(chat_id, int(value))
    elif mode == "after":
        messages = await groups.after(chat_id, int(value))
    else:
        messages = await groups.since(chat_id, float(value))
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
            await send_reply(run.bot, chat_id, reply_to, result.reply, thread_id=thread)
            # Out: a crash from here on must neither post it again nor summarise the same span twice.
            await run.delivered()
            await groups.set_last_summarized(chat_id, max(m.message_id for m in messages))
        except ParleyError as exc:
            log.warning("chat=%s summary failed: %s", chat_id, exc)
            await run.fail(exc, reply_to=reply_to, thread_id=thread)
            return False
    log.info("chat=%s summary of %d messages in %d chunks", chat_id, len(messages), result.chunks)
    return True


async def set_digest(job: SetDigest, run: Run) -> bool:
    """/digest HH:MM [timezone] or /digest off — group admins only (asked of Telegram, not assumed)."""
    chat_id, reply_to = run.chat_id, job.message_id
    try:
        member = await run.bot.get_chat_member(chat_id, job.user_id)
    except TelegramError as exc:
        log.warning("chat=%s getChatMember failed: %s", chat_id, exc)
        return await run.say(texts.DIGEST_ADMINS_ONLY, reply_to=reply_to)
    if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
        return await run.say(texts.DIGEST_ADMINS_ONLY, reply_to=reply_to)
    words = job.args
    groups = run.services.storage.groups
    if words[:1] == ["off"]:
        await groups.set_digest(chat_id, None, None)
        schedule.cancel(run.edge, chat_id)
        return await run.say(texts.DIGEST_OFF, reply_to=reply_to)
    match = _DIGEST_RE.match(words[0]) if words else None
    zone_name = words[1] if len(words) > 1 else run.services.settings.groups.timezone
    try:
        ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        match = None
    if match is None:
        return await run.say(texts.DIGEST_USAGE, reply_to=reply_to)
    at = f"{int(match.group(1)):02d}:{match.group(2)}"
    await groups.set_digest(chat_id, at, zone_name)
    schedule.schedule(run.edge, chat_id, at, zone_name)
    return await run.say(texts.digest_set(at, zone_name), reply_to=reply_to)
