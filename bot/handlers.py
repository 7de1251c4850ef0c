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
from bot.groups import AUDIO_KINDS, addressed_to, log_entry, without_mention
from bot.media import media_of
from bot.sender import send_text, tell
from parley.access import AccessPolicy, Rate, RateLimiter
from storage import Storage

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
GROUP = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
ANYWHERE = filters.UpdateType.MESSAGE
AUDIO_INPUT = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.Document.AUDIO


class Handlers:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        storage: Storage,
        gate: Gate,
        policy: AccessPolicy,
        user_rate: Rate,
        chat_rate: Rate,
        summary_rate: Rate,
    ) -> None:
        self.dispatcher = dispatcher
        self.storage = storage
        self.summary_limits = RateLimiter(summary_rate)
        self.gate = gate
        self.policy = policy
        self.user_limits = RateLimiter(user_rate)
        self.chat_limits = RateLimiter(chat_rate)

    def register(self, app: Application) -> None:
        """The bot's whole command surface, in one screen."""
        app.add_handler(TypeHandler(Update, self.gate), group=-1)  # access first, for every update
        app.add_handler(CommandHandler("start", self.canned("start"), filters=ANYWHERE))
        app.add_handler(CommandHandler("help", self.canned("help"), filters=ANYWHERE))
        app.add_handler(CommandHandler("reset", self.reset, filters=ANYWHERE))
        app.add_handler(CommandHandler("voice", self.voice, filters=ANYWHERE))
        app.add_handler(CommandHandler("transcribe", self.tool("transcribe"), filters=ANYWHERE))
        app.add_handler(CommandHandler(["tone", "sentiment"], self.tool("tone"), filters=ANYWHERE))
        app.add_handler(CommandHandler("speak", self.speak, filters=ANYWHERE))
        app.add_handler(CommandHandler("mode", self.mode, filters=PRIVATE))
        for command in ("transcribe", "tone", "sentiment"):  # audio sent with the command as its caption
            kind = "tone" if command == "sentiment" else command
            caption = filters.CaptionRegex(rf"^/{command}(@\w+)?\b") & AUDIO_INPUT
            app.add_handler(MessageHandler(ANYWHERE & caption, self.tool(kind)))
        app.add_handler(CommandHandler("summary", self.summary, filters=GROUP))
        app.add_handler(CommandHandler("digest", self.digest, filters=GROUP))
        private_only = ["forget", "export", "allow", "deny", "users", "usage", "model", "stats", "mode"]
        app.add_handler(CommandHandler(private_only, self.canned("private_only"), filters=GROUP))
        app.add_handler(MessageHandler(GROUP & filters.COMMAND, self.ignore))  # maybe another bot's
        app.add_handler(MessageHandler(GROUP, self.group_message))
        app.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.UpdateType.EDITED_MESSAGE, self.group_edit))
        app.add_handler(CommandHandler("forget", self.forget, filters=PRIVATE))
        app.add_handler(CommandHandler("export", self.export, filters=PRIVATE))
        app.add_handler(CommandHandler(["allow", "deny"], self.change_access, filters=PRIVATE))
        app.add_handler(CommandHandler("users", self.users, filters=PRIVATE))
        app.add_handler(CommandHandler(["usage", "model", "stats"], self.spend_command, filters=PRIVATE))
        app.add_handler(MessageHandler(PRIVATE & filters.COMMAND, self.canned("unknown_command")))
        app.add_handler(MessageHandler(PRIVATE & (AUDIO_INPUT | filters.TEXT), self.converse))
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

    async def spend_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/usage, /model [NAME] and /stats (the job checks that /stats comes from an admin)."""
        command = (update.effective_message.text or "").split()[0].lstrip("/").split("@")[0].lower()  # type: ignore[union-attr]
        name = " ".join(context.args or []).strip() or None
        await self._accept(update, command, {"user_id": update.effective_user.id, "name": name})  # type: ignore[union-attr]

    def canned(self, what: str):
        """A handler that answers with one of the fixed texts (in the chat's turn, like everything else)."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            await self._accept(update, "say", {"what": what})

        return handle

    async def reset(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        thread = message.message_thread_id if message and message.is_topic_message else 0
        await self._accept(update, "reset", {"user_id": update.effective_user.id, "thread_id": thread})  # type: ignore[union-attr]

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

    def tool(self, kind: str):
        """/transcribe and /tone: the recording is the replied-to message, or this one (audio + caption)."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message = update.effective_message
            if message is not None and update.effective_user is not None:
                await self._accept(update, kind, {"message": message.to_dict(), "user_id": update.effective_user.id})

        return handle

    async def speak(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or update.effective_user is None:
            return
        text = (message.text or "").partition(" ")[2].strip() or None
        payload = {"message": message.to_dict(), "user_id": update.effective_user.id, "text": text}
        await self._accept(update, "speak", payload)

    async def mode(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        choice = (context.args or [""])[0]
        await self._accept(update, "mode", {"user_id": update.effective_user.id, "mode": choice})  # type: ignore[union-attr]

    async def group_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Record what the group says; answer only when addressed; transcribe audio in the background."""
        message = update.effective_message
        if message is None:
            return
        entry = log_entry(message)
        if await self.storage.groups.record(entry) and entry.kind in AUDIO_KINDS:
            await self.dispatcher.accept(
                chat_id=message.chat_id,
                source=f"log:{message.message_id}",
                kind="transcribe_log",
                payload={"message": message.to_dict()},
                message_id=message.message_id,
            )
        if message.from_user and (message.text or media_of(message)) and addressed_to(message, context.bot):
            text = without_mention(message.text, context.bot)
            await self._accept(update, "converse", {"message": message.to_dict(), "text": text})

    async def group_edit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.edited_message
        if message is not None and media_of(message) is None and (message.text or message.caption):
            await self.storage.groups.edit(message.chat_id, message.message_id, message.text or message.caption or "")

    async def summary(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, chat = update.effective_message, update.effective_chat
        if message is None or chat is None or update.effective_user is None:
            return
        wait = self.summary_limits.hit(chat.id, time.monotonic())
        if wait is not None:
            if self.summary_limits.first_warning(chat.id):
                await self._notify(update, texts.summary_limited(wait))
            return
        payload = {
            "span": " ".join(context.args or []),
            "user_id": update.effective_user.id,
            "message_id": message.message_id,
            "thread_id": message.message_thread_id if message.is_topic_message else None,
        }
        await self._accept(update, "summary", payload)

    async def digest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        payload = {
            "user_id": update.effective_user.id,
            "args": list(context.args or []),
            "message_id": message.message_id,
        }  # type: ignore[union-attr]
        await self._accept(update, "digest", payload)

    async def ignore(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        return None

    async def _notify(self, update: Update, text: str) -> None:
        await tell(update.get_bot(), update.effective_chat.id, text)  # type: ignore[union-attr]

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
