"""/transcribe, /tone, /speak and /mode: the jobs behind the voice tools (the work itself is parley.tools)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable

from telegram import Bot, InputFile, Message
from telegram.error import BadRequest, TelegramError

from bot import texts
from bot.media import download, media_of
from bot.sender import (
    CAPTION_LIMIT,
    MESSAGE_LIMIT,
    ReplyProgress,
    StatusMessage,
    retry_keyboard,
    send_text,
    split_message,
    telegram_length,
    tell,
)
from parley.errors import ModelError, ParleyError
from parley.services import Services
from parley.tools import Recorder, ToneReport, VoiceTools
from storage import JobRow

log = logging.getLogger(__name__)

MODES = ("voice", "text", "both")
DOCUMENT_AFTER_PARTS = 3
"""A transcript that would take more than three messages is sent as a .txt document instead."""
TEXT_DOCUMENT_LIMIT = 1024 * 1024


class ToolJobs:
    def __init__(self, services: Services, bot: Bot, tools: VoiceTools) -> None:
        self.services = services
        self.bot = bot
        self.tools = tools

    async def transcribe(self, job: JobRow) -> bool:
        return await self._on_recording(job, "Transcribing", self._transcript)

    async def tone(self, job: JobRow) -> bool:
        return await self._on_recording(job, "Listening", self._tone)

    async def _on_recording(
        self,
        job: JobRow,
        doing: str,
        work: Callable[[JobRow, Message, bytes, ReplyProgress, Recorder], Awaitable[None]],
    ) -> bool:
        """Find the recording (the replied-to message, or this one), download it, work, report failures."""
        message = Message.de_json(job.payload["message"], self.bot)
        target = message if media_of(message) else message.reply_to_message
        media = media_of(target)
        if target is None or media is None:
            return await self._say(job, texts.NEEDS_RECORDING.format(command=job.kind))
        cache_key = f"{job.kind}:{media.file_unique_id}" if job.kind == "transcribe" else None
        if cache_key and (cached := await self.services.storage.cached(cache_key)):
            await self._send_long(job, cached, reply_to=message.message_id)
            return True
        # The status message below reports progress: no second "still working" notice.
        progress = ReplyProgress(self.bot, job.chat_id, reply_to=message.message_id, notice_after=None, action="typing")
        spend = self.services.engine.spend
        estimate = spend.prices.estimate_reply(
            self.services.model.model, text_tokens=500, audio_seconds=max(media.duration, 1.0)
        )
        try:
            async with (
                spend.metered(user_id=job.payload["user_id"], chat_id=job.chat_id, estimate=estimate) as record,
                progress,
            ):
                data = await download(self.bot, media, local=self.services.settings.telegram.local_bot_api)
                await work(job, message, data, progress, record)
        except ParleyError as exc:
            log.warning("chat=%s %s failed: %s", job.chat_id, job.kind, exc)
            return await self._failed(job, exc, reply_to=message.message_id)
        return True

    async def _transcript(
        self, job: JobRow, message: Message, data: bytes, progress: ReplyProgress, record: Recorder
    ) -> None:
        async with StatusMessage(
            self.bot, job.chat_id, texts.working("Transcribing", None), reply_to=message.message_id
        ) as status:
            text = await self.tools.transcribe(data, progress=_reporting(status, "Transcribing"), record=record)
        await progress.stop()
        target = message if media_of(message) else message.reply_to_message
        media = media_of(target)
        if media is not None:
            await self.services.storage.cache(
                f"transcribe:{media.file_unique_id}", text, user_id=job.payload["user_id"]
            )
        await self._send_long(job, text, reply_to=message.message_id)

    async def _tone(
        self, job: JobRow, message: Message, data: bytes, progress: ReplyProgress, record: Recorder
    ) -> None:
        async with StatusMessage(
            self.bot, job.chat_id, texts.working("Listening", None), reply_to=message.message_id
        ) as status:
            report: ToneReport = await self.tools.tone(data, progress=_reporting(status, "Listening"), record=record)
        await progress.stop()
        await send_text(self.bot, job.chat_id, texts.tone_report(report), reply_to=message.message_id)
        await self.services.storage.jobs.mark_replied(job.id)

    async def speak(self, job: JobRow) -> bool:
        """Read text aloud (the command's words, a replied-to message, or a text/markdown/PDF document)."""
        message = Message.de_json(job.payload["message"], self.bot)
        try:
            text = job.payload.get("text") or await self._text_to_speak(message.reply_to_message)
        except ParleyError as exc:
            return await self._say(job, texts.explain(exc), reply_to=message.message_id)
        if not text:
            return await self._say(job, texts.SPEAK_USAGE, reply_to=message.message_id)
        engine = self.services.engine
        voice = await engine.voice_of(job.payload["user_id"])
        key = "speak:" + hashlib.sha256(f"{voice}\0{self.services.model.model}\0{text}".encode()).hexdigest()
        caption = texts.spoken_summary(len(text)) if len(text) > self.services.settings.tools.speak_max_chars else None
        if cached := await self.services.storage.cached(key):
            try:  # the same text in the same voice: send the voice Telegram already has, free
                await self.bot.send_voice(job.chat_id, cached, caption=caption, reply_to_message_id=message.message_id)
                return True
            except BadRequest as exc:
                log.info("cached voice unusable, speaking again: %s", exc)
        spend = self.services.engine.spend
        model = self.services.model.model
        estimate = spend.prices.estimate_reply(model, text_tokens=len(text) // 4 + 100, audio_seconds=len(text) / 15)
        try:
            async with (
                spend.metered(user_id=job.payload["user_id"], chat_id=job.chat_id, estimate=estimate) as record,
                ReplyProgress(
                    self.bot,
                    job.chat_id,
                    reply_to=message.message_id,
                    notice_after=self.services.settings.operations.slow_notice_seconds,
                ),
            ):
                spoken = await self.tools.speak(
                    text, voice=voice, max_chars=self.services.settings.tools.speak_max_chars, record=record
                )
        except ParleyError as exc:
            return await self._failed(job, exc, reply_to=message.message_id)
        sent = await self.bot.send_voice(
            job.chat_id,
            InputFile(spoken.reply.voice_ogg or b"", filename="speech.ogg"),
            duration=max(1, round(spoken.reply.voice_seconds)),
            caption=caption,
            reply_to_message_id=message.message_id,
        )
        await self.services.storage.jobs.mark_replied(job.id)
        if sent.voice is not None:
            await self.services.storage.cache(key, sent.voice.file_id, user_id=job.payload["user_id"])
        return True

    async def mode(self, job: JobRow) -> bool:
        choice = (job.payload.get("mode") or "").lower()
        user_id = job.payload["user_id"]
        if choice not in MODES:
            current = await self.services.storage.get_reply_mode(user_id) or "voice"
            return await self._say(job, texts.mode_usage(current))
        await self.services.storage.set_reply_mode(user_id, choice)
        return await self._say(job, texts.mode_set(choice))

    async def _text_to_speak(self, source: Message | None) -> str | None:
        if source is None:
            return None
        if source.text or source.caption:
            return source.text or source.caption
        document = source.document
        if document is None:
            return None
        if document.file_size and document.file_size > TEXT_DOCUMENT_LIMIT:
            raise ParleyError("document too large", user_message=texts.DOCUMENT_TOO_LARGE)
        try:
            data = bytes(await (await self.bot.get_file(document.file_id)).download_as_bytearray())
        except TelegramError as exc:
            raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
        # pypdf is pure Python and a hostile PDF can be slow: never on the event loop.
        return await asyncio.to_thread(document_text, data, document.mime_type or "", document.file_name or "")

    async def _send_long(self, job: JobRow, text: str, *, reply_to: int) -> None:
        """Up to three messages as text; longer, a .txt document (nobody scrolls through twelve messages)."""
        await self._send_long_text(job, text, reply_to=reply_to)
        await self.services.storage.jobs.mark_replied(job.id)

    async def _send_long_text(self, job: JobRow, text: str, *, reply_to: int) -> None:
        if len(split_message(text, MESSAGE_LIMIT)) > DOCUMENT_AFTER_PARTS:
            caption = texts.TRANSCRIPT_ATTACHED
            await self.bot.send_document(
                job.chat_id,
                InputFile(text.encode(), filename="transcript.txt"),
                caption=caption if telegram_length(caption) <= CAPTION_LIMIT else None,
                reply_to_message_id=reply_to,
            )
            return
        await send_text(self.bot, job.chat_id, text or texts.NOTHING_SAID, reply_to=reply_to)

    async def _failed(self, job: JobRow, exc: ParleyError, *, reply_to: int) -> bool:
        """Say what went wrong; a model failure (worth another try) gets the Retry button and leaves the
        job failed, so the button can run it again. Other failures are final: the job is done."""
        if isinstance(exc, ModelError):
            await tell(self.bot, job.chat_id, texts.explain(exc), reply_to=reply_to, keyboard=retry_keyboard(job.id))
            return False
        return await self._say(job, texts.explain(exc), reply_to=reply_to)

    async def _say(self, job: JobRow, text: str, *, reply_to: int | None = None) -> bool:
        return await tell(self.bot, job.chat_id, text, reply_to=reply_to)


def _reporting(status: StatusMessage, doing: str) -> Callable[[int, int], Awaitable[None]]:
    async def report(done: int, total: int) -> None:
        await status.update(texts.working(doing, (done, total)))

    return report


def document_text(data: bytes, mime_type: str, file_name: str) -> str:
    """Text from a .txt/.md or PDF document; anything else is refused plainly."""
    name = file_name.lower()
    if mime_type == "application/pdf" or name.endswith(".pdf"):
        try:
            from io import BytesIO

            from pypdf import PdfReader

            reader = PdfReader(BytesIO(data))
            return "\n".join((page.extract_text() or "") for page in reader.pages).strip()
        except Exception as exc:  # pypdf raises many kinds of errors for broken files
            raise ParleyError(f"pdf: {exc}", user_message=texts.DOCUMENT_UNREADABLE) from exc
    if mime_type.startswith("text/") or name.endswith((".txt", ".md", ".markdown")):
        return data.decode("utf-8", "replace").strip()
    raise ParleyError(f"document type {mime_type}", user_message=texts.DOCUMENT_UNREADABLE)
