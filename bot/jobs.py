"""The work a job does once its turn in the chat's queue comes: download, call the engine, send.

Handlers only parse updates and queue these; every Telegram call that can be slow happens here, inside
the per-chat worker, so a chat's messages are answered strictly in order.
"""

from __future__ import annotations

import json
import logging
import time

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, User
from telegram.error import TelegramError

from bot import texts
from bot.media import download, media_of
from bot.sender import ReplyProgress, retry_keyboard, send_reply, tell
from parley.access import subject_key
from parley.engine import Reply, TurnRequest
from parley.errors import AudioTooLarge, ModelError, ParleyError, VoiceTooLong
from parley.services import Services
from parley.spend import BudgetExceeded
from storage import JobRow

log = logging.getLogger(__name__)

_STEP_ORDER = ["download", "convert", "model", "encode", "send", "transcript_after", "fold_after"]
DOWNLOAD_LIMIT_BYTES = texts.TELEGRAM_DOWNLOAD_LIMIT_MB * 1024 * 1024


def voice_keyboard(voices: tuple[str, ...], current: str) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(f"• {v}" if v == current else v, callback_data=f"voice:{v}") for v in voices]
    return InlineKeyboardMarkup([buttons[i : i + 4] for i in range(0, len(buttons), 4)])


def forget_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(texts.FORGET_YES, callback_data="forget:yes"),
                InlineKeyboardButton(texts.FORGET_NO, callback_data="forget:no"),
            ]
        ]
    )


class ChatJobs:
    def __init__(self, services: Services, bot: Bot) -> None:
        self.services = services
        self.bot = bot
        self.local_bot_api = services.settings.telegram.local_bot_api

    async def converse(self, job: JobRow) -> bool:
        """A voice note or text in, a spoken reply out; every failure becomes one plain message."""
        message = Message.de_json(job.payload["message"], self.bot)
        chat_id, user = message.chat_id, message.from_user
        if user is None:  # handlers only queue messages with a sender
            return True
        kind = "voice" if media_of(message) else "text"
        thread = message.message_thread_id if message.is_topic_message else None
        timings: dict[str, float] = {}
        outcome = "ok"
        started = time.perf_counter()
        try:
            await self._touch(user)
            async with ReplyProgress(
                self.bot,
                chat_id,
                reply_to=message.message_id,
                notice_after=self.services.settings.operations.slow_notice_seconds,
            ) as progress:
                audio = await self._download_voice(message, timings) if media_of(message) else None
                mode = await self.services.storage.get_reply_mode(user.id) or "voice"

                async def deliver(reply: Reply) -> None:
                    await progress.stop()
                    sending = time.perf_counter()
                    await send_reply(self.bot, chat_id, message.message_id, reply, thread_id=thread, mode=mode)
                    await self.services.storage.jobs.mark_replied(job.id)
                    timings["send"] = time.perf_counter() - sending

                reply = await self.services.engine.respond(
                    TurnRequest(
                        chat_id=chat_id,
                        user_id=user.id,
                        message_id=message.message_id,
                        text=job.payload.get("text", message.text),
                        audio=audio,
                        thread_id=thread or 0,
                        reply_mode=mode,
                    ),
                    deliver,
                )
                timings.update(reply.timings)
            return True
        except ModelError as exc:
            # Worth another try later: offer a button that runs this very job again.
            outcome = type(exc).__name__
            log.warning("chat=%s message=%s %s: %s", chat_id, message.message_id, outcome, exc)
            await self._tell(chat_id, exc.user_message, reply_to=message.message_id, keyboard=retry_keyboard(job.id))
        except (BudgetExceeded, VoiceTooLong) as exc:  # refused before any model call: say why, plainly
            outcome = type(exc).__name__
            log.info("chat=%s message=%s %s: %s", chat_id, message.message_id, outcome, exc)
            await self._tell(chat_id, texts.explain(exc), reply_to=message.message_id)
        except ParleyError as exc:
            outcome = type(exc).__name__
            log.warning("chat=%s message=%s %s: %s", chat_id, message.message_id, outcome, exc)
            await self._tell(chat_id, exc.user_message, reply_to=message.message_id)
        except TelegramError as exc:
            outcome = type(exc).__name__
            log.warning("chat=%s message=%s Telegram error: %s", chat_id, message.message_id, exc)
            await self._tell(chat_id, ParleyError.user_message, reply_to=message.message_id)
        except Exception:
            outcome = "bug"
            log.exception("chat=%s message=%s unexpected failure", chat_id, message.message_id)
            await self._tell(chat_id, ParleyError.user_message, reply_to=message.message_id)
        finally:
            if outcome != "ok":
                self.services.metrics.error(outcome)
            steps = " ".join(f"{name}={timings[name] * 1000:.0f}ms" for name in sorted(timings, key=_STEP_ORDER.index))
            log.info(
                "chat=%s message=%s job=%s kind=%s %s total=%.0fms outcome=%s",
                chat_id,
                message.message_id,
                job.id,
                kind,
                steps,
                (time.perf_counter() - started) * 1000,
                outcome,
            )
        return False

    async def _download_voice(self, message: Message, timings: dict[str, float]) -> bytes:
        voice = media_of(message)
        if voice is None:
            raise ParleyError("no audio in the message")
        if voice.file_size is not None and voice.file_size > DOWNLOAD_LIMIT_BYTES and not self.local_bot_api:
            raise AudioTooLarge(f"voice note of {voice.file_size} bytes", user_message=texts.TOO_LARGE)
        limit, declared = self.services.settings.spend.max_voice_seconds, voice.duration
        if declared > limit:  # refused before the download (and checked again after conversion)
            raise VoiceTooLong(declared, limit)
        started = time.perf_counter()
        data = await download(self.bot, voice, local=self.local_bot_api)
        timings["download"] = time.perf_counter() - started
        return data

    async def _touch(self, user: User) -> None:
        await self.services.storage.touch_user(
            user.id, first_name=user.first_name, username=user.username, language_code=user.language_code
        )

    async def _tell(
        self,
        chat_id: int,
        text: str,
        *,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> bool:
        return await tell(self.bot, chat_id, text, reply_to=reply_to, keyboard=keyboard)

    async def tell_given_up(self, job: JobRow) -> None:
        await self._tell(job.chat_id, texts.GAVE_UP, reply_to=job.message_id)

    # --- commands ----------------------------------------------------------------------------------

    async def say(self, job: JobRow) -> bool:
        return await self._tell(job.chat_id, texts.CANNED[job.payload["what"]])

    async def reset(self, job: JobRow) -> bool:
        had_context = await self.services.engine.reset(
            job.chat_id, job.payload["user_id"], job.payload.get("thread_id") or 0
        )
        return await self._tell(job.chat_id, texts.RESET_DONE if had_context else texts.RESET_NOTHING)

    async def voice(self, job: JobRow) -> bool:
        engine, user_id, name = self.services.engine, job.payload["user_id"], job.payload.get("name")
        if name:
            chosen = await engine.choose_voice(user_id, name)
            if chosen:
                return await self._tell(job.chat_id, texts.voice_set(chosen))
            text = texts.voice_unknown(name, engine.voices)
        else:
            text = texts.voice_list(await engine.voice_of(user_id), engine.voices)
        current = await engine.voice_of(user_id)
        return await self._tell(job.chat_id, text, keyboard=voice_keyboard(engine.voices, current))

    async def export(self, job: JobRow) -> bool:
        """The user's stored data as a JSON document (their right to see what is kept about them)."""
        data = await self.services.storage.privacy.export_user(job.payload["user_id"])
        document = json.dumps(data, ensure_ascii=False, indent=2).encode()
        try:
            await self.bot.send_document(
                job.chat_id,
                InputFile(document, filename="parley-export.json"),
                caption=texts.EXPORT_CAPTION,
            )
            await self.services.storage.jobs.mark_replied(job.id)
        except TelegramError as exc:
            log.warning("chat=%s export not sent: %s", job.chat_id, exc)
            return False
        return True

    async def change_access(self, job: JobRow) -> bool:
        """/allow and /deny: stored at once, effective for the next update (no restart)."""
        if not self.services.access.is_admin(job.payload["user_id"]):
            return await self._tell(job.chat_id, texts.ADMIN_ONLY)
        allow = bool(job.payload["allow"])
        try:
            subject = subject_key(job.payload["subject"])
        except ValueError:
            return await self._tell(job.chat_id, texts.ALLOW_USAGE if allow else texts.DENY_USAGE)
        await self.services.storage.privacy.set_access(subject, allowed=allow, changed_by=job.payload["user_id"])
        log.info("access: %s %s by admin %s", subject, "allowed" if allow else "denied", job.payload["user_id"])
        return await self._tell(job.chat_id, texts.access_changed(subject, allow))

    async def users(self, job: JobRow) -> bool:
        if not self.services.access.is_admin(job.payload["user_id"]):
            return await self._tell(job.chat_id, texts.ADMIN_ONLY)
        access = self.services.access
        overrides = await self.services.storage.privacy.access_overrides()
        people = await self.services.storage.privacy.users_overview()
        return await self._tell(job.chat_id, texts.users_report(access.allowed, access.admins, overrides, people))

    async def ask_forget(self, job: JobRow) -> bool:
        return await self._tell(job.chat_id, texts.FORGET_CONFIRM, keyboard=forget_keyboard())

    async def button(self, job: JobRow) -> bool:
        """A tap on one of our inline buttons: answer the query, act, and edit the message to say so."""
        data, user_id = job.payload["data"], job.payload["user_id"]
        action, _, value = data.partition(":")
        engine = self.services.engine
        result: str | None = None
        if action == "voice":
            chosen = await engine.choose_voice(user_id, value)
            result = texts.voice_set(chosen) if chosen else texts.voice_unknown(value, engine.voices)
        elif action == "model":
            chosen = await engine.choose_model(user_id, value)
            result = texts.model_set(chosen) if chosen else texts.model_unknown(value, engine.models)
        elif action == "forget" and value == "yes":
            report = await engine.forget(user_id)
            result = texts.forget_done(report.turns)
        elif action == "forget":
            result = texts.FORGET_CANCELLED
        await self._settle_button(job, result)
        return True

    async def acknowledge_retry(self, job: JobRow, *, retrying: bool) -> None:
        await self._settle_button(job, texts.RETRYING if retrying else texts.RETRY_GONE)

    async def _settle_button(self, job: JobRow, result: str | None) -> None:
        """Replace the buttons' message with what happened (the query itself was answered on arrival)."""
        if not result:
            return
        try:
            await self.bot.edit_message_text(result, chat_id=job.chat_id, message_id=job.payload["message_id"])
        except TelegramError as exc:
            log.warning("chat=%s button %r: %s", job.chat_id, job.payload.get("data"), exc)
