"""The group log: every message the bot can see in a group, kept for summaries; voice notes, audio files
and video notes transcribed in the background (nobody waits for them, so they never delay a reply)."""

from __future__ import annotations

import logging

from telegram import Message, MessageOriginUser
from telegram.error import TelegramError

from bot.addressing import addressed_to
from bot.features.groups.payloads import TranscribeLog
from bot.intake import Intake
from bot.media import media_of
from bot.replies import Run
from parley.audio.uploads import for_transcription
from parley.errors import ParleyError
from storage.groups import UNNAMED, GroupMessage

log = logging.getLogger(__name__)

AUDIO_KINDS = ("voice", "audio", "video_note")
DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024


async def record(message: Message, intake: Intake) -> None:
    """Log what the group says; its audio is transcribed by a background job (unless addressed to the bot:
    the conversation's turn transcribes it). Only in allowed groups: an admin's presence is not consent."""
    services = intake.edge.services
    if not await services.access.group_allowed(message.chat_id):
        return
    entry = log_entry(message)
    addressed = entry.user_id is not None and addressed_to(message, message.get_bot())
    if not await services.storage.groups.record(entry) or entry.kind not in AUDIO_KINDS or addressed:
        return
    if not await intake.within_rate_quietly(message.chat_id):  # over the chat's rate: logged, not transcribed
        await services.storage.groups.set_transcript(message.chat_id, message.message_id, None, ok=False)
        return
    await intake.edge.jobs.accept(
        chat_id=message.chat_id,
        source=f"log:{message.message_id}",
        job=TranscribeLog(message=message.to_dict()),
        message_id=message.message_id,
    )


async def edited(message: Message, intake: Intake) -> None:
    """An edited text replaces the logged one (a summary reports what was finally said)."""
    if media_of(message) is None and (message.text or message.caption):
        await intake.edge.services.storage.groups.edit(
            message.chat_id, message.message_id, message.text or message.caption or ""
        )


def message_kind(message: Message) -> str:
    for kind in ("voice", "audio", "video_note", "photo", "video", "document", "sticker", "poll", "location"):
        if getattr(message, kind, None):
            return kind
    return "text"


def log_entry(message: Message) -> GroupMessage:
    user = message.from_user
    author = user.full_name if user else (message.sender_chat.title if message.sender_chat else None)
    origin = message.forward_origin
    forwarded = forwarded_id = None
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
        if isinstance(origin, MessageOriginUser):  # a person who lets forwards link to them: their /forget finds it
            forwarded_id = origin.sender_user.id
    kind = message_kind(message)
    return GroupMessage(
        chat_id=message.chat_id,
        message_id=message.message_id,
        thread_id=message.message_thread_id if message.is_topic_message else None,
        user_id=user.id if user else None,
        author=author or UNNAMED,
        kind=kind,
        text=message.text or message.caption,
        transcript_state="pending" if kind in AUDIO_KINDS else None,
        forwarded_from=forwarded or (UNNAMED if origin is not None else None),
        forwarded_from_id=forwarded_id,
        reply_to=message.reply_to_message.message_id if message.reply_to_message else None,
        sent_at=message.date.timestamp(),
    )


async def transcribe(job: TranscribeLog, run: Run) -> bool:
    """A voice note, audio file or video note in a group: its words go into the log."""
    message = Message.de_json(job.message, run.bot)
    services = run.services
    groups = services.storage.groups
    media = message.voice or message.audio or message.video_note
    if media is None or message.from_user is None:
        return True
    user_id = message.from_user.id
    try:
        if media.file_size and media.file_size > DOWNLOAD_LIMIT_BYTES:
            raise ParleyError("too large to download")
        data = bytes(await (await run.bot.get_file(media.file_id)).download_as_bytearray())
        wav = await services.audio.to_model_wav(data, max_seconds=services.settings.spend.max_voice_seconds)
        # The member pays for the log's copy of their words, within their budgets, by the decoded length.
        spend = services.engine.spend
        estimate = spend.prices.estimate_transcription(services.model.transcribe_model, audio_seconds=wav.duration)
        reservation = await spend.reserve(user_id, estimate)
        try:
            text, usage = await services.model.transcribe(for_transcription(wav))
            await spend.record(
                user_id=user_id, chat_id=run.chat_id, purpose="transcription", usage=usage, audio_seconds=wav.duration
            )
        finally:
            await spend.release(reservation)
    except (ParleyError, TelegramError) as exc:
        log.info("chat=%s message=%s not transcribed: %s", run.chat_id, message.message_id, exc)
        await groups.set_transcript(run.chat_id, message.message_id, None, ok=False)
        return True
    await groups.set_transcript(run.chat_id, message.message_id, text, ok=True)
    return True
