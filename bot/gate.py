"""The door: every update passes here first (a handler group that runs before all others).

Someone not allowed costs nothing: no job, no download, no model call, nothing of theirs stored but
the fact that they were refused (so they are told once an hour at most, not on every message).
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import texts
from bot.sender import send_text
from parley.access import AccessPolicy, Requester
from storage import Storage

log = logging.getLogger(__name__)

REFUSAL_QUIET_SECONDS = 3600.0


def requester(update: Update) -> Requester | None:
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return None
    return Requester(
        user_id=user.id,
        username=user.username,
        chat_id=chat.id,
        in_group=chat.type in (ChatType.GROUP, ChatType.SUPERGROUP),
    )


class Gate:
    def __init__(self, policy: AccessPolicy, storage: Storage) -> None:
        self.policy = policy
        self.storage = storage

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester(update)
        if who is None:
            raise ApplicationHandlerStop
        if await self.policy.allows(who):
            return
        log.info("refused user=%s chat=%s", who.user_id, who.chat_id)
        if update.callback_query is not None:
            await self._quietly(update.callback_query.answer(texts.REFUSED_SHORT))
        elif not who.in_group and await self.storage.privacy.note_refusal(
            who.user_id, quiet_seconds=REFUSAL_QUIET_SECONDS
        ):
            await self._quietly(send_text(context.bot, who.chat_id, texts.refused(who.user_id)))
        raise ApplicationHandlerStop

    @staticmethod
    async def _quietly(sending) -> None:
        try:
            await sending
        except TelegramError as exc:
            log.info("could not tell a refused user: %s", exc)
