"""/find WORDS: the group's log searched (full text: case and accents folded, Chinese and Japanese found by
their characters), matches newest first with who said it, when, and a link; buttons page through the rest.

A page button carries the words it searches for (Telegram keeps 64 bytes of button data), so as many words
as fit are searched — the same on every page — and the message says which."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.buttons import Button, Press
from bot.callbacks import CallbackData, CallbackDataError
from bot.features.groups.payloads import Find
from bot.intake import Incoming
from bot.memory import message_link
from bot.replies import Run
from parley.i18n import formats
from storage.fulltext import terms
from storage.groups import GroupMessage

log = logging.getLogger(__name__)

PAGE = 5
SNIPPET = 180
CONTEXT = 60
"""Characters shown before the first word found, when the match is deep in a long message."""


@dataclass(frozen=True)
class FindPage(CallbackData, prefix="find"):
    offset: int
    words: str  # last: it may hold anything


def find(got: Incoming) -> Find | None:
    return Find(words=got.argument, message_id=got.message.message_id, thread_id=got.thread_id)


def searchable(words: str) -> str:
    """The words searched for: as many (whole) as fit in a page button beside the largest offset."""
    kept: list[str] = []
    for word in words.split():
        candidate = " ".join([*kept, word])
        try:
            FindPage(10**6, candidate).pack()
        except CallbackDataError:
            break
        kept.append(word)
    return " ".join(kept)


def snippet(text: str, words: str) -> str:
    """The message around the first word found (case aside), cut to a few lines."""
    if len(text) <= SNIPPET:
        return text
    folded = text.casefold()
    starts = [folded.find(w.casefold()) for w in words.split()]
    first = min((i for i in starts if i >= 0), default=0)
    begin = max(0, first - CONTEXT) if first > CONTEXT else 0
    cut = text[begin : begin + SNIPPET].strip()
    return ("…" if begin else "") + cut + ("…" if begin + SNIPPET < len(text) else "")


def page_html(chat_id: int, words: str, found: list[GroupMessage], offset: int, zone: ZoneInfo) -> str:
    lines = [texts.found_header(words, offset + 1, offset + len(found))]
    for message in found:
        at = formats.when(datetime.fromtimestamp(message.sent_at, zone))
        link = message_link(chat_id, message.message_id, message.thread_id)
        where = f'<a href="{escape(link)}">{at}</a>' if link else at
        body = message.text or f"[{texts.message_kind(message.kind)}]"
        lines.append(f"<b>{escape(message.author)}</b>, {where}\n{escape(snippet(body, words))}")
    return "\n\n".join(lines)


def keyboard(words: str, offset: int, more: bool) -> InlineKeyboardMarkup | None:
    row = []
    if offset > 0:
        row.append(InlineKeyboardButton(texts.FIND_NEWER, callback_data=FindPage(max(0, offset - PAGE), words).pack()))
    if more:
        row.append(InlineKeyboardButton(texts.FIND_OLDER, callback_data=FindPage(offset + PAGE, words).pack()))
    return InlineKeyboardMarkup([row]) if row else None


async def search(job: Find, run: Run) -> bool:
    words = searchable(job.words)
    if not terms(words):
        return await run.say(texts.FIND_USAGE, reply_to=job.message_id, thread_id=job.thread_id)
    found, more = await run.services.storage.groups.find(run.chat_id, words, limit=PAGE)
    if not found:
        return await run.say(texts.found_nothing(words), reply_to=job.message_id, thread_id=job.thread_id)
    zone = ZoneInfo(run.services.settings.groups.timezone)
    page = page_html(run.chat_id, words, found, 0, zone)
    sent = await run.html(page, reply_to=job.message_id, thread_id=job.thread_id, keyboard=keyboard(words, 0, more))
    return sent is not None


async def page_tapped(tap: FindPage, press: Press, run: Run) -> str | None:
    """Another page in place of this one (no new message for each tap)."""
    offset = max(0, tap.offset)
    found, more = await run.services.storage.groups.find(run.chat_id, tap.words, limit=PAGE, offset=offset)
    if not found:
        return texts.found_nothing(tap.words)
    zone = ZoneInfo(run.services.settings.groups.timezone)
    page = page_html(run.chat_id, tap.words, found, offset, zone)
    await run.settle(press.message_id, page, html=True, keyboard=keyboard(tap.words, offset, more))
    return None


BUTTONS = (Button(FindPage, page_tapped),)
