"""Spoken summaries of what a group said, with written points that cite their messages; answers to questions
about the same span. Knows nothing of Telegram: it gets logged messages, gives a Reply and cited points.

The cheap text model reads the log as numbered lines and answers with points citing message ids (a JSON
schema); the ids are checked against the span (parley/citations.py). A span larger than one chunk is read
chunk by chunk and the points merged (map-reduce), so a busy week works. The audio model then speaks from
the checked points, so what is heard is what the written points back up.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from parley.audio import AudioConverter
from parley.citations import (
    ANSWER_SCHEMA,
    MAX_POINTS,
    POINTS_SCHEMA,
    Citation,
    Point,
    Proposal,
    check,
    correction,
    numbered_line,
    parse_answer,
    parse_points,
    points_material,
)
from parley.engine import Reply
from parley.errors import AudioError, ModelError
from parley.i18n import formats
from parley.i18n.catalog import ngettext
from parley.model import ModelClient
from storage import Usage
from storage.groups import GroupMessage

log = logging.getLogger(__name__)

Progress = Callable[[int, int], Awaitable[None]]
"""Called with (chunks done, chunks in all) as the map step advances."""
Recorder = Callable[[str, Usage], Awaitable[object]]
"""Told each model call's usage as it happens (the usage ledger), with its purpose."""

CHATS_LANGUAGE = "the chat's main language"
"""What a summary is written in when no language is named."""

POINTS_PROMPT = (
    "You read part of a group chat log and note its main points for the members. Each line is "
    "'#id [date time] Name: message'. Write in {language}, at most {limit} points: topics, "
    "decisions made, open questions, and anything someone was asked to do. Each point is one or two "
    "sentences naming who said what. In 'messages' list the ids (the number after '#') of the one to five "
    "lines the point comes from; cite only ids that appear in the log."
)
MERGE_PROMPT = (
    "You get points noted from consecutive parts of one group chat, each followed by the ids of the messages "
    "it comes from, like '[#12, #15]'. Merge them into at most {limit} points for the whole span, in "
    "{language}: join points about the same topic, keep decisions and open questions, drop small "
    "talk. Each merged point lists in 'messages' the ids of the points it is made from (up to five); cite "
    "only ids shown."
)
SPEAK_PROMPT = (
    "You are Parley, summarising a group chat aloud for its members. Speak in {language}, "
    "warmly and briefly (under about a minute), from the points below: the main topics, who said what (by "
    "name), decisions made, and open questions still waiting for an answer. Do not read out timestamps or "
    "list every point word for word."
)
ANSWER_PROMPT = (
    "You answer a question about a group chat log, from the log alone. Each line is "
    "'#id [date time] Name: message'. Answer in the question's language, in a few spoken-style sentences, "
    "naming who said what; if the log does not answer it, say so. In 'messages' list the ids (the number "
    "after '#') of the lines the answer rests on; cite only ids that appear in the log."
)
READ_PROMPT = "Read the user's text aloud exactly as written, naturally and clearly. Do not add, answer or comment."


def estimate_tokens(text: str) -> int:
    """About four characters a token for chat text: close enough to size chunks, and needs no tokenizer."""
    return len(text) // 4 + 1


def chunk_messages(messages: list[GroupMessage], zone: ZoneInfo, budget: int) -> list[list[tuple[GroupMessage, str]]]:
    """Consecutive messages with their numbered lines, grouped so each chunk stays within `budget` tokens."""
    chunks: list[list[tuple[GroupMessage, str]]] = []
    current: list[tuple[GroupMessage, str]] = []
    size = 0
    for message in messages:
        line = numbered_line(message, zone)[: budget * 4]  # one giant message must not exceed a chunk alone
        cost = estimate_tokens(line)
        if current and size + cost > budget:
            chunks.append(current)
            current, size = [], 0
        current.append((message, line))
        size += cost
    if current:
        chunks.append(current)
    return chunks


def span_header(messages: list[GroupMessage], zone: ZoneInfo) -> str:
    """'Summary of 40 messages from 3 people, Dec 3, 6:00 PM–8:00 PM (Europe/Berlin)', in the current language."""
    start = datetime.fromtimestamp(messages[0].sent_at, zone)
    end = datetime.fromtimestamp(messages[-1].sent_at, zone)
    people = len({m.user_id or m.author for m in messages})
    same_day = start.date() == end.date()
    span = f"{formats.when(start)}–{formats.clock(end)}" if same_day else f"{formats.when(start)} – {formats.when(end)}"
    return ngettext(
        "Summary of {count} message from {people}, {span} ({zone})",
        "Summary of {count} messages from {people}, {span} ({zone})",
        len(messages),
        count=formats.number(len(messages)),
        people=ngettext("{count} person", "{count} people", people, count=formats.number(people)),
        span=span,
        zone=zone.key,
    )


_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def _terms(text: str) -> set[str]:
    """Words (case-folded), and pairs of CJK characters, which have no spaces between words."""
    folded = text.casefold()
    terms = {w for w in _WORD.findall(folded) if len(w) > 2 and not _CJK.search(w)}
    chars = _CJK.findall(folded)
    terms.update(a + b for a, b in itertools.pairwise(chars))
    return terms


def relevant(question: str, lines: list[tuple[GroupMessage, str]], budget: int) -> list[tuple[GroupMessage, str]]:
    """The lines most related to `question` that fit `budget` tokens, in their order; the latest when none is."""
    wanted = _terms(question)
    scored = sorted(
        range(len(lines)), key=lambda i: (len(wanted & _terms(lines[i][1])), lines[i][0].sent_at), reverse=True
    )
    keep: set[int] = set()
    size = 0
    for index in scored:
        cost = estimate_tokens(lines[index][1])
        if size + cost > budget:
            continue
        keep.add(index)
        size += cost
    return [lines[i] for i in sorted(keep)]


@dataclass(frozen=True, slots=True)
class Summary:
    reply: Reply
    chunks: int
    points: tuple[Point, ...]
    dropped: int
    """Points whose citations failed twice and were left out."""
    header: str


@dataclass(frozen=True, slots=True)
class Answer:
    reply: Reply
    text: str
    sources: tuple[Citation, ...]


async def _ignore(_purpose: str, _usage: Usage) -> None:
    return None


class GroupSummarizer:
    def __init__(self, *, model: ModelClient, audio: AudioConverter, summary_model: str, chunk_tokens: int) -> None:
        self.model = model
        self.audio = audio
        self.summary_model = summary_model
        self.chunk_tokens = chunk_tokens

    def estimate_tokens(self, messages: list[GroupMessage]) -> int:
        return sum(estimate_tokens(numbered_line(m, ZoneInfo("UTC"))) for m in messages)

    async def summarize(
        self,
        messages: list[GroupMessage],
        *,
        voice: str,
        timezone: str,
        progress: Progress | None = None,
        record: Recorder | None = None,
        language: str = CHATS_LANGUAGE,
    ) -> Summary:
        """`language` names the language the points and the spoken summary are in ("German"); by default the
        chat's own. The header is in the language of the catalogue's current locale."""
        zone = ZoneInfo(timezone)
        record = record or _ignore
        started = time.perf_counter()
        span = {m.message_id: m for m in messages}
        chunks = chunk_messages(messages, zone, self.chunk_tokens)
        points: list[Point] = []
        dropped = 0
        for index, chunk in enumerate(chunks, start=1):
            lines = "\n".join(line for _, line in chunk)
            prompt = POINTS_PROMPT.format(limit=MAX_POINTS, language=language)
            found, lost = await self._cited(prompt, lines, {m.message_id: m for m, _ in chunk}, record)
            points += found
            dropped += lost
            if progress is not None and len(chunks) > 1:
                await progress(index, len(chunks))
        if len(points) > MAX_POINTS:
            merged, lost = await self._merge(points, span, record, language)
            points, dropped = merged, dropped + lost
        if not points:
            raise ModelError("summary: no point survived the citation check")
        header = span_header(messages, zone)
        spoken = await self.model.reply(
            [
                {"role": "system", "content": SPEAK_PROMPT.format(language=language)},
                {"role": "user", "content": points_material(points)},
            ],
            voice=voice,
        )
        await record("summary", spoken.usage)
        voice_ogg, seconds = await self._voice(spoken.audio)
        if dropped:
            log.info("summary: %d points left out, their citations failed twice", dropped)
        plain = "\n".join(f"• {p.text} — {', '.join(p.authors)}" for p in points)
        reply = Reply(
            text=f"{header}\n\n{plain}",
            voice_ogg=voice_ogg,
            voice_seconds=seconds,
            timings={"summary": time.perf_counter() - started},
        )
        return Summary(reply=reply, chunks=len(chunks), points=tuple(points), dropped=dropped, header=header)

    async def answer(
        self, question: str, messages: list[GroupMessage], *, voice: str, timezone: str, record: Recorder | None = None
    ) -> Answer:
        """A question about a span (a summary's, or a search's matches), answered from it alone, with the
        messages it rests on; spoken by the audio model reading the checked answer."""
        zone = ZoneInfo(timezone)
        record = record or _ignore
        started = time.perf_counter()
        lines = relevant(question, [(m, numbered_line(m, zone)) for m in messages], self.chunk_tokens)
        span = {m.message_id: m for m, _ in lines}
        conversation: list[dict[str, Any]] = [
            {"role": "system", "content": ANSWER_PROMPT},
            {"role": "user", "content": "Log:\n" + "\n".join(line for _, line in lines) + f"\n\nQuestion: {question}"},
        ]
        content = await self._ask(conversation, ANSWER_SCHEMA, record)
        proposal = parse_answer(content)
        good, bad = check([proposal], span, require_sources=False)
        if bad:
            conversation += [
                {"role": "assistant", "content": content},
                {"role": "user", "content": correction(bad, span)},
            ]
            try:
                proposal = parse_answer(await self._ask(conversation, ANSWER_SCHEMA, record))
            except ModelError:
                proposal = Proposal(proposal.text, ())
            good, bad = check([proposal], span, require_sources=False)
            if bad:  # the answer stands; only citations that hold are shown
                good, _ = check([Proposal(proposal.text, tuple(i for i in proposal.ids if i in span))], span,
                                require_sources=False)  # fmt: skip
        [checked] = good
        spoken = await self.model.reply(
            [{"role": "system", "content": READ_PROMPT}, {"role": "user", "content": checked.text}], voice=voice
        )
        await record("summary", spoken.usage)
        voice_ogg, seconds = await self._voice(spoken.audio)
        reply = Reply(
            text=checked.text,
            voice_ogg=voice_ogg,
            voice_seconds=seconds,
            timings={"answer": time.perf_counter() - started},
        )
        return Answer(reply=reply, text=checked.text, sources=checked.sources)

    async def _ask(self, conversation: list[dict[str, Any]], schema: dict[str, Any], record: Recorder) -> str:
        content, usage = await self.model.text(conversation, model=self.summary_model, response_format=schema)
        await record("summary", usage)
        return content

    async def _cited(
        self, system: str, material: str, span: dict[int, GroupMessage], record: Recorder
    ) -> tuple[list[Point], int]:
        """Points from one request, with one more try for the points whose citations failed."""
        conversation: list[dict[str, Any]] = [
            {"role": "system", "content": system},
            {"role": "user", "content": material},
        ]
        content = await self._ask(conversation, POINTS_SCHEMA, record)
        good, bad = check(parse_points(content), span)
        if not bad:
            return good, 0
        conversation += [{"role": "assistant", "content": content}, {"role": "user", "content": correction(bad, span)}]
        try:
            again, still = check(parse_points(await self._ask(conversation, POINTS_SCHEMA, record)), span)
        except ModelError:
            return good, len(bad)
        return good + again, len(still)

    async def _merge(
        self, points: list[Point], span: dict[int, GroupMessage], record: Recorder, language: str
    ) -> tuple[list[Point], int]:
        """Many chunks' points merged into a few; a merged point may cite only what the points it joins cited."""
        cited = {c.message_id: span[c.message_id] for p in points for c in p.sources}
        material = "\n".join(f"- {p.text} [{', '.join(f'#{c.message_id}' for c in p.sources)}]" for p in points)
        prompt = MERGE_PROMPT.format(limit=MAX_POINTS, language=language)
        merged, lost = await self._cited(prompt, material, cited, record)
        if not merged:  # nothing merged held up: the chunks' own points did, so the first of them stand
            return points[:MAX_POINTS], lost
        return merged[:MAX_POINTS], lost

    async def _voice(self, audio: Any) -> tuple[bytes | None, float]:
        if audio is None:
            return None, 0.0
        try:
            return await self.audio.to_voice_ogg(audio), audio.duration
        except AudioError:
            return None, 0.0
