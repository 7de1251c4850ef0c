"""Thin handlers: read the update, hand it to the dispatcher as a job, return.

python-telegram-bot processes updates one at a time (no concurrent_updates), and the dispatcher writes
each job before the next update is read, so jobs enter each chat's queue in the order Telegram sent them.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.dispatch import Dispatcher

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


class Handlers:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    def register(self, app: Application) -> None:
        """The bot's whole command surface, in one screen."""
        app.add_handler(CommandHandler("start", self.canned("start"), filters=PRIVATE))
        app.add_handler(CommandHandler("help", self.canned("help"), filters=PRIVATE))
        app.add_handler(CommandHandler("reset", self.reset, filters=PRIVATE))
        app.add_handler(CommandHandler("voice", self.voice, filters=PRIVATE))
        app.add_handler(CommandHandler("forget", self.forget, filters=PRIVATE))
        app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, self.canned("unknown_command")))
        app.add_handler(MessageHandler(PRIVATE & (filters.VOICE | filters.TEXT), self.converse))
        app.add_handler(MessageHandler(PRIVATE, self.canned("unsupported")))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.error)

    async def _accept(self, update: Update, kind: str, payload: dict[str, Any]) -> None:
        message = update.effective_message
        assert update.effective_chat is not None and message is not None
        await self.dispatcher.accept(
            chat_id=update.effective_chat.id,
            source=f"message:{message.message_id}",
            kind=kind,
            payload=payload,
            message_id=message.message_id,
        )

    def canned(self, what: str):
        """A handler that answers with one of the fixed texts (in the chat's turn, like everything else)."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._accept(update, "say", {"what": what})

        return handle

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._accept(update, "reset", {"user_id": update.effective_user.id})  # type: ignore[union-attr]

    async def voice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        name = " ".join(context.args or []).strip() or None
        await self._accept(update, "voice", {"user_id": update.effective_user.id, "name": name})  # type: ignore[union-attr]

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._accept(update, "forget", {})

    async def converse(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        await self._accept(update, "converse", {"message": message.to_dict()})

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.message is None or not query.data:
            return
        # Answer at once (the job may wait behind a long reply, and a query goes stale in seconds);
        # the job edits the message to say what happened.
        context.application.create_task(self._answer(query), update=update)
        action, _, value = query.data.partition(":")
        payload = {
            "user_id": query.from_user.id,
            "message_id": query.message.message_id,
            "data": query.data,
        }
        kind = "button"
        if action == "retry" and value.isdigit():
            kind, payload["job_id"] = "retry", int(value)
        await self.dispatcher.accept(
            chat_id=query.message.chat.id, source=f"callback:{query.id}", kind=kind, payload=payload
        )

    @staticmethod
    async def _answer(query: CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramError as exc:
            log.info("could not answer callback query: %s", exc)

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)
