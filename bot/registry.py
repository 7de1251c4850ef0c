"""Everything Parley answers, on one screen: the command table (which also makes the menus and /help), the
message kinds, the buttons, and the job each turns into. Each entry points at a plain function of a feature.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import texts
from bot.buttons import RETRY, Buttons, Press
from bot.features import admin, conversation, language, preferences, privacy, reminders, usage, voice_tools
from bot.features.groups import asking, find, importing, summary, welcome
from bot.features.groups import log as group_log
from bot.features.groups.payloads import AskSummary, Find, ImportHistory, SetDigest, Summarize, TranscribeLog
from bot.intake import Incoming, Intake, Limit, Parse
from bot.jobs import Payload, Route, routes
from bot.replies import Run
from parley.config import Settings
from parley.i18n.catalog import N_, _, using
from parley.i18n.locales import SHIPPED, SOURCE, telegram_code

log = logging.getLogger(__name__)

PRIVATE = filters.ChatType.PRIVATE & filters.UpdateType.MESSAGE
GROUP = filters.ChatType.GROUPS & filters.UpdateType.MESSAGE
ANYWHERE = filters.UpdateType.MESSAGE
AUDIO_INPUT = filters.VOICE | filters.AUDIO | filters.VIDEO_NOTE | filters.Document.AUDIO
OWN = ~filters.FORWARDED
"""Commands run only from what the sender wrote: a forwarded "/allow 777" is someone else's words, not an order."""


class CaptionCommand(filters.MessageFilter):
    """A caption that starts with /name or /name@this_bot: "/transcribe@other_bot" is for the other bot."""

    def __init__(self, name: str) -> None:
        super().__init__(name=f"CaptionCommand({name})")
        self._pattern = re.compile(rf"^/{re.escape(name)}(?:@(\w+))?(?:\s|$)")

    def filter(self, message: Message) -> bool:
        match = self._pattern.match(message.caption or "")
        if match is None:
            return False
        target, ours = match.group(1), message.get_bot().username
        return target is None or (ours is not None and target.lower() == ours.lower())


class Where(Enum):
    """The chats a command works in; a private-only command sent in a group is answered "in private"."""

    ANYWHERE = ANYWHERE
    PRIVATE = PRIVATE
    GROUP = GROUP


# --- fixed answers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say(Payload, kind="say"):
    what: str  # "help" or a key of texts.CANNED


def saying(what: str) -> Parse:
    return lambda _got: Say(what=what)


async def say(job: Say, run: Run) -> bool:
    return await run.say(answer(job.what))


@dataclass(frozen=True, slots=True)
class Help(Payload, kind="help"):
    user_id: int
    group: bool


def help_(got: Incoming) -> Help:
    return Help(user_id=got.user.id, group=in_group(got))


async def show_help(job: Help, run: Run) -> bool:
    """/help for where it was asked: a group's, or a private chat's (with the admin section for admins)."""
    if job.group:
        return await run.say(help_text(Menu.GROUP_CHATS), reply_to=run.message_id)
    return await run.say(help_text(Menu.ADMINS if run.services.access.is_admin(job.user_id) else Menu.PRIVATE_CHATS))


def start(got: Incoming) -> Payload | None:
    """/start: a group's greeting in groups; in private, "/start voice" (an "Open private chat" link from a
    group) runs that command, as if it had been sent."""
    if in_group(got):
        return Say(what="group_start")
    command = BY_NAME.get(got.args[0].lower()) if got.args else None
    if command is not None and command.name != "start" and command.where is not Where.GROUP:
        return command.handle(replace(got, args=(), named=command.name))
    return Say(what="start")


@dataclass(frozen=True, slots=True)
class InPrivate(Payload, kind="in_private"):
    command: str


def in_private(got: Incoming) -> InPrivate:
    return InPrivate(command=got.command)


async def point_to_private(job: InPrivate, run: Run) -> bool:
    """A private-only command in a group: a button that opens the private chat at that command (a t.me deep
    link: Start there sends "/start COMMAND", which runs it)."""
    link = f"https://t.me/{run.bot.username}?start={job.command}"
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton(texts.OPEN_PRIVATE_CHAT, url=link)]])
    return await run.say(texts.PRIVATE_ONLY_BUTTON, reply_to=run.message_id, keyboard=keyboard)


def in_group(got: Incoming) -> bool:
    return got.chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


# --- the command table -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    handle: Parse
    where: Where
    menu: str  # its line in the command menu
    admins: bool = False  # in admins' menus only (the job checks who asked)
    help: str | None = None  # its line in /help
    aliases: tuple[str, ...] = ()
    caption: bool = False  # also as the caption of the audio it is about
    limit: Callable[[Settings], Limit] | None = None  # a rate of its own, beside the sender's
    free: bool = False  # cheap and read-only: answered even to someone over the rate (who may want /help)


COMMANDS: tuple[Command, ...] = (
    Command("start", start, Where.ANYWHERE, N_("What Parley does"), free=True),
    Command("help", help_, Where.ANYWHERE, N_("How to use Parley"), help=N_("/help – this message"), free=True),
    Command("voice", preferences.voice, Where.ANYWHERE, N_("Choose the voice Parley speaks with"),
            help=N_("/voice – choose the voice I speak with")),
    Command("reset", conversation.reset, Where.ANYWHERE, N_("Start a fresh conversation"),
            help=N_("/reset, /new – start a fresh conversation (I stop using what we said before)"),
            aliases=("new",)),
    Command("forget", privacy.forget, Where.PRIVATE, N_("Delete everything stored about you"),
            help=N_("/forget – delete everything I have stored about you")),
    Command("export", privacy.export, Where.PRIVATE, N_("Get everything stored about you as a file"),
            help=N_("/export – get everything I have stored about you, as a file")),
    Command("retry", conversation.retry, Where.ANYWHERE, N_("Another answer to your last message"),
            help=N_("/retry – another answer to your last message, in place of the one you got")),
    Command("transcribe", voice_tools.transcribe, Where.ANYWHERE, N_("Reply to audio: what was said, word for word"),
            help=N_("/transcribe, /tone – reply to a voice message or audio file: its words, or how it was said"),
            caption=True),
    Command("tone", voice_tools.tone, Where.ANYWHERE, N_("Reply to audio: how it was said (sentiment, emotions)"),
            aliases=("sentiment",), caption=True),
    Command("speak", voice_tools.speak, Where.ANYWHERE, N_("Read text aloud in your voice"),
            help=N_("/speak TEXT – I read text aloud (or reply /speak to a message or a document)"), caption=True),
    Command("language", language.language, Where.ANYWHERE, N_("Choose the language I speak"),
            help=N_("/language – choose the language I speak (in a group: its admins, for everyone)")),
    Command("settings", preferences.settings, Where.PRIVATE, N_("All your settings on one screen"),
            help=N_("/settings – all your settings on one screen"), free=True),
    Command("persona", preferences.persona, Where.ANYWHERE, N_("Who I am: assistant, language partner, coach…"),
            help=N_("/persona – who I am: everyday assistant, language partner, interview coach, storyteller, or "
                    "your own instructions (in a group: its admins choose)")),
    Command("mode", preferences.mode, Where.PRIVATE, N_("Reply with voice, text or both"),
            help=N_("/mode voice|text|both – how I reply")),
    Command("summary", summary.summary, Where.GROUP, N_("In a group: a spoken summary of what was said"),
            limit=lambda settings: Limit(settings.groups.summary_rate, texts.summary_limited)),
    Command("digest", summary.digest, Where.GROUP, N_("In a group: a daily or weekly spoken digest (admins)"),
            help=N_("/summary [week|yesterday|3 hours…], /digest – in a group: what was said, spoken, with links; "
                    "reply to a summary to ask about it")),
    Command("find", find.find, Where.GROUP, N_("In a group: search what was said"),
            help=N_("/find WORDS – in a group: search what was said, newest first")),
    Command("import", importing.import_history, Where.ANYWHERE, N_("Import a group's history from an export (admins)"),
            help=N_("/import – send a Telegram Desktop chat export (JSON) with /import as caption: history from "
                    "before I joined")),
    Command("model", preferences.model, Where.PRIVATE, N_("Choose the voice model"),
            help=N_("/model – choose the voice model (the mini one is cheaper)")),
    Command("reminders", reminders.reminders, Where.ANYWHERE, N_("Your reminders, with buttons to cancel them"),
            help=N_("/reminders – your reminders here (ask me in conversation to set one)")),
    Command("timezone", reminders.timezone, Where.ANYWHERE, N_("Set your timezone (for reminders)"),
            help=N_("/timezone CITY – your timezone, for reminders (for example /timezone Berlin)")),
    Command("usage", usage.usage, Where.PRIVATE, N_("Your tokens and cost"),
            help=N_("/usage – what our conversations have cost"), free=True),
    Command("allow", admin.change_access, Where.ANYWHERE, N_("Allow a user id, @username or group"), admins=True,
            help=N_("/allow ID, /deny ID – let someone use me (a user id, @username or group id), or stop them; "
                    "/allow alone in a group switches me on there")),
    Command("deny", admin.change_access, Where.ANYWHERE, N_("Deny a user id, @username or group"), admins=True),
    Command("users", admin.users, Where.PRIVATE, N_("Who is allowed, last seen, usage"), admins=True,
            help=N_("/users – who may use me, who has, and who was turned away lately")),
    Command("stats", admin.stats, Where.PRIVATE, N_("Spend: totals, top users, last 30 days"), admins=True,
            help=N_("/stats – what I have cost: totals, top users, the last 30 days")),
)  # fmt: skip

BY_NAME: dict[str, Command] = {name: c for c in COMMANDS for name in (c.name, *c.aliases)}


class Menu(Enum):
    """The menus the table can make: everyone's (every command but the admins'), per kind of chat, and
    admins' (their private chat: the private chats' menu and the admin commands)."""

    EVERYONE = "everyone"
    PRIVATE_CHATS = "private chats"
    GROUP_CHATS = "group chats"
    ADMINS = "admins"


def _works_in(which: Menu, c: Command) -> bool:
    """Whether `c` belongs on `which` menu (and in its /help): only what works there."""
    if c.admins:
        return which is Menu.ADMINS
    if which in (Menu.PRIVATE_CHATS, Menu.ADMINS):
        return c.where is not Where.GROUP
    if which is Menu.GROUP_CHATS:
        return c.where is not Where.PRIVATE
    return True


def help_text(which: Menu = Menu.PRIVATE_CHATS, commands: tuple[Command, ...] = COMMANDS) -> str:
    """/help in the current language, for where it is asked: the table's help lines of what works there, in
    its order, /help's own line last; a group's has how to talk to the bot there, a private chat's points to
    groups, and admins' has their commands in a section of its own."""
    shown = [(c.name, _(c.help)) for c in commands if c.help and not c.admins and _works_in(which, c)]
    lines = [line for name, line in shown if name != "help"] + [line for name, line in shown if name == "help"]
    if which is Menu.GROUP_CHATS:
        return texts.GROUP_HELP_INTRO + "\n\n" + "\n".join(lines)
    text = texts.HELP_INTRO + "\n\n" + "\n".join(lines) + "\n\n" + texts.HELP_IN_GROUPS
    if which is Menu.ADMINS:
        admins = [_(c.help) for c in commands if c.admins and c.help]
        text += "\n\n" + texts.HELP_ADMINS + "\n" + "\n".join(admins)
    return text


def answer(what: str) -> str:
    """A fixed answer by its key, in the current language."""
    return help_text() if what == "help" else texts.canned(what)


def menu(which: Menu, commands: tuple[Command, ...] = COMMANDS) -> list[BotCommand]:
    """One of the command menus, in the current language."""
    return [BotCommand(c.name, _(c.menu)) for c in commands if _works_in(which, c)]


def published_languages(default: str) -> list[tuple[str, str | None]]:
    """(locale, Bot API language_code) pairs a menu or description is published for: the default language for
    everyone whose app language Parley does not ship (no code), then every shipped language under its code."""
    return [(default, None), *((locale, telegram_code(locale)) for locale in SHIPPED)]


SCOPES: tuple[tuple[BotCommandScope, Menu], ...] = (
    (BotCommandScopeAllPrivateChats(), Menu.PRIVATE_CHATS),
    (BotCommandScopeAllGroupChats(), Menu.GROUP_CHATS),
    (BotCommandScopeDefault(), Menu.PRIVATE_CHATS),  # what an app that knows no scope shows
)
"""Telegram's scopes for everyone, and the menu each shows."""


class Menus:
    """The command menus (private chats, group chats; admins' in their own chat) and the bot's descriptions,
    in every shipped language (Telegram picks the list in the language of each person's app).

    An admin's menu is a chat scope, which Telegram refuses for someone who has not started the bot: it is
    set at start-up for the admins who have, and for each of the others when they first write."""

    def __init__(self, admins: frozenset[int], default: str = SOURCE) -> None:
        self.default = default
        self.waiting = set(admins)  # admins whose menu is not set yet

    async def publish(self, bot: Bot) -> None:
        for locale, code in published_languages(self.default):
            with using(locale):
                for scope, which in SCOPES:
                    await bot.set_my_commands(menu(which), scope=scope, language_code=code)
                await bot.set_my_description(texts.DESCRIPTION, language_code=code)
                await bot.set_my_short_description(texts.SHORT_DESCRIPTION, language_code=code)
        for admin_id in sorted(self.waiting):
            await self.publish_admin(bot, admin_id)

    async def publish_admin(self, bot: Bot, admin_id: int) -> bool:
        scope = BotCommandScopeChat(admin_id)
        for locale, code in published_languages(self.default):
            with using(locale):
                try:
                    await bot.set_my_commands(menu(Menu.ADMINS), scope=scope, language_code=code)
                except BadRequest as exc:
                    log.info("admin %s: command menu not set yet (%s)", admin_id, exc.message)
                    return False
        self.waiting.discard(admin_id)
        return True

    async def seen(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Before the gate, for every update: an admin still without their menu writes in private."""
        user, chat = update.effective_user, update.effective_chat
        if user is not None and chat is not None and chat.type == ChatType.PRIVATE and user.id in self.waiting:
            await self.publish_admin(context.bot, user.id)


# --- the jobs they become ----------------------------------------------------------------------------

BUTTONS = Buttons(
    RETRY,
    *conversation.BUTTONS,
    *admin.BUTTONS,
    *preferences.BUTTONS,
    *privacy.BUTTONS,
    *language.BUTTONS,
    *reminders.BUTTONS,
    *find.BUTTONS,
)

ROUTES: dict[str, Route[Any]] = routes(
    Route(Say, say),
    Route(Help, show_help),
    Route(InPrivate, point_to_private),
    Route(conversation.Converse, conversation.answer, logs_itself=True),
    Route(conversation.Reset, conversation.start_afresh),
    Route(conversation.Again, conversation.again, logs_itself=True),
    Route(preferences.ChooseVoice, preferences.choose_voice),
    Route(preferences.ChooseModel, preferences.choose_model),
    Route(preferences.ChooseMode, preferences.choose_mode),
    Route(preferences.ShowSettings, preferences.show_settings),
    Route(preferences.ChoosePersona, preferences.choose_persona),
    Route(language.ChooseLanguage, language.choose_language),
    Route(privacy.AskForget, privacy.ask_forget),
    Route(privacy.Export, privacy.send_export),
    Route(admin.ChangeAccess, admin.set_access),
    Route(admin.Users, admin.list_users),
    Route(admin.Stats, admin.show_stats),
    Route(usage.Usage, usage.report),
    Route(reminders.SetTimezone, reminders.set_timezone),
    Route(reminders.ListReminders, reminders.list_reminders),
    Route(Summarize, summary.summarize),
    Route(SetDigest, summary.set_digest),
    Route(TranscribeLog, group_log.transcribe, background=True),
    Route(Find, find.search),
    Route(ImportHistory, importing.run_import),
    Route(AskSummary, asking.answer_question),
    Route(voice_tools.Transcribe, voice_tools.transcript),
    Route(voice_tools.Tone, voice_tools.tone_of),
    Route(voice_tools.Speak, voice_tools.read_aloud),
    Route(Press, BUTTONS.press),
    aliases={"retry": "button"},  # rows from before every tap was a "button" job
)


# --- registration --------------------------------------------------------------------------------------


def register(app: Application, intake: Intake, settings: Settings, menus: Menus) -> None:
    """Every command, message kind and button, in the order python-telegram-bot tries them."""
    app.add_handler(TypeHandler(Update, menus.seen), group=-3)
    app.add_handler(ChatMemberHandler(intake.membership(welcome.added), ChatMemberHandler.MY_CHAT_MEMBER), group=-2)
    app.add_handler(TypeHandler(Update, intake.gate), group=-1)  # access first, for every update
    intake.when_refused(stranger=admin.tell_admins, group=welcome.not_enabled)
    for c in COMMANDS:
        limit = c.limit(settings) if c.limit else None
        handler = intake.job(c.handle, limit=limit, metered=not c.free)
        app.add_handler(CommandHandler([c.name, *c.aliases], handler, filters=c.where.value & OWN))
    for c in COMMANDS:
        for name in (c.name, *c.aliases) if c.caption else ():
            caption = CaptionCommand(name) & AUDIO_INPUT
            app.add_handler(MessageHandler(ANYWHERE & OWN & caption, intake.job(c.handle)))
    export = CaptionCommand("import") & filters.Document.ALL
    app.add_handler(MessageHandler(ANYWHERE & OWN & export, intake.job(importing.import_history)))
    private_only = [name for c in COMMANDS if c.where is Where.PRIVATE for name in (c.name, *c.aliases)]
    app.add_handler(CommandHandler(private_only, intake.job(in_private), filters=GROUP & OWN))
    group_only = [name for c in COMMANDS if c.where is Where.GROUP for name in (c.name, *c.aliases)]
    app.add_handler(CommandHandler(group_only, intake.job(saying("group_only")), filters=PRIVATE & OWN))
    app.add_handler(MessageHandler(GROUP & OWN & filters.COMMAND, intake.ignore))  # maybe another bot's
    app.add_handler(
        MessageHandler(GROUP, intake.messages(group_log.record, asking.about_summary, conversation.when_addressed))
    )
    app.add_handler(MessageHandler(filters.ChatType.GROUPS & filters.UpdateType.EDITED_MESSAGE,
                                   intake.messages(group_log.edited)))  # fmt: skip
    app.add_handler(MessageHandler(PRIVATE & OWN & filters.COMMAND, intake.job(saying("unknown_command"))))
    app.add_handler(MessageHandler(PRIVATE & (AUDIO_INPUT | filters.TEXT), intake.job(conversation.converse)))
    app.add_handler(MessageHandler(PRIVATE, intake.job(saying("unsupported"))))
    app.add_handler(CallbackQueryHandler(intake.press))
    app.add_error_handler(intake.error)
