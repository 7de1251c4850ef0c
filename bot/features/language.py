"""/language: the language Parley speaks with a person (in private) or in a group (set by a group admin).

A button list names each language in itself (Deutsch, Español, 日本語), so anyone finds theirs whatever the
current one is. The choice is kept across restarts and applies from the very next message: the answer to
the tap is already in the new language.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.buttons import Button, Press
from bot.callbacks import CallbackData
from bot.intake import Incoming
from bot.jobs import Payload
from bot.replies import Run
from parley.i18n.catalog import _, set_current
from parley.i18n.locales import SHIPPED, native_name, normalise, own_name

log = logging.getLogger(__name__)

PER_ROW = 3


@dataclass(frozen=True, slots=True)
class ChooseLanguage(Payload, kind="language"):
    user_id: int
    name: str = ""  # a language typed after the command ('/language de'); '' lists them


@dataclass(frozen=True, slots=True)
class LanguageChoice(CallbackData, prefix="lang"):
    locale: str


def language(got: Incoming) -> ChooseLanguage:
    return ChooseLanguage(user_id=got.user.id, name=got.argument)


def keyboard(current: str) -> InlineKeyboardMarkup:
    """Every shipped language, named in itself; the current one marked."""
    buttons = [
        InlineKeyboardButton(
            f"• {native_name(locale)}" if locale == current else native_name(locale),
            callback_data=LanguageChoice(locale).pack(),
        )
        for locale in SHIPPED
    ]
    return InlineKeyboardMarkup([buttons[i : i + PER_ROW] for i in range(0, len(buttons), PER_ROW)])


def prompt(in_group: bool) -> str:
    if in_group:
        return _("Which language should I speak in this group? Summaries and digests follow it too.")
    return _("Which language should I speak with you?")


async def choose_language(job: ChooseLanguage, run: Run) -> bool:
    in_group = run.chat_id < 0
    if in_group and not await run.by_group_admin(job.user_id):
        return await run.say(_("Only the group's admins can choose its language."), reply_to=run.message_id)
    if job.name:
        locale = normalise(job.name)
        if locale is not None:
            return await run.say(await _choose(run, job.user_id, locale), reply_to=run.message_id)
    current = await run.edge.languages.of_chat(run.chat_id)
    return await run.say(prompt(in_group), reply_to=run.message_id, keyboard=keyboard(current))


async def language_tapped(tap: LanguageChoice, press: Press, run: Run) -> str | None:
    if run.chat_id < 0 and not await run.by_group_admin(press.user_id):
        return None  # another member's tap changes nothing; the picker stays for the admins
    if tap.locale not in SHIPPED:
        return None
    return await _choose(run, press.user_id, tap.locale)


async def _choose(run: Run, user_id: int, locale: str) -> str:
    book = run.services.preferences
    if run.chat_id < 0:
        await book.choose_group_language(run.chat_id, locale)
    else:
        await book.choose_language(user_id, locale)
    set_current(locale)  # this job's own answer is the first in the new language
    log.info("chat=%s language set to %s", run.chat_id, locale)
    if run.chat_id < 0:
        return _("Done: I'll speak {language} in this group.", language=own_name(locale))
    return _("Done: I'll speak {language} with you.", language=own_name(locale))


BUTTONS = (Button(LanguageChoice, language_tapped),)
