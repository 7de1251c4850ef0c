"""Points that cite the messages they come from, checked before anyone sees them.

The model reads the log as numbered lines ("#123 [09:14] Anna: …") and answers with a JSON schema: a list
of points, each with the ids of its messages. Every cited id must be a message of the span it was given;
a point citing anything else is asked for again once, then dropped — never shown with a wrong link.
Knows nothing of Telegram: the edge turns citations into links.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from parley.errors import ModelError
from storage.groups import GroupMessage

MAX_POINTS = 12
MAX_SOURCES = 5

POINTS_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "cited_points",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["points"],
            "properties": {
                "points": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["text", "messages"],
                        "properties": {
                            "text": {"type": "string"},
                            "messages": {"type": "array", "items": {"type": "integer"}},
                        },
                    },
                }
            },
        },
    },
}
ANSWER_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "cited_answer",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["answer", "messages"],
            "properties": {
                "answer": {"type": "string"},
                "messages": {"type": "array", "items": {"type": "integer"}},
            },
        },
    },
}


@dataclass(frozen=True, slots=True)
class Citation:
    """One cited message: enough for the edge to link to it and name who wrote it."""

    message_id: int
    author: str
    user_id: int | None
    thread_id: int | None


@dataclass(frozen=True, slots=True)
class Point:
    text: str
    sources: tuple[Citation, ...]

    @property
    def authors(self) -> list[str]:
        return list(dict.fromkeys(c.author for c in self.sources))


@dataclass(frozen=True, slots=True)
class Proposal:
    """A point as the model proposed it, before its ids are checked."""

    text: str
    ids: tuple[int, ...]


def numbered_line(message: GroupMessage, zone: ZoneInfo) -> str:
    """'#123 [09:14] Anna (reply to #120) (forwarded from X): text' — the id is what the model cites."""
    at = datetime.fromtimestamp(message.sent_at, zone).strftime("%d %b %H:%M")
    what = message.text or f"[{message.kind.replace('_', ' ')}]"
    if message.kind in ("voice", "audio", "video_note") and message.text:
        what = f"(voice) {message.text}"
    reply = f" (reply to #{message.reply_to})" if message.reply_to and message.reply_to != message.thread_id else ""
    origin = f" (forwarded from {message.forwarded_from})" if message.forwarded_from else ""
    return f"#{message.message_id} [{at}] {message.author}{reply}{origin}: {what}"


def parse_points(content: str) -> list[Proposal]:
    """The model's JSON (POINTS_SCHEMA) as proposals; a reply that is not that shape is a model failure."""
    try:
        data = json.loads(content)
        items = data["points"]
        proposals = [
            Proposal(text=str(item["text"]).strip(), ids=tuple(int(i) for i in item["messages"])) for item in items
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"points: not the JSON asked for: {content[:200]!r}") from exc
    return [p for p in proposals if p.text]


def parse_answer(content: str) -> Proposal:
    try:
        data = json.loads(content)
        return Proposal(text=str(data["answer"]).strip(), ids=tuple(int(i) for i in data["messages"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"answer: not the JSON asked for: {content[:200]!r}") from exc


def check(
    proposals: Iterable[Proposal], span: dict[int, GroupMessage], *, require_sources: bool = True
) -> tuple[list[Point], list[Proposal]]:
    """Points whose every cited id is in `span` (and that cite at least one, when required), and the rest.

    A point citing one message outside the span is not trusted with the others: the model misread
    something, so the whole point goes back (or away)."""
    good: list[Point] = []
    bad: list[Proposal] = []
    for proposal in proposals:
        ids = tuple(dict.fromkeys(proposal.ids))
        if any(i not in span for i in ids) or (require_sources and not ids):
            bad.append(proposal)
            continue
        good.append(Point(proposal.text, tuple(_citation(span[i]) for i in ids[:MAX_SOURCES])))
    return good, bad


def correction(bad: Collection[Proposal], span: Collection[int]) -> str:
    """What to tell the model about points whose citations failed, asking for them again."""
    lines = []
    for proposal in bad:
        wrong = [f"#{i}" for i in proposal.ids if i not in span]
        why = f"cites {', '.join(wrong)}, not in the log" if wrong else "cites no message"
        lines.append(f"- {proposal.text!r} {why}")
    return (
        "Some points cite messages that are not in the log above:\n" + "\n".join(lines) + "\nGive only those "
        "points again, each citing the ids (the numbers after '#' at the start of lines) of the messages it "
        "comes from. Leave out a point no message supports."
    )


def _citation(message: GroupMessage) -> Citation:
    return Citation(message.message_id, message.author, message.user_id, message.thread_id)


def points_material(points: Iterable[Point]) -> str:
    """Points as plain lines for the voice model to speak from (who said it, no ids)."""
    return "\n".join(f"- {p.text} ({', '.join(p.authors)})" for p in points)
