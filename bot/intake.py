"""The way in, once for every update: the access gate, the rate limits, and the job row.

A feature's handler is a plain function from what arrived (`Incoming`) to a typed job, or None when there is
nothing to do; `Intake.job` turns it into python-telegram-bot's callback. python-telegram-bot takes a chat's
updates one at a time (bot/order.py; different chats side by side) and each job row is written before the
chat's next update is read, so jobs enter each chat's queue in the order Telegram sent them. With several
processes behind a balancer, a chat's jobs run in the order their rows reached the shared table.

Someone not allowed costs nothing: no job, no download, no model call, nothing of theirs stored but the fact
that they were refused (so they are told once an hour at most, not on every message).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import Bot, CallbackQuery, Chat, ChatMemberUpdated, Message, Update, User
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import texts
from bot.buttons import Press
from bot.edge import Edge
from bot.jobs import Payload
from bot.sender import send_text, tell
from parley.access import Rate, RateLimiter, Requester
from parley.i18n.catalog import set_current
from parley.i18n.locales import normalise

log = logging.getLogger(__name__)

REFUSAL_QUIET_SECONDS = 3600.0

Callback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
"""A python-telegram-bot handler callback."""

StrangerRefused = Callable[[Edge, User], Awaitable[None]]
"""What else happens when a person is refused in their private chat (the admins hear of it)."""
GroupRefused = Callable[[Edge, Message], Awaitable[None]]
"""What else happens when a message in a group that is not allowed is refused (the group may be told why)."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message that passed the gate, from someone: what a feature's handler reads."""

    message: Message
    user: User
    chat: Chat
    args: tuple[str, ...] = ()
    named: str | None = None  # the command it stands for, when not the one written ("/start voice" → voice)

    @property
    def bot(self) -> Bot:
        return self.message.get_bot()

    @property
    def argument(self) -> str:
        """The command's words after its name, or ''."""
        return " ".join(self.args).strip()

    @property
    def command(self) -> str:
        """'/Allow@parley_bot x' → 'allow'."""
        if self.named is not None:
            return self.named
        return (self.message.text or "").split(maxsplit=1)[0].lstrip("/").split("@")[0].lower()

    @property
    def thread_id(self) -> int | None:
        """The forum topic the message was sent in, if any."""
        return self.message.message_thread_id if self.message.is_topic_message else None


Parse = Callable[[Incoming], Payload | None]
"""A feature's handler: the job this message asks for, or None."""


@dataclass(frozen=True, slots=True)
class Limit:
    """A command's own rate (beside the per-user one), counted per chat, with its one "slow down" text."""

    rate: Rate
    notice: Callable[[int], str]


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


class Intake:
    def __init__(self, edge: Edge, *, user_rate: Rate, chat_rate: Rate) -> None:
        self.edge = edge
        self.user_limits = RateLimiter(user_rate, edge.services.storage.rates, "user")
        self.chat_limits = RateLimiter(chat_rate, edge.services.storage.rates, "chat")
        self._stranger: StrangerRefused | None = None
        self._group: GroupRefused | None = None

    def when_refused(self, *, stranger: StrangerRefused, group: GroupRefused) -> None:
        """The features that act on a refusal (the registry names them; the gate stays feature-free)."""
        self._stranger, self._group = stranger, group

    # --- the gate: before every other handler ----------------------------------------------------

    async def gate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        who = requester(update)
        if who is None or update.my_chat_member is not None:  # membership changes: handled before the gate
            raise ApplicationHandlerStop
        languages = self.edge.languages
        if await self.edge.services.access.allows(who):
            await self._hear_language(update)
            set_current(await languages.of_chat(who.chat_id))  # for what the intake itself says to this update
            return
        user = update.effective_user
        set_current(normalise(user.language_code if user else None) or languages.default)
        log.info("refused user=%s chat=%s", who.user_id, who.chat_id)
        if update.callback_query is not None:
            await _quietly(update.callback_query.answer(texts.REFUSED_SHORT))
        elif not who.in_group:
            if await self.edge.services.storage.access.note_refusal(who.user_id, quiet_seconds=REFUSAL_QUIET_SECONDS):
                refusal = texts.refused(who.user_id, unconfigured=self.edge.services.access.unconfigured)
                await _quietly(send_text(context.bot, who.chat_id, refusal))
            if user is not None and self._stranger is not None:
                await self._follow_up(self._stranger(self.edge, user))
        elif update.message is not None and self._group is not None:
            await self._follow_up(self._group(self.edge, update.message))
        raise ApplicationHandlerStop

    @staticmethod
    async def _follow_up(work: Awaitable[None]) -> None:
        """A feature's work beside the gate (after a refusal, on a membership change): its failure is logged and
        changes nothing of what the gate decided."""
        try:
            await work
        except Exception:
            log.exception("a follow-up of the gate failed")

    async def _hear_language(self, update: Update) -> None:
        """Keep the language of a person's app (for their private chat), stored when this process first
        hears it, so a job resumed after a restart still knows it."""
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None or chat.type != ChatType.PRIVATE:
            return
        if self.edge.languages.heard(user.id, user.language_code):
            await self.edge.services.storage.users.touch(
                user.id, first_name=user.first_name, username=user.username, language_code=user.language_code
            )

    # --- handlers as python-telegram-bot callbacks -----------------------------------------------

    def job(self, parse: Parse, *, limit: Limit | None = None, metered: bool = True) -> Callback:
        """The callback that runs `parse` on a message and accepts the job it asks for; one not `metered` (a
        cheap read-only answer: /help, /usage) is taken even from someone over the rate, and counts nothing.
        With a `limit`, counted per chat in a window of the handler's own (named after it, the same in every
        process)."""
        limiter = RateLimiter(limit.rate, self.edge.services.storage.rates, parse.__name__) if limit else None

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            got = incoming(update, context)
            if got is None:
                return
            if limit is not None and limiter is not None and not await self._within(limiter, got.chat.id, limit):
                return
            job = parse(got)
            if job is not None:
                await self.accept(got, job, metered=metered)

        return handle

    def messages(self, *handlers: Callable[[Message, Intake], Awaitable[bool | None]]) -> Callback:
        """The callback for messages several features see in turn (a group's message: logged, maybe answered);
        a handler that returns True has answered it, and the ones after it do not see it."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            message = update.effective_message
            if message is None:
                return
            for handler in handlers:
                try:
                    if await handler(message, self):
                        return
                except Exception:  # one failing (the group log's write) must not keep the next from its turn
                    log.exception("chat=%s message=%s not handled by %s", message.chat_id, message.message_id,
                                  getattr(handler, "__name__", handler))  # fmt: skip

        return handle

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A tap on one of our buttons: answered at once (the job may wait behind a long reply, and a query
        goes stale in seconds); the job edits the buttons' message to say what happened."""
        query = update.callback_query
        if query is None or query.message is None or not query.data:
            return
        asked = query.message.reply_to_message if isinstance(query.message, Message) else None
        owner = asked.from_user if asked is not None else None
        if owner is not None and not owner.is_bot and owner.id != query.from_user.id:
            # A group's buttons answer one member's message: another member's tap would run it at their cost.
            context.application.create_task(_answer(query, texts.NOT_YOUR_BUTTON), update=update)
            return
        context.application.create_task(_answer(query), update=update)
        tap = Press(user_id=query.from_user.id, message_id=query.message.message_id, data=query.data)
        await self.edge.jobs.accept(chat_id=query.message.chat.id, source=f"callback:{query.id}", job=tap)

    def membership(self, handler: Callable[[ChatMemberUpdated, Edge], Awaitable[None]]) -> Callback:
        """The callback for a change of the bot's own membership (my_chat_member), which no gate stops: being
        added to a group is answered whoever added it."""

        async def handle(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if update.my_chat_member is not None:
                await self._follow_up(handler(update.my_chat_member, self.edge))

        return handle

    @staticmethod
    async def ignore(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Matched so that nothing after it is: e.g. a group command meant for another bot."""

    @staticmethod
    async def error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling an update: %s", context.error, exc_info=context.error)

    # --- the job row -------------------------------------------------------------------------------

    async def accept(self, got: Incoming, job: Payload, *, metered: bool = True) -> bool:
        """Within the sender's rate (or not `metered`): record and schedule `job`, answering this message."""
        if metered and not await self.within_rate(got.user.id, got.chat.id):
            return False
        return await self.edge.jobs.accept(
            chat_id=got.chat.id, source=f"message:{got.message.message_id}", job=job, message_id=got.message.message_id
        )

    async def within_rate(self, user_id: int, chat_id: int) -> bool:
        """Over the per-user (or, in groups, per-chat) rate: one "slow down" per burst, nothing processed."""
        if self.edge.services.access.is_admin(user_id):
            return True
        in_group = chat_id != user_id
        limiter, key = (self.chat_limits, chat_id) if in_group else (self.user_limits, user_id)
        return await self._within(limiter, key, Limit(limiter.rate, texts.slow_down), chat_id=chat_id)

    async def within_rate_quietly(self, chat_id: int) -> bool:
        """Background work a group's message would start counts against the chat's rate like a request,
        but over it nothing is said: the work is simply not done."""
        return (await self.chat_limits.hit(chat_id)).wait is None

    async def _within(self, limiter: RateLimiter, key: int, limit: Limit, *, chat_id: int | None = None) -> bool:
        verdict = await limiter.hit(key)
        if verdict.wait is None:
            return True
        log.info("chat=%s key=%s over the rate limit (%s)", chat_id or key, key, limiter.rate)
        if verdict.warn:
            await tell(self.edge.bot, chat_id or key, limit.notice(verdict.wait))
        return False


def incoming(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Incoming | None:
    message, chat, user = update.effective_message, update.effective_chat, update.effective_user
    if message is None or chat is None or user is None:
        return None
    return Incoming(message=message, user=user, chat=chat, args=tuple(context.args or ()))


async def _answer(query: CallbackQuery, alert: str | None = None) -> None:
    try:
        await query.answer(alert, show_alert=alert is not None)
    except TelegramError as exc:
        log.info("could not answer callback query: %s", exc)


async def _quietly(sending: Awaitable[object]) -> None:
    try:
        await sending
    except TelegramError as exc:
        log.info("could not tell a refused user: %s", exc)
