"""Spoken summaries of what a group said. Knows nothing of Telegram: it gets logged messages, gives a Reply.

A large span is summarised in chunks that fit a token budget (each by a cheap text model), then the
chunk notes are combined and spoken by the audio model in one call (map-reduce), so a busy day works.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from parley.audio import AudioConverter
from parley.engine import Reply
from parley.errors import AudioError
from parley.model import ModelClient
from storage import Usage
from storage.groups import GroupMessage

Progress = Callable[[int, int], Awaitable[None]]
"""Called with (chunks done, chunks in all) as the map step advances."""
Recorder = Callable[[str, Usage], Awaitable[object]]
"""Told each model call's usage as it happens (the usage ledger), with its purpose."""

MAP_PROMPT = (
    "You take notes on part of a group chat log for a later spoken summary. Each line is "
    "'[time] Name: message'. Write compact notes in the chat's main language: who said what (by name), "
    "decisions made, open questions, and anything someone was asked to do. No preamble."
)
REDUCE_PROMPT = (
    "You are Parley, summarising a group chat aloud for its members. Speak in the chat's main language, "
    "warmly and briefly (under about a minute): the main topics, who said what (by name), decisions made, "
    "and open questions still waiting for an answer. Do not read out timestamps or list every message."
)


def estimate_tokens(text: str) -> int:
    """About four characters a token for chat text: close enough to size chunks, and needs no tokenizer."""
    return len(text) // 4 + 1


def log_line(message: GroupMessage, zone: ZoneInfo) -> str:
    at = datetime.fromtimestamp(message.sent_at, zone).strftime("%H:%M")
    what = message.text or f"[{message.kind.replace('_', ' ')}]"
    if message.kind in ("voice", "audio", "video_note") and message.text:
        what = f"(voice) {message.text}"
    origin = f" (forwarded from {message.forwarded_from})" if message.forwarded_from else ""
    return f"[{at}] {message.author}{origin}: {what}"


def chunk_lines(lines: list[str], budget: int) -> list[str]:
    """Consecutive lines grouped so each chunk stays within `budget` estimated tokens."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        cost = estimate_tokens(line)
        if current and size + cost > budget:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line[: budget * 4])  # one giant message must not exceed a chunk on its own
        size += min(cost, budget)
    if current:
        chunks.append("\n".join(current))
    return chunks


def span_header(messages: list[GroupMessage], zone: ZoneInfo) -> str:
    start = datetime.fromtimestamp(messages[0].sent_at, zone)
    end = datetime.fromtimestamp(messages[-1].sent_at, zone)
    people = len({m.user_id or m.author for m in messages})
    same_day = start.date() == end.date()
    span = f"{start:%d %b %H:%M}–{end:%H:%M}" if same_day else f"{start:%d %b %H:%M} – {end:%d %b %H:%M}"
    noun = "message" if len(messages) == 1 else "messages"
    who = "person" if people == 1 else "people"
    return f"Summary of {len(messages):,} {noun} from {people} {who}, {span} ({zone.key})"


@dataclass(frozen=True, slots=True)
class Summary:
    reply: Reply
    chunks: int


class GroupSummarizer:
    def __init__(self, *, model: ModelClient, audio: AudioConverter, summary_model: str, chunk_tokens: int) -> None:
        self.model = model
        self.audio = audio
        self.summary_model = summary_model
        self.chunk_tokens = chunk_tokens

    def chunks(self, messages: list[GroupMessage], zone: ZoneInfo) -> list[str]:
        return chunk_lines([log_line(m, zone) for m in messages], self.chunk_tokens)

    def estimate_tokens(self, messages: list[GroupMessage]) -> int:
        return sum(estimate_tokens(log_line(m, ZoneInfo("UTC"))) for m in messages)

    async def summarize(
        self,
        messages: list[GroupMessage],
        *,
        voice: str,
        timezone: str,
        progress: Progress | None = None,
        record: Recorder | None = None,
    ) -> Summary:
        zone = ZoneInfo(timezone)
        started = time.perf_counter()
        chunks = self.chunks(messages, zone)
        if len(chunks) == 1:
            material = chunks[0]
        else:
            notes: list[str] = []
            for index, chunk in enumerate(chunks, start=1):
                text, usage = await self.model.text(
                    [{"role": "system", "content": MAP_PROMPT}, {"role": "user", "content": chunk}],
                    model=self.summary_model,
                )
                notes.append(f"Part {index}:\n{text}")
                if record is not None:
                    await record("summary", usage)
                if progress is not None:
                    await progress(index, len(chunks))
            material = "Notes on consecutive parts of the chat:\n\n" + "\n\n".join(notes)
        spoken = await self.model.reply(
            [{"role": "system", "content": REDUCE_PROMPT}, {"role": "user", "content": material}], voice=voice
        )
        if record is not None:
            await record("summary", spoken.usage)
        voice_ogg: bytes | None = None
        if spoken.audio is not None:
            try:
                voice_ogg = await self.audio.to_voice_ogg(spoken.audio)
            except AudioError:
                voice_ogg = None
        header = span_header(messages, zone)
        reply = Reply(
            text=f"{header}\n\n{spoken.text}",
            voice_ogg=voice_ogg,
            voice_seconds=spoken.audio.duration if spoken.audio and voice_ogg else 0.0,
            timings={"summary": time.perf_counter() - started},
        )
        return Summary(reply=reply, chunks=len(chunks))
