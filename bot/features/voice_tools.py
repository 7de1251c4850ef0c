"""Voice tools: /transcribe and /tone on a recording (the replied-to message, or audio sent with the command
as its caption), /speak to read text aloud. The work itself is parley.tools; this is its Telegram side."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram import Message
from telegram.error import BadRequest, TelegramError

from bot import texts
from bot.intake import Incoming
from bot.jobs import Payload
from bot.media import download, media_of
from bot.replies import Run
from bot.sender import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    ReplyProgress,
    StatusMessage,
    send_text,
    split_message,
    telegram_length,
)
from parley.documents import DocumentError, DocumentTooComplex, document_kind, extract_text
from parley.errors import ParleyError
from parley.i18n.catalog import current
from parley.i18n.locales import english_name
from parley.tools import Meter, SpendMeter, ToneReport

log = logging.getLogger(__name__)

DOCUMENT_AFTER_PARTS = 3
"""A transcript that would take more than three messages is sent as a .txt document instead."""
TEXT_DOCUMENT_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Transcribe(Payload, kind="transcribe"):
    message: dict[str, Any]  # the command's message: the recording is in it, or in the message it replies to
    user_id: int


@dataclass(frozen=True, slots=True)
class Tone(Payload, kind="tone"):
    message: dict[str, Any]
    user_id: int


@dataclass(frozen=True, slots=True)
class Speak(Payload, kind="speak"):
    message: dict[str, Any]
    user_id: int
    text: str | None = None  # the command's words; None: the replied-to message or document


# --- handlers --------------------------------------------------------------------------------------


def transcribe(got: Incoming) -> Transcribe:
    return Transcribe(message=got.message.to_dict(), user_id=got.user.id)


def tone(got: Incoming) -> Tone:
    return Tone(message=got.message.to_dict(), user_id=got.user.id)


def speak(got: Incoming) -> Speak:
    text = (got.message.text or "").partition(" ")[2].strip() or None
    return Speak(message=got.message.to_dict(), user_id=got.user.id, text=text)


# --- jobs ------------------------------------------------------------------------------------------

Work = Callable[[Run, int, Message, bytes, ReplyProgress, Meter], Awaitable[bool]]
"""The work on a downloaded recording; False when its answer could not be sent (the person was told)."""


async def transcript(job: Transcribe, run: Run) -> bool:
    return await _on_recording(job, run, _transcript)


async def tone_of(job: Tone, run: Run) -> bool:
    return await _on_recording(job, run, _tone)


async def _on_recording(job: Transcribe | Tone, run: Run, work: Work) -> bool:
    """Find the recording (the replied-to message, or this one), download it, work, report failures."""
    message = Message.de_json(job.message, run.bot)
    target = message if media_of(message) else message.reply_to_message
    media = media_of(target)
    if target is None or media is None:
        return await run.say(texts.needs_recording(_command(message, job.kind)))
    services = run.services
    cache_key = f"transcribe:{media.file_unique_id}" if isinstance(job, Transcribe) else None
    if cache_key and (cached := await services.storage.cache.get(cache_key)):
        return await _send_long(run, cached, reply_to=message.message_id)
    # The status message the work shows reports progress: no second "still working" notice.
    progress = ReplyProgress(run.bot, run.chat_id, reply_to=message.message_id, notice_after=None, action="typing")
    # The declared duration only decides whether to download at all (0 for a document, and it may lie);
    # what is paid for is measured from the audio itself, segment by segment (VoiceTools).
    meter = SpendMeter(services.engine.spend, job.user_id, run.chat_id, services.model.model)
    try:
        await meter.admit(float(media.duration or 0))
        async with progress:
            data = await download(run.bot, media, local=services.settings.telegram.local_bot_api)
            return await work(run, job.user_id, message, data, progress, meter)
    except ParleyError as exc:
        log.warning("chat=%s %s failed: %s", run.chat_id, job.kind, exc)
        return await run.fail(exc, reply_to=message.message_id)


def _command(message: Message, default: str) -> str:
    """The name the person used ('/sentiment@bot' → 'sentiment'), so an alias is answered as itself."""
    first = (message.text or message.caption or "").split(maxsplit=1)[:1]
    if not first or not first[0].startswith("/"):
        return default
    return first[0][1:].split("@")[0].lower() or default


async def _transcript(
    run: Run, user_id: int, message: Message, data: bytes, progress: ReplyProgress, meter: Meter
) -> bool:
    async with StatusMessage(
        run.bot, run.chat_id, texts.working("Transcribing", None), reply_to=message.message_id
    ) as status:
        text = await run.services.voice_tools.transcribe(data, meter, progress=_reporting(status, "Transcribing"))
    await progress.stop()
    recording = message if media_of(message) else message.reply_to_message
    media = media_of(recording)
    if media is not None and recording is not None:
        # The words are the speaker's: kept under their id, so their /forget and /export reach them.
        speaker = recording.from_user.id if recording.from_user else user_id
        await run.services.storage.cache.put(f"transcribe:{media.file_unique_id}", text, user_id=speaker)
    return await _send_long(run, text, reply_to=message.message_id)


async def _tone(run: Run, user_id: int, message: Message, data: bytes, progress: ReplyProgress, meter: Meter) -> bool:
    async with StatusMessage(
        run.bot, run.chat_id, texts.working("Listening", None), reply_to=message.message_id
    ) as status:
        report: ToneReport = await run.services.voice_tools.tone(
            data, meter, progress=_reporting(status, "Listening"), language=english_name(current())
        )
    await progress.stop()
    report_text = texts.tone_report(report)
    sent = await run.send(
        "tone report",
        lambda: send_text(run.bot, run.chat_id, report_text, reply_to=message.message_id),
        reply_to=message.message_id,
    )
    if sent is None:
        return False
    await run.delivered()
    return True


async def read_aloud(job: Speak, run: Run) -> bool:
    """Read text aloud (the command's words, a replied-to message, or a text/markdown/PDF document)."""
    message = Message.de_json(job.message, run.bot)
    services = run.services
    if job.text is None and (media_of(message) or media_of(message.reply_to_message)):
        return await run.say(texts.SPEAK_RECORDING, reply_to=message.message_id)  # words to text: /transcribe
    try:
        text = job.text or await _text_to_speak(run, message.reply_to_message)
    except DocumentTooComplex as exc:
        # Finished as failed, not retried: the same document would only run out of time again.
        log.warning("chat=%s speak: %s", run.chat_id, exc)
        await run.say(texts.DOCUMENT_TOO_COMPLEX, reply_to=message.message_id)
        return False
    except DocumentError as exc:
        log.info("chat=%s speak: %s", run.chat_id, exc)
        return await run.say(texts.DOCUMENT_UNREADABLE, reply_to=message.message_id)
    except ParleyError as exc:
        return await run.say(texts.explain(exc), reply_to=message.message_id)
    if not text:
        return await run.say(texts.SPEAK_USAGE, reply_to=message.message_id)
    voice = (await services.preferences.of(job.user_id)).voice
    model = services.model.model
    key = "speak:" + hashlib.sha256(f"{voice}\0{model}\0{text}".encode()).hexdigest()
    max_chars = services.settings.tools.speak_max_chars
    caption = texts.spoken_summary(len(text)) if len(text) > max_chars else None
    if cached := await services.storage.cache.get(key):
        try:  # the same text in the same voice: send the voice Telegram already has, free
            sent = await run.voice(cached, caption=caption, reply_to=message.message_id, passes=(BadRequest,))
            return sent is not None
        except BadRequest as exc:
            log.info("cached voice unusable, speaking again: %s", exc)
    spend = services.engine.spend
    estimate = spend.prices.estimate_reply(model, text_tokens=len(text) // 4 + 100, audio_seconds=len(text) / 15)
    try:
        async with (
            spend.metered(user_id=job.user_id, chat_id=run.chat_id, estimate=estimate) as record,
            ReplyProgress(
                run.bot,
                run.chat_id,
                reply_to=message.message_id,
                notice_after=services.settings.operations.slow_notice_seconds,
            ),
        ):
            spoken = await services.voice_tools.speak(text, voice=voice, max_chars=max_chars, record=record)
    except ParleyError as exc:
        return await run.fail(exc, reply_to=message.message_id)
    sent = await run.voice(
        spoken.reply.voice_ogg or b"",
        seconds=spoken.reply.voice_seconds,
        caption=caption,
        reply_to=message.message_id,
        filename="speech.ogg",
    )
    if sent is None:
        return False
    await run.delivered()
    if sent.voice is not None:
        await services.storage.cache.put(key, sent.voice.file_id, user_id=job.user_id)
    return True


async def _text_to_speak(run: Run, source: Message | None) -> str | None:
    if source is None:
        return None
    if source.text or source.caption:
        return source.text or source.caption
    document = source.document
    if document is None:
        return None
    kind = document_kind(document.mime_type or "", document.file_name or "")
    if kind is None:
        raise DocumentError(f"document type {document.mime_type}")
    if document.file_size and document.file_size > TEXT_DOCUMENT_LIMIT:
        raise ParleyError("document too large", user_message=texts.DOCUMENT_TOO_LARGE)
    try:
        data = bytes(await (await run.bot.get_file(document.file_id)).download_as_bytearray())
    except TelegramError as exc:
        raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
    if len(data) > TEXT_DOCUMENT_LIMIT:  # Telegram's file_size is optional
        raise ParleyError("document too large", user_message=texts.DOCUMENT_TOO_LARGE)
    return await extract_text(data, kind)


async def _send_long(run: Run, text: str, *, reply_to: int) -> bool:
    """Up to three messages as text; longer, a .txt document (nobody scrolls through twelve messages)."""
    sent: object | None
    if len(split_message(text, MESSAGE_LIMIT)) > DOCUMENT_AFTER_PARTS:
        caption = texts.TRANSCRIPT_ATTACHED
        sent = await run.document(
            text.encode(),
            "transcript.txt",
            caption=caption if telegram_length(caption) <= CAPTION_LIMIT else None,
            reply_to=reply_to,
        )
    else:
        words = text or texts.NOTHING_SAID
        sent = await run.send(
            "transcript", lambda: send_text(run.bot, run.chat_id, words, reply_to=reply_to), reply_to=reply_to
        )
    if sent is None:
        return False
    await run.delivered()
    return True


def _reporting(status: StatusMessage, doing: str) -> Callable[[int, int], Awaitable[None]]:
    async def report(done: int, total: int) -> None:
        await status.update(texts.working(doing, (done, total)))

    return report
