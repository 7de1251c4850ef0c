"""Every answer a job gives goes through its `Run`: say something, send a reply, a document, a photo, a
voice note or formatted text, fail (with the Try again button when another try may work), settle a tapped
button, and mark the job replied once its answer is out.

A job body is a plain function `(payload, run) -> bool`; the dispatcher makes its `Run`. An answer Telegram
will not take is never an exception for the job to handle: the person is told, with Try again, and the
sending method returns None (or False), which the job returns as its outcome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ChatMemberStatus, ParseMode
from telegram.error import TelegramError

from bot import texts
from bot.callbacks import CallbackData
from bot.edge import Edge
from bot.sender import persistently, send_reply, tell
from parley.engine import Reply
from parley.errors import ModelError, ParleyError
from parley.i18n.marks import N_
from parley.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")


class NotSent(ParleyError):
    """An answer Telegram would not take, even after its passing faults were tried again: another try may
    get it through (the Try again button runs the job again)."""

    user_message = N_("I couldn't send you my answer just now. Please try again.")


@dataclass(frozen=True, slots=True)
class Retry(CallbackData, prefix="retry"):
    """The Try again button: it puts a failed job back in its chat's queue."""

    job_id: int


def retry_keyboard(job_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(texts.RETRY, callback_data=Retry(job_id).pack())]])


@dataclass(frozen=True, slots=True)
class Run:
    """One job as it runs: its row's id, its chat, the message it answers, and the edge's shared parts."""

    job_id: int
    chat_id: int
    message_id: int | None
    edge: Edge

    @property
    def services(self) -> Services:
        return self.edge.services

    @property
    def bot(self) -> Bot:
        return self.edge.bot

    async def say(
        self,
        text: str,
        *,
        reply_to: int | None = None,
        thread_id: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> bool:
        """A plain message; never raises (when even that fails, the log is all that is left)."""
        return await tell(self.bot, self.chat_id, text, reply_to=reply_to, thread_id=thread_id, keyboard=keyboard)

    async def fail(self, exc: ParleyError, *, reply_to: int | None = None, thread_id: int | None = None) -> bool:
        """Say what went wrong. A model failure (worth another try) gets the Try again button and leaves the
        job failed, so the button can run it again: False. Other failures are final, the job done: True."""
        if isinstance(exc, ModelError | NotSent):
            keyboard = retry_keyboard(self.job_id)
            await self.say(texts.explain(exc), reply_to=reply_to, thread_id=thread_id, keyboard=keyboard)
            return False
        await self.say(texts.explain(exc), reply_to=reply_to, thread_id=thread_id)
        return True

    async def send(
        self,
        what: str,
        sending: Callable[[], Awaitable[T]],
        *,
        reply_to: int | None = None,
        thread_id: int | None = None,
        passes: tuple[type[TelegramError], ...] = (),
    ) -> T | None:
        """Send an answer `sending` makes (`what` names it in the log). When Telegram will not take it, the
        person is told, with Try again, and None comes back: the job failed (the button runs it again).
        Errors in `passes` go to the caller instead, which has another way to answer."""
        try:
            return await sending()
        except passes:
            raise
        except TelegramError as exc:
            log.warning("chat=%s %s not sent: %s", self.chat_id, what, exc)
            await self.fail(NotSent(f"{what}: {exc}"), reply_to=reply_to, thread_id=thread_id)
            return None

    async def reply(
        self,
        reply: Reply,
        *,
        mode: str,
        reply_to: int | None,
        thread_id: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> Message | None:
        """A model's reply by the person's /mode (see `send_reply`), `keyboard` under its last message, which
        is returned; None when it could not be sent."""
        return await self.send(
            "reply",
            lambda: send_reply(
                self.bot, self.chat_id, reply_to, reply, thread_id=thread_id, mode=mode, keyboard=keyboard
            ),
            reply_to=reply_to,
            thread_id=thread_id,
        )

    async def voice(
        self,
        voice: bytes | str,
        *,
        seconds: float = 0.0,
        caption: str | None = None,
        reply_to: int | None = None,
        thread_id: int | None = None,
        filename: str = "voice.ogg",
        passes: tuple[type[TelegramError], ...] = (),
    ) -> Message | None:
        """A voice note: OGG/Opus bytes, or the file_id of one Telegram already has."""
        upload = InputFile(voice, filename=filename) if isinstance(voice, bytes) else voice
        duration = max(1, math.ceil(seconds)) if seconds else None
        return await self._post(
            "voice note", self.bot.send_voice, upload, duration=duration, caption=caption or None,
            reply_to=reply_to, thread_id=thread_id, passes=passes,
        )  # fmt: skip

    async def document(
        self, data: bytes, filename: str, *, caption: str | None = None, reply_to: int | None = None
    ) -> Message | None:
        upload = InputFile(data, filename=filename)
        return await self._post(
            f"document {filename}", self.bot.send_document, upload, caption=caption or None, reply_to=reply_to
        )

    async def photo(self, data: bytes, filename: str, *, caption: str | None = None) -> Message | None:
        upload = InputFile(data, filename=filename)
        return await self._post(f"photo {filename}", self.bot.send_photo, upload, caption=caption or None)

    async def html(
        self,
        text: str,
        *,
        reply_to: int | None = None,
        thread_id: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> Message | None:
        """One message of Telegram HTML (made by Parley, escaped), without link previews."""
        return await self._post(
            "message", self.bot.send_message, text, parse_mode=ParseMode.HTML, reply_markup=keyboard,
            link_preview_options=_NO_PREVIEW, reply_to=reply_to, thread_id=thread_id,
        )  # fmt: skip

    async def _post(
        self,
        what: str,
        method: Callable[..., Awaitable[Message]],
        *args: object,
        reply_to: int | None = None,
        thread_id: int | None = None,
        passes: tuple[type[TelegramError], ...] = (),
        **options: object,
    ) -> Message | None:
        """One message by one Bot API method, a passing fault tried again (see `send` for a refusal)."""
        return await self.send(
            what,
            lambda: persistently(
                lambda: method(
                    self.chat_id,
                    *args,
                    reply_parameters=_reply_to(reply_to),
                    message_thread_id=thread_id or None,
                    **options,
                )
            ),
            reply_to=reply_to,
            thread_id=thread_id,
            passes=passes,
        )

    async def settle(
        self,
        buttons_message_id: int,
        result: str | None,
        *,
        html: bool = False,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> None:
        """Replace a tapped keyboard's message with what happened (the query was answered on arrival): plain
        text, or HTML (a page turned); with `keyboard` under it when the message goes on offering choices (a
        settings screen, its pickers, the pages)."""
        if not result:
            return
        try:
            await self.bot.edit_message_text(
                result,
                chat_id=self.chat_id,
                message_id=buttons_message_id,
                parse_mode=ParseMode.HTML if html else None,
                reply_markup=keyboard,
                link_preview_options=_NO_PREVIEW if html else None,
            )
        except TelegramError as exc:  # e.g. the same page tapped twice: "message is not modified"
            log.warning("chat=%s button message %s not settled: %s", self.chat_id, buttons_message_id, exc)

    async def remove(self, message_id: int, *, instead: str) -> None:
        """Take back a message that has served its purpose (a status line); one Telegram no longer lets us
        delete (older than two days) is edited to `instead`."""
        try:
            await self.bot.delete_message(self.chat_id, message_id)
            return
        except TelegramError as exc:
            log.info("chat=%s message %s not deleted (%s): edited instead", self.chat_id, message_id, exc)
        await self.settle(message_id, instead)

    async def by_group_admin(self, user_id: int) -> bool:
        """Whether `user_id` administers this chat (a group); False when Telegram cannot tell."""
        try:
            member = await self.bot.get_chat_member(self.chat_id, user_id)
        except TelegramError as exc:
            log.warning("chat=%s getChatMember failed: %s", self.chat_id, exc)
            return False
        return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)

    async def delivered(self) -> None:
        """The answer is out: a crash from here on must not send it again (the job is finished at resume)."""
        await self.services.storage.jobs.mark_replied(self.job_id)


def _reply_to(message_id: int | None) -> ReplyParameters | None:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True) if message_id else None


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
