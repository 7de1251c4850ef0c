"""Cited points on Telegram: each point with who said it (plain names — a name notifies nobody, a mention
would) and numbered links to its messages (t.me/c/… in supergroups, with the topic in forums), folded into
an expandable blockquote, in as few messages as Telegram's 4,096 characters allow. A summary or an answer
is sent as its voice (caption: the header) followed by the points, replying to the voice."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from html import escape

from telegram import Bot, InputFile, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot.memory import message_link
from bot.sender import CAPTION_LIMIT, MESSAGE_LIMIT, telegram_length
from parley.citations import Citation, Point
from parley.engine import Reply

log = logging.getLogger(__name__)

POINT_LIMIT = 1500
"""One point's own text at most: a run-on point is cut rather than split across messages."""


def citation_link(chat_id: int, citation: Citation) -> str | None:
    return message_link(chat_id, citation.message_id, citation.thread_id)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def sources(chat_id: int, cited: Sequence[Citation]) -> tuple[str, str]:
    """(HTML, the text it shows) for a point's sources: the names, then [1] [2] … linking the messages."""
    names = ", ".join(dict.fromkeys(c.author for c in cited))
    labels = [f"[{n}]" for n in range(1, len(cited) + 1)]
    links = []
    for label, citation in zip(labels, cited, strict=True):
        url = citation_link(chat_id, citation)
        links.append(f'<a href="{escape(url)}">{label}</a>' if url else label)
    return f"— {escape(names)} {' '.join(links)}", f"— {names} {' '.join(labels)}"


def point_line(chat_id: int, point: Point) -> tuple[str, int]:
    """A point as one HTML line, and its length as Telegram counts it (after the markup)."""
    text = _cut(point.text, POINT_LIMIT)
    html, shown = sources(chat_id, point.sources)
    return f"• {escape(text)} {html}", telegram_length(f"• {text} {shown}")


PAGE_LIMIT = MESSAGE_LIMIT - CAPTION_LIMIT - 1
"""Room for the caption's text at the top of the first page when no voice carries it."""


def render(points: Iterable[Point], chat_id: int, *, limit: int = PAGE_LIMIT) -> list[str]:
    """The points as HTML pages, each an expandable blockquote that Telegram's limit holds."""
    pages: list[str] = []
    lines: list[str] = []
    size = 0
    for point in points:
        line, length = point_line(chat_id, point)
        if lines and size + length + 1 > limit:
            pages.append(_quote(lines))
            lines, size = [], 0
        lines.append(line)
        size += length + 1
    if lines:
        pages.append(_quote(lines))
    return pages


def _quote(lines: list[str]) -> str:
    return "<blockquote expandable>" + "\n".join(lines) + "</blockquote>"


async def send_cited(
    bot: Bot,
    chat_id: int,
    reply: Reply,
    pages: list[str],
    *,
    caption: str,
    reply_to: int | None,
    thread_id: int | None,
) -> list[int]:
    """The voice (captioned), then the cited pages replying to it; the ids of everything sent. Without
    audio, or where the chat refuses voice messages from bots, the pages alone (the first with `caption`)."""
    sent: list[int] = []
    anchor = reply_to
    if reply.voice_ogg is not None:
        try:
            voice = await bot.send_voice(
                chat_id,
                voice=InputFile(reply.voice_ogg, filename="summary.ogg"),
                duration=max(1, math.ceil(reply.voice_seconds)),
                caption=_cut(caption, CAPTION_LIMIT),
                reply_parameters=_reply(reply_to),
                message_thread_id=thread_id or None,
            )
            sent.append(voice.message_id)
            anchor = voice.message_id
        except BadRequest as exc:
            if "voice_messages_forbidden" not in exc.message.lower():
                raise
            log.info("chat=%s refuses voice messages from bots: sending the text alone", chat_id)
    if not sent:  # the caption's words go at the top instead
        head = escape(_cut(caption, CAPTION_LIMIT))
        pages = [f"{head}\n{pages[0]}", *pages[1:]] if pages else [head]
    for page in pages:
        message = await bot.send_message(
            chat_id,
            page,
            parse_mode=ParseMode.HTML,
            reply_parameters=_reply(anchor),
            message_thread_id=thread_id or None,
            link_preview_options=_NO_PREVIEW,
        )
        sent.append(message.message_id)
    return sent


def _reply(message_id: int | None) -> ReplyParameters | None:
    return ReplyParameters(message_id=message_id, allow_sending_without_reply=True) if message_id else None


_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
