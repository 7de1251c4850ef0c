"""The work a job does once its turn in the chat's queue comes: download, call the engine, send.

Handlers only parse updates and queue these; every Telegram call that can be slow happens here, inside
the per-chat worker, so a chat's messages are answered strictly in order.
"""

from __future__ import annotations

import logging
import time

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from telegram.error import BadRequest, TelegramError

from bot import texts
from bot.sender import chat_action, send_reply, send_text
from parley.engine import TurnRequest
from parley.errors import AudioTooLarge, ParleyError
from parley.services import Services

log = logging.getLogger(__name__)

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

    async def converse(self, message: Message) -> None:
        """A voice note or text in, a spoken reply out; every failure becomes one plain message."""
        chat_id, user = message.chat_id, message.from_user
        assert user is not None
        kind = "voice" if message.voice else "text"
        timings: dict[str, float] = {}
        outcome = "ok"
        started = time.perf_counter()
        try:
            await self._touch(user)
            async with chat_action(self.bot, chat_id):
                audio = await self._download_voice(message, timings) if message.voice else None
                reply = await self.services.engine.respond(
                    TurnRequest(
                        chat_id=chat_id,
                        user_id=user.id,
                        message_id=message.message_id,
                        text=message.text,
                        audio=audio,
                    )
                )
            timings.update(reply.timings)
            sending = time.perf_counter()
            await send_reply(self.bot, chat_id, message.message_id, reply)
            timings["send"] = time.perf_counter() - sending
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
            steps = " ".join(f"{name}={seconds * 1000:.0f}ms" for name, seconds in timings.items())
            log.info(
                "chat=%s message=%s kind=%s %s total=%.0fms outcome=%s",
                chat_id,
                message.message_id,
                kind,
                steps,
                (time.perf_counter() - started) * 1000,
                outcome,
            )

    async def _download_voice(self, message: Message, timings: dict[str, float]) -> bytes:
        voice = message.voice
        assert voice is not None
        if voice.file_size is not None and voice.file_size > DOWNLOAD_LIMIT_BYTES:
            raise AudioTooLarge(f"voice note of {voice.file_size} bytes", user_message=texts.TOO_LARGE)
        started = time.perf_counter()
        try:
            telegram_file = await self.bot.get_file(voice.file_id)
            data = bytes(await telegram_file.download_as_bytearray())
        except BadRequest as exc:
            if "too big" in exc.message.lower():
                raise AudioTooLarge(str(exc), user_message=texts.TOO_LARGE) from exc
            raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
        except TelegramError as exc:
            raise ParleyError(f"download: {exc}", user_message=texts.DOWNLOAD_FAILED) from exc
        timings["download"] = time.perf_counter() - started
        return data

    async def _touch(self, user: User) -> None:
        await self.services.storage.touch_user(
            user.id, first_name=user.first_name, username=user.username, language_code=user.language_code
        )

    async def _tell(self, chat_id: int, text: str, *, reply_to: int | None = None) -> None:
        """Send a plain message; if even that fails, the log is all that is left."""
        try:
            await send_text(self.bot, chat_id, text, reply_to=reply_to)
        except TelegramError as exc:
            log.warning("chat=%s could not send a message: %s", chat_id, exc)

    # --- commands ----------------------------------------------------------------------------------

    async def say(self, chat_id: int, text: str) -> None:
        await self._tell(chat_id, text)

    async def reset(self, chat_id: int, user_id: int) -> None:
        had_context = await self.services.engine.reset(chat_id, user_id)
        await self._tell(chat_id, texts.RESET_DONE if had_context else texts.RESET_NOTHING)

    async def voice(self, chat_id: int, user_id: int, name: str | None) -> None:
        engine = self.services.engine
        if name:
            chosen = await engine.choose_voice(user_id, name)
            if chosen:
                await self._tell(chat_id, texts.voice_set(chosen))
                return
            text = texts.voice_unknown(name, engine.voices)
        else:
            text = texts.voice_list(await engine.voice_of(user_id), engine.voices)
        current = await engine.voice_of(user_id)
        await self._send_with_keyboard(chat_id, text, voice_keyboard(engine.voices, current))

    async def ask_forget(self, chat_id: int) -> None:
        await self._send_with_keyboard(chat_id, texts.FORGET_CONFIRM, forget_keyboard())

    async def _send_with_keyboard(self, chat_id: int, text: str, keyboard: InlineKeyboardMarkup) -> None:
        try:
            await send_text(self.bot, chat_id, text, reply_markup=keyboard)
        except TelegramError as exc:
            log.warning("chat=%s could not send a message: %s", chat_id, exc)

    async def button(self, chat_id: int, user_id: int, query_id: str, message_id: int, data: str) -> None:
        """A tap on one of our inline buttons: answer the query, act, and edit the message to say so."""
        action, _, value = data.partition(":")
        result: str | None = None
        if action == "voice":
            chosen = await self.services.engine.choose_voice(user_id, value)
            result = texts.voice_set(chosen) if chosen else texts.voice_unknown(value, self.services.engine.voices)
        elif action == "forget" and value == "yes":
            report = await self.services.engine.forget(user_id)
            result = texts.forget_done(report.turns)
        elif action == "forget":
            result = texts.FORGET_CANCELLED
        try:
            await self.bot.answer_callback_query(query_id)
            if result:
                await self.bot.edit_message_text(result, chat_id=chat_id, message_id=message_id)
        except TelegramError as exc:
            log.warning("chat=%s button %r: %s", chat_id, data, exc)
