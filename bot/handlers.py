"""Thin handlers: read the update, hand it to the dispatcher as a job, return.

python-telegram-bot processes updates one at a time (no concurrent_updates), and the dispatcher writes
each job before the next update is read, so jobs enter each chat's queue in the order Telegram sent them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from telegram import CallbackQuery, Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import texts
from bot.dispatch import Dispatcher
from bot.gate import Gate
from bot.sender import send_text
from parley.access import AccessPolicy, Rate, RateLimiter

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


class Handlers:
    def __init__(
        self, dispatcher: Dispatcher, *, gate: Gate, policy: AccessPolicy, user_rate: Rate, chat_rate: Rate
    ) -> None:
        self.dispatcher = dispatcher
        self.gate = gate
        self.policy = policy
        self.user_limits = RateLimiter(user_rate)
        self.chat_limits = RateLimiter(chat_rate)

    def register(self, app: Application) -> None:
        """The bot's whole command surface, in one screen."""
        app.add_handler(TypeHandler(Update, self.gate), group=-1)  # access first, for every update
        app.add_handler(CommandHandler("start", self.canned("start"), filters=PRIVATE))
        app.add_handler(CommandHandler("help", self.canned("help"), filters=PRIVATE))
        app.add_handler(CommandHandler("reset", self.reset, filters=PRIVATE))
        app.add_handler(CommandHandler("voice", self.voice, filters=PRIVATE))
        app.add_handler(CommandHandler("forget", self.forget, filters=PRIVATE))
        app.add_handler(CommandHandler("export", self.export, filters=PRIVATE))
        app.add_handler(CommandHandler(["allow", "deny"], self.change_access, filters=PRIVATE))
        app.add_handler(CommandHandler("users", self.users, filters=PRIVATE))
        app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, self.canned("unknown_command")))
        app.add_handler(MessageHandler(PRIVATE & (filters.VOICE | filters.TEXT), self.converse))
        app.add_handler(MessageHandler(PRIVATE, self.canned("unsupported")))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.error)

    async def _accept(self, update: Update, kind: str, payload: dict[str, Any]) -> None:
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        if message is None or chat is None or user is None:
            return
        if not await self._within_rate(update, user.id, chat.id):
            return
        await self.dispatcher.accept(
            chat_id=update.effective_chat.id,
            source=f"message:{message.message_id}",
            kind=kind,
            payload=payload,
            message_id=message.message_id,
        )

    async def _within_rate(self, update: Update, user_id: int, chat_id: int) -> bool:
        """Over the per-user (or, in groups, per-chat) rate: one "slow down" per burst, nothing processed."""
        if self.policy.is_admin(user_id):
            return True
        in_group = chat_id != user_id
        limiter, key = (self.chat_limits, chat_id) if in_group else (self.user_limits, user_id)
        now = time.monotonic()
        wait = limiter.hit(key, now)
        if wait is None:
            return True
        log.info("chat=%s user=%s over the rate limit (%s)", chat_id, user_id, limiter.rate)
        if limiter.first_warning(key):
            try:
                await send_text(update.get_bot(), chat_id, texts.slow_down(wait))
            except TelegramError as exc:
                log.info("could not send the slow-down notice: %s", exc)
        limiter.forget_idle(now)
        return False

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

    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._accept(update, "export", {"user_id": update.effective_user.id})  # type: ignore[union-attr]

    async def change_access(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        command = (update.effective_message.text or "").split()[0].lstrip("/").split("@")[0]  # type: ignore[union-attr]
        payload = {
            "user_id": update.effective_user.id,
            "allow": command == "allow",
            "subject": " ".join(context.args or []),
        }  # type: ignore[union-attr]
        await self._accept(update, "access", payload)

    async def users(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._accept(update, "users", {"user_id": update.effective_user.id})  # type: ignore[union-attr]

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
