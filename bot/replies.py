"""Every answer a job gives goes through its `Run`: say something, fail (with the Try again button when
another try may work), settle a tapped button, and mark the job replied once its answer is out.

A job body is a plain function `(payload, run) -> bool`; the dispatcher makes its `Run`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot import texts
from bot.callbacks import CallbackData
from bot.edge import Edge
from bot.sender import tell
from parley.errors import ModelError, ParleyError
from parley.services import Services

log = logging.getLogger(__name__)


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
        if isinstance(exc, ModelError):
            keyboard = retry_keyboard(self.job_id)
            await self.say(texts.explain(exc), reply_to=reply_to, thread_id=thread_id, keyboard=keyboard)
            return False
        await self.say(texts.explain(exc), reply_to=reply_to, thread_id=thread_id)
        return True

    async def settle(
        self, buttons_message_id: int, result: str | None, *, keyboard: InlineKeyboardMarkup | None = None
    ) -> None:
        """Replace a tapped keyboard's message with what happened (the query was answered on arrival), with
        `keyboard` under it when the message goes on offering choices (a settings screen, its pickers)."""
        if not result:
            return
        try:
            await self.bot.edit_message_text(
                result, chat_id=self.chat_id, message_id=buttons_message_id, reply_markup=keyboard
            )
        except TelegramError as exc:
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
