"""Groups: when the bot is addressed, what it records, and the jobs behind /summary and /digest.

In a group the bot answers only when addressed (a mention, a reply to it, a command); everything else
it can see is recorded for summaries. Bots cannot read a chat's history: the log is all there is.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telegram import Bot, Message, MessageEntity
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import CallbackContext, JobQueue

from bot import texts
from bot.sender import StatusMessage, retry_keyboard, send_reply, tell
from parley.access import Requester
from parley.errors import ModelError, ParleyError
from parley.services import Services
from parley.summaries import GroupSummarizer
from storage import JobRow
from storage.groups import GroupMessage

log = logging.getLogger(__name__)

AUDIO_KINDS = ("voice", "audio", "video_note")
DEFAULT_SPAN_SECONDS = 24 * 3600.0
_DURATION_RE = re.compile(r"^(\d+)\s*([mhd])$", re.IGNORECASE)
_DIGEST_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def addressed_to(message: Message, bot: Bot) -> bool:
    """A mention of the bot (in text or caption) or a reply to one of its messages."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    wanted = f"@{bot.username}".lower() if bot.username else None
    kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and wanted and text.lower() == wanted:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id:
            return True
    return False


def without_mention(text: str | None, bot: Bot) -> str | None:
    if text is None or not bot.username:
        return text
    return re.sub(rf"@{re.escape(bot.username)}\b", "", text, flags=re.IGNORECASE).strip() or text


def message_kind(message: Message) -> str:
    for kind in ("voice", "audio", "video_note", "photo", "video", "document", "sticker", "poll", "location"):
        if getattr(message, kind, None):
            return kind
    return "text"


def log_entry(message: Message) -> GroupMessage:
    user = message.from_user
    author = user.full_name if user else (message.sender_chat.title if message.sender_chat else "someone")
    origin = message.forward_origin
    forwarded = None
    if origin is not None:
        sender = (
            getattr(origin, "sender_user", None)
            or getattr(origin, "sender_chat", None)
            or getattr(origin, "chat", None)
        )
        forwarded = (
            getattr(sender, "full_name", None)
            or getattr(sender, "title", None)
            or getattr(origin, "sender_user_name", None)
        )
    kind = message_kind(message)
    return GroupMessage(
        chat_id=message.chat_id,
        message_id=message.message_id,
        thread_id=message.message_thread_id if message.is_topic_message else None,
        user_id=user.id if user else None,
        author=author,
        kind=kind,
        text=message.text or message.caption,
        transcript_state="pending" if kind in AUDIO_KINDS else None,
        forwarded_from=forwarded or ("someone" if origin is not None else None),
        reply_to=message.reply_to_message.message_id if message.reply_to_message else None,
        sent_at=message.date.timestamp(),
    )


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


class GroupJobs:
    def __init__(self, services: Services, bot: Bot, summarizer: GroupSummarizer) -> None:
        self.services = services
        self.bot = bot
        self.summarizer = summarizer
        self.digests: DigestScheduler | None = None  # set once the JobQueue exists

    @property
    def can_read_all(self) -> bool:
        return bool(self.bot.can_read_all_group_messages)

    async def summary(self, job: JobRow) -> bool:
        chat_id, payload = job.chat_id, job.payload
        thread = payload.get("thread_id")
        reply_to = payload.get("message_id")
        if payload.get("digest") and not await self.services.access.allows(
            Requester(user_id=0, username=None, chat_id=chat_id, in_group=True)
        ):
            log.info("chat=%s digest skipped: the group is no longer allowed", chat_id)
            if self.digests is not None:
                self.digests.cancel(chat_id)
            return True
        if not self.can_read_all:
            await self._say(chat_id, texts.PRIVACY_MODE, reply_to, thread)
        groups = self.services.storage.groups
        zone = ZoneInfo(payload.get("timezone") or self.services.settings.groups.timezone)
        now = time.time()
        try:
            mode, value = parse_span(
                payload.get("span", ""), now=now, zone=zone, last_summarized=await groups.last_summarized(chat_id)
            )
        except ValueError:
            return await self._say(chat_id, texts.SUMMARY_USAGE, reply_to, thread)
        if mode == "last":
            messages = await groups.last(chat_id, int(value))
        elif mode == "after":
            messages = await groups.after(chat_id, int(value))
        else:
            messages = await groups.since(chat_id, float(value))
        if not messages:
            return await self._say(chat_id, texts.NOTHING_TO_SUMMARIZE, reply_to, thread)
        async with StatusMessage(
            self.bot, chat_id, texts.reading(len(messages), None), reply_to=reply_to, thread_id=thread
        ) as status:

            async def progress(done: int, total: int) -> None:
                await status.update(texts.reading(len(messages), (done, total)))

            spend = self.services.engine.spend
            estimate = spend.prices.estimate_reply(
                self.services.model.model, text_tokens=self.summarizer.estimate_tokens(messages), audio_seconds=60
            )
            payer = payload.get("user_id") or 0  # a scheduled digest is the bot's own spending
            try:
                async with spend.metered(user_id=payer, chat_id=chat_id, estimate=estimate) as record:
                    result = await self.summarizer.summarize(
                        messages,
                        voice=self.services.settings.model.voice,
                        timezone=zone.key,
                        progress=progress,
                        record=record,
                    )
                await send_reply(self.bot, chat_id, reply_to, result.reply, thread_id=thread)
                # Out: a crash from here on must neither post it again nor summarise the same span twice.
                await self.services.storage.jobs.mark_replied(job.id)
                await groups.set_last_summarized(chat_id, max(m.message_id for m in messages))
            except ParleyError as exc:
                log.warning("chat=%s summary failed: %s", chat_id, exc)
                keyboard = retry_keyboard(job.id) if isinstance(exc, ModelError) else None
                await tell(
                    self.bot, chat_id, texts.explain(exc), reply_to=reply_to, thread_id=thread, keyboard=keyboard
                )
                return False
        log.info("chat=%s summary of %d messages in %d chunks", chat_id, len(messages), result.chunks)
        return True

    async def digest(self, job: JobRow) -> bool:
        """/digest HH:MM [timezone] or /digest off — group admins only (asked of Telegram, not assumed)."""
        chat_id, payload = job.chat_id, job.payload
        reply_to = payload.get("message_id")
        try:
            member = await self.bot.get_chat_member(chat_id, payload["user_id"])
        except TelegramError as exc:
            log.warning("chat=%s getChatMember failed: %s", chat_id, exc)
            return await self._say(chat_id, texts.DIGEST_ADMINS_ONLY, reply_to, None)
        if member.status not in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
            return await self._say(chat_id, texts.DIGEST_ADMINS_ONLY, reply_to, None)
        words = payload.get("args", [])
        groups = self.services.storage.groups
        if words[:1] == ["off"]:
            await groups.set_digest(chat_id, None, None)
            if self.digests is not None:
                self.digests.cancel(chat_id)
            return await self._say(chat_id, texts.DIGEST_OFF, reply_to, None)
        match = _DIGEST_RE.match(words[0]) if words else None
        zone_name = words[1] if len(words) > 1 else self.services.settings.groups.timezone
        try:
            ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            match = None
        if match is None:
            return await self._say(chat_id, texts.DIGEST_USAGE, reply_to, None)
        at = f"{int(match.group(1)):02d}:{match.group(2)}"
        await groups.set_digest(chat_id, at, zone_name)
        if self.digests is not None:
            self.digests.schedule(chat_id, at, zone_name)
        return await self._say(chat_id, texts.digest_set(at, zone_name), reply_to, None)

    async def transcribe_log(self, job: JobRow) -> bool:
        """A voice note, audio file or video note in a group: its words go into the log, in the background."""
        message = Message.de_json(job.payload["message"], self.bot)
        groups = self.services.storage.groups
        media = message.voice or message.audio or message.video_note
        if media is None:
            return True
        try:
            if media.file_size and media.file_size > 20 * 1024 * 1024:
                raise ParleyError("too large to download")
            data = bytes(await (await self.bot.get_file(media.file_id)).download_as_bytearray())
            wav = await self.services.audio.to_model_wav(data)
            text, usage = await self.services.model.transcribe(wav)
            await self.services.engine.spend.record(
                user_id=message.from_user.id if message.from_user else 0,
                chat_id=job.chat_id,
                purpose="transcription",
                usage=usage,
                audio_seconds=wav.duration,
            )
        except (ParleyError, TelegramError) as exc:
            log.info("chat=%s message=%s not transcribed: %s", job.chat_id, message.message_id, exc)
            await groups.set_transcript(job.chat_id, message.message_id, None, ok=False)
            return True
        await groups.set_transcript(job.chat_id, message.message_id, text, ok=True)
        return True

    async def _say(self, chat_id: int, text: str, reply_to: int | None, thread: int | None) -> bool:
        return await tell(self.bot, chat_id, text, reply_to=reply_to, thread_id=thread)


class DigestScheduler:
    """Daily digests on python-telegram-bot's JobQueue; the schedule itself lives in SQLite."""

    def __init__(self, job_queue: JobQueue, fire: Callable[[CallbackContext], Awaitable[None]]) -> None:
        self.job_queue = job_queue
        self.fire = fire

    def schedule(self, chat_id: int, at: str, timezone: str) -> None:
        self.cancel(chat_id)
        hour, minute = (int(x) for x in at.split(":"))
        when = datetime.now(ZoneInfo(timezone)).replace(hour=hour, minute=minute, second=0, microsecond=0).timetz()
        self.job_queue.run_daily(self.fire, time=when, name=f"digest:{chat_id}", chat_id=chat_id)

    def cancel(self, chat_id: int) -> None:
        for job in self.job_queue.get_jobs_by_name(f"digest:{chat_id}"):
            job.schedule_removal()
