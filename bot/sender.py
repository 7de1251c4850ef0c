"""Sending replies within Telegram's limits: voice bubbles, captions, split long texts, chat actions."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, InlineKeyboardMarkup, InputFile, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, TelegramError

from bot import texts
from parley.engine import Reply
from parley.jobs import cancel_and_wait

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
CHAT_ACTION_EVERY = 4.0
"""Telegram shows a chat action for 5 s; renewing it every 4 s keeps "recording voice…" steady."""


def telegram_length(text: str) -> int:
    """Telegram counts message length in UTF-16 code units (an emoji can count as two)."""
    return len(text.encode("utf-16-le")) // 2


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split text into Telegram-sized parts, at paragraph, line, sentence or word breaks when possible."""
    text = text.strip()
    parts: list[str] = []
    while telegram_length(text) > limit:
        cut = _longest_prefix(text, limit)
        window = text[:cut]
        for separator in ("\n\n", "\n", ". ", "! ", "? ", " "):
            at = window.rfind(separator)
            if at > cut // 2:
                cut = at + len(separator)
                break
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        parts.append(text)
    return parts


def _longest_prefix(text: str, limit: int) -> int:
    """How many characters fit in `limit` UTF-16 units (never splitting a surrogate pair)."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    if message_id is None:
        return None
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True)


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    reply_markup: InlineKeyboardMarkup | None = None,
    thread_id: int | None = None,
) -> Message:
    """Send plain text (no parse mode, so nothing the model says can break parsing), split if long."""
    parts = split_message(text) or ["…"]
    first: Message | None = None
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent = await bot.send_message(
            chat_id,
            part,
            reply_parameters=_reply_to(reply_to) if index == 0 else None,
            reply_markup=reply_markup if last else None,
            message_thread_id=thread_id or None,
        )
        first = first or sent
    assert first is not None
    return first


SEND_TRIES = 3

T = TypeVar("T")


async def persistently(send: Callable[[], Awaitable[T]]) -> T:
    """A send that a passing fault should not lose: a 5xx or a dropped connection is tried again (three
    tries in all). A BadRequest is final at once; a 429 was already waited out by the rate limiter."""
    for attempt in range(1, SEND_TRIES + 1):
        try:
            return await send()
        except BadRequest:
            raise
        except NetworkError:
            if attempt == SEND_TRIES:
                raise
            await asyncio.sleep(float(attempt))
    raise AssertionError("unreachable")


async def tell(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    thread_id: int | None = None,
    keyboard: InlineKeyboardMarkup | None = None,
) -> bool:
    """Send a plain message and never raise: when even that fails, the log is all that is left."""
    try:
        await send_text(bot, chat_id, text, reply_to=reply_to, reply_markup=keyboard, thread_id=thread_id)
    except TelegramError as exc:
        log.warning("chat=%s could not send a message: %s", chat_id, exc)
        return False
    return True


async def send_reply(
    bot: Bot,
    chat_id: int,
    reply_to: int | None,
    reply: Reply,
    *,
    thread_id: int | None = None,
    mode: str = "voice",
    keyboard: InlineKeyboardMarkup | None = None,
) -> Message:
    """By the user's /mode: "voice" — a voice bubble with the transcript as caption (a long one follows as
    text); "text" — the words only; "both" — the bubble, then the words as a message. No audio: text.
    `keyboard` goes under the last message of the reply, which is returned."""
    if reply.new_conversation:  # an idle reset is said where the user looks: in the reply's caption
        reply = dataclasses.replace(reply, text=f"{texts.NEW_CONVERSATION}\n\n{reply.text}", new_conversation=False)

    async def words(reply_to: int | None) -> Message:
        return await send_text(bot, chat_id, reply.text, reply_to=reply_to, reply_markup=keyboard, thread_id=thread_id)

    if reply.voice_ogg is None or mode == "text":
        return await words(reply_to)
    caption = reply.text if mode == "voice" and telegram_length(reply.text) <= CAPTION_LIMIT else None
    voice = reply.voice_ogg
    try:
        voice_message = await persistently(
            lambda: bot.send_voice(
                chat_id,
                voice=InputFile(voice, filename="reply.ogg"),
                duration=max(1, math.ceil(reply.voice_seconds)),
                caption=caption or None,
                reply_parameters=_reply_to(reply_to),
                message_thread_id=thread_id or None,
                reply_markup=keyboard if caption is not None or not reply.text else None,
            )
        )
    except BadRequest as exc:
        if "voice_messages_forbidden" not in exc.message.lower():
            raise
        # The user's privacy settings refuse voice messages from bots: the words still get through.
        return await words(reply_to)
    except TelegramError as exc:
        # The reply is paid for: when its voice cannot get through, its words still must.
        log.warning("chat=%s voice reply not sent (%s): sending its words", chat_id, exc)
        return await persistently(lambda: words(reply_to))
    if caption is None and reply.text:
        return await words(voice_message.message_id)
    return voice_message


class ReplyProgress:
    """What the user sees while a reply is being made: "recording voice…" renewed every few seconds, and,
    past `notice_after` seconds, one status message saying the reply is still coming — edited as time
    passes rather than repeated, and deleted when the reply is ready. Failures here never matter."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        reply_to: int | None,
        notice_after: float | None,
        action: str = ChatAction.RECORD_VOICE,
    ) -> None:
        self.bot, self.chat_id, self.reply_to = bot, chat_id, reply_to
        self.notice_after, self.action = notice_after, action
        self._tasks: list[asyncio.Task[None]] = []
        self._status: StatusMessage | None = None
        self._started = 0.0

    async def __aenter__(self) -> ReplyProgress:
        self._started = asyncio.get_running_loop().time()
        self._tasks = [asyncio.create_task(self._keep_acting(), name=f"chat-action-{self.chat_id}")]
        if self.notice_after is not None:  # None: the caller shows progress its own way
            self._tasks.append(asyncio.create_task(self._keep_posted(), name=f"slow-notice-{self.chat_id}"))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Idempotent: called when the reply is ready, and again on the way out."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks)
        status, self._status = self._status, None
        if status is not None:
            await status.close()

    async def _keep_acting(self) -> None:
        while True:
            try:
                await self.bot.send_chat_action(self.chat_id, self.action)
            except TelegramError as exc:
                log.debug("chat action failed in chat %s: %s", self.chat_id, exc)
            await asyncio.sleep(CHAT_ACTION_EVERY)

    async def _keep_posted(self) -> None:
        assert self.notice_after is not None
        while True:
            await asyncio.sleep(self.notice_after)
            text = texts.still_working(asyncio.get_running_loop().time() - self._started)
            if self._status is not None and self._status.message is not None:
                await self._status.update(text)
            else:  # first notice (or the first one was refused: try again)
                status = StatusMessage(self.bot, self.chat_id, text, reply_to=self.reply_to)
                self._status = status if await status.open() else None


class StatusMessage:
    """One message that reports progress ("Reading 1,240 messages… 3/5"): sent on entry, edited as work
    advances, deleted on exit. Telegram failures here never stop the work they describe."""

    def __init__(self, bot: Bot, chat_id: int, text: str, *, reply_to: int | None, thread_id: int | None = None):
        self.bot, self.chat_id, self.text = bot, chat_id, text
        self.reply_to, self.thread_id = reply_to, thread_id
        self.message: Message | None = None

    async def __aenter__(self) -> StatusMessage:
        await self.open()
        return self

    async def open(self) -> bool:
        """Send the message; False (and nothing to edit later) when Telegram refused it."""
        try:
            self.message = await send_text(
                self.bot, self.chat_id, self.text, reply_to=self.reply_to, thread_id=self.thread_id
            )
        except TelegramError as exc:
            log.debug("status message not sent in chat %s: %s", self.chat_id, exc)
        return self.message is not None

    async def update(self, text: str) -> None:
        if self.message is None or text == self.text:
            return
        try:
            await self.message.edit_text(text)
            self.text = text
        except TelegramError as exc:
            log.debug("status message not edited in chat %s: %s", self.chat_id, exc)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Delete the message (idempotent)."""
        message, self.message = self.message, None
        if message is not None:
            try:
                await message.delete()
            except TelegramError as exc:
                log.debug("status message not deleted in chat %s: %s", self.chat_id, exc)
