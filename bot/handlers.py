"""Thin handlers: read the update, queue a job for its chat, return at once.

Updates are processed one at a time by python-telegram-bot (no concurrent_updates), and a handler never
awaits anything, so jobs enter each chat's queue in the order Telegram delivered them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters

from bot import texts
from bot.jobs import ChatJobs
from parley.jobs import ChatScheduler, Job

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE


class Handlers:
    def __init__(self, jobs: ChatJobs, scheduler: ChatScheduler) -> None:
        self.jobs = jobs
        self.scheduler = scheduler

    def register(self, app: Application) -> None:
        """The bot's whole command surface, in one screen."""
        app.add_handler(CommandHandler("start", self.start, filters=PRIVATE))
        app.add_handler(CommandHandler("help", self.help, filters=PRIVATE))
        app.add_handler(CommandHandler("reset", self.reset, filters=PRIVATE))
        app.add_handler(CommandHandler("voice", self.voice, filters=PRIVATE))
        app.add_handler(CommandHandler("forget", self.forget, filters=PRIVATE))
        app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, self.unknown_command))
        app.add_handler(MessageHandler(PRIVATE & (filters.VOICE | filters.TEXT), self.converse))
        app.add_handler(MessageHandler(PRIVATE, self.unsupported))
        app.add_handler(CallbackQueryHandler(self.button))
        app.add_error_handler(self.error)

    def _queue(self, update: Update, label: str, run: Callable[[], Awaitable[None]]) -> None:
        chat = update.effective_chat
        assert chat is not None
        message = update.effective_message
        if not self.scheduler.submit(Job(chat_id=chat.id, label=label, run=run)):
            log.info("chat=%s message=%s dropped: shutting down", chat.id, message and message.message_id)

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        self._queue(update, "start", lambda: self.jobs.say(chat_id, texts.START))

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        self._queue(update, "help", lambda: self.jobs.say(chat_id, texts.HELP))

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id, user_id = update.effective_chat.id, update.effective_user.id  # type: ignore[union-attr]
        self._queue(update, "reset", lambda: self.jobs.reset(chat_id, user_id))

    async def voice(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id, user_id = update.effective_chat.id, update.effective_user.id  # type: ignore[union-attr]
        name = " ".join(context.args or []).strip() or None
        self._queue(update, "voice", lambda: self.jobs.voice(chat_id, user_id, name))

    async def forget(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        self._queue(update, "forget", lambda: self.jobs.ask_forget(chat_id))

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        self._queue(update, "unknown-command", lambda: self.jobs.say(chat_id, texts.UNKNOWN_COMMAND))

    async def converse(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        self._queue(update, "converse", lambda: self.jobs.converse(message))

    async def unsupported(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat_id = update.effective_chat.id  # type: ignore[union-attr]
        self._queue(update, "unsupported", lambda: self.jobs.say(chat_id, texts.UNSUPPORTED))

    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or query.message is None or not query.data:
            return
        chat_id, message_id = query.message.chat.id, query.message.message_id
        user_id, query_id, data = query.from_user.id, query.id, query.data
        self._queue(update, "button", lambda: self.jobs.button(chat_id, user_id, query_id, message_id, data))

    async def error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)
