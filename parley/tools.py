"""Voice tools: transcripts with nuance, tone analysis, reading text aloud — for recordings of any length.

Knows nothing of Telegram. A short clip goes to the model as WAV; a longer one as 16 kHz mono MP3; one
longer than a segment is cut at silences (with a little overlap), the segments are processed concurrently
(bounded), and the results are stitched back in order.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from parley.audio import AudioConverter
from parley.engine import Reply
from parley.errors import AudioError, ModelError
from parley.model import ModelClient
from parley.spend import Spend
from storage import Usage

Progress = Callable[[int, int], Awaitable[None]]
Recorder = Callable[[str, Usage], Awaitable[object]]
"""Told each model call's usage (the usage ledger), with its purpose."""
Work = Callable[[bytes, str, Recorder], Awaitable[str]]

TOOL_ANSWER_TOKENS = 500
"""What a transcript or a tone report of one segment is expected to come to, for the estimate."""

WAV_UP_TO_SECONDS = 120.0
"""Up to two minutes, WAV (lossless, under 4 MB); beyond, MP3 at about 4 KB a second."""

TRANSCRIBE_PROMPT = (
    "Transcribe this recording verbatim, in the language spoken. If more than one person speaks, start each "
    "turn on a new line with 'Speaker 1:', 'Speaker 2:' and so on, keeping the same number for the same "
    "voice. Note non-verbal sounds and long pauses in square brackets, like [laughter] or [long pause]. "
    "Output only the transcript."
)
TONE_PROMPT = (
    "Analyse the tone of this recording from how things are said (voice, pace, emphasis) as well as what is "
    "said. Give the overall sentiment with your confidence, the main emotions, and up to three short quotes "
    "that show them. Quote in the language spoken; write the emotions and the summary in {language}."
)
TONE_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "tone_report",
        "strict": True,
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["sentiment", "confidence", "emotions", "quotes", "summary"],
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "neutral", "negative"]},
                "confidence": {"type": "number"},
                "emotions": {"type": "array", "items": {"type": "string"}},
                "quotes": {"type": "array", "items": {"type": "string"}},
                "summary": {"type": "string"},
            },
        },
    },
}
SPEAK_PROMPT = (
    "Read the user's text aloud exactly as written, naturally and clearly. Do not add, answer or comment: only read it."
)
SPEAK_SUMMARY_PROMPT = (
    "Turn this text into a spoken summary of about one minute, in the text's language: the main points, "
    "plainly worded for listening. Output only the summary."
)


class Meter(Protocol):
    """The budgets, as a recording's work sees them."""

    async def admit(self, seconds: float) -> None:
        """Raise BudgetExceeded (before any call) when `seconds` of audio would not fit."""

    def segment(self, seconds: float) -> AbstractAsyncContextManager[Recorder]:
        """Hold one segment's estimate while its call runs (or raise BudgetExceeded); record its usage."""


@dataclass(frozen=True, slots=True)
class SpendMeter:
    """A Meter on the spend control, for one user's request in one chat."""

    spend: Spend
    user_id: int
    chat_id: int
    model: str

    def estimate(self, seconds: float) -> float:
        return self.spend.prices.estimate_reply(
            self.model, text_tokens=TOOL_ANSWER_TOKENS, audio_seconds=max(seconds, 1.0)
        )

    async def admit(self, seconds: float) -> None:
        await self.spend.release(await self.spend.reserve(self.user_id, self.estimate(seconds)))

    def segment(self, seconds: float) -> AbstractAsyncContextManager[Recorder]:
        return self.spend.metered(user_id=self.user_id, chat_id=self.chat_id, estimate=self.estimate(seconds))


@dataclass(frozen=True, slots=True)
class Segment:
    start: float
    seconds: float


@dataclass(frozen=True, slots=True)
class ToneReport:
    sentiment: str
    confidence: float
    emotions: list[str]
    quotes: list[str]
    summary: str


@dataclass(frozen=True, slots=True)
class Spoken:
    reply: Reply
    summarized: bool


def plan_segments(total: float, silences: list[float], *, longest: float, overlap: float = 1.0) -> list[Segment]:
    """Cut a recording into pieces no longer than `longest`, at a silence where there is one in the later
    half of the piece (else at the limit), each piece starting `overlap` seconds before the previous cut."""
    segments: list[Segment] = []
    start = 0.0
    while total - start > longest:
        limit = start + longest
        quiet = [s for s in silences if start + longest / 2 <= s <= limit]
        cut = quiet[-1] if quiet else limit
        segments.append(Segment(start, cut - start))
        start = max(cut - overlap, start + 1.0)
    segments.append(Segment(start, total - start))
    return segments


def merge_tone(reports: list[ToneReport]) -> ToneReport:
    """One report for a recording analysed in segments: the prevailing sentiment, the commonest emotions."""
    if len(reports) == 1:
        return reports[0]
    votes = Counter(r.sentiment for r in reports).most_common()
    sentiment = votes[0][0] if len(votes) == 1 or votes[0][1] > votes[1][1] else "neutral"
    emotions = [e for e, _ in Counter(e.lower() for r in reports for e in r.emotions).most_common(5)]
    return ToneReport(
        sentiment=sentiment,
        confidence=round(sum(r.confidence for r in reports if r.sentiment == sentiment) / len(reports), 2),
        emotions=emotions,
        quotes=[q for r in reports for q in r.quotes[:1]][:3],
        summary=" ".join(r.summary for r in reports if r.summary)[:600],
    )


class VoiceTools:
    def __init__(
        self,
        *,
        model: ModelClient,
        audio: AudioConverter,
        summary_model: str,
        segment_seconds: float,
        concurrency: int = 3,
    ) -> None:
        self.model = model
        self.audio = audio
        self.summary_model = summary_model
        self.segment_seconds = segment_seconds
        self._slots = asyncio.Semaphore(concurrency)

    async def _each_segment(self, source: bytes, work: Work, progress: Progress | None, meter: Meter) -> list[str]:
        """Run `work` on the recording, or on its segments concurrently; results in recording order.

        What it costs follows what is decoded, never what was declared: the whole recording's real length
        is admitted against the budgets before any model call, and each segment holds its own estimate
        while its call runs (so a budget spent meanwhile stops the segments not yet sent)."""
        seconds = await self.audio.probe_seconds(source)
        await meter.admit(seconds)
        if seconds <= WAV_UP_TO_SECONDS:
            wav = await self.audio.to_model_wav(source, max_seconds=seconds + 1.0)
            async with meter.segment(wav.duration) as record:
                return [await work(wav.data, "wav", record)]
        if seconds <= self.segment_seconds:
            clip = await self.audio.to_model_mp3(source)
            async with meter.segment(seconds) as record:
                return [await work(clip, "mp3", record)]
        segments = plan_segments(seconds, await self.audio.silences(source), longest=self.segment_seconds)
        done = 0

        async def one(segment: Segment) -> str:
            nonlocal done
            async with self._slots:
                clip = await self.audio.to_model_mp3(source, start=segment.start, seconds=segment.seconds)
                async with meter.segment(segment.seconds) as record:
                    result = await work(clip, "mp3", record)
            done += 1
            if progress is not None:
                await progress(done, len(segments))
            return result

        async with asyncio.TaskGroup() as group:  # one failure cancels the rest: no paid calls for nothing
            tasks = [group.create_task(one(s)) for s in segments]
        return [task.result() for task in tasks]

    async def transcribe(self, source: bytes, meter: Meter, progress: Progress | None = None) -> str:
        async def work(clip: bytes, fmt: str, record: Recorder) -> str:
            text, usage = await self.model.listen(TRANSCRIBE_PROMPT, clip, fmt)
            await record("transcription", usage)
            return text

        return "\n\n".join(part.strip() for part in await self._each_segment(source, work, progress, meter))

    async def tone(
        self,
        source: bytes,
        meter: Meter,
        progress: Progress | None = None,
        language: str = "the language spoken",
    ) -> ToneReport:
        """How a recording was said; its emotions and summary in `language` (the reader's, e.g. "German")."""
        prompt = TONE_PROMPT.format(language=language)

        async def work(clip: bytes, fmt: str, record: Recorder) -> str:
            text, usage = await self.model.listen(prompt, clip, fmt, response_format=TONE_SCHEMA)
            await record("tone", usage)
            return text

        return merge_tone([_tone_report(raw) for raw in await self._each_segment(source, work, progress, meter)])

    async def speak(self, text: str, *, voice: str, max_chars: int, record: Recorder | None = None) -> Spoken:
        """Read text aloud in the user's voice; a text too long to listen to is summarised first."""
        summarized = len(text) > max_chars
        if summarized:
            text, usage = await self.model.text(
                [{"role": "system", "content": SPEAK_SUMMARY_PROMPT}, {"role": "user", "content": text[:200_000]}],
                model=self.summary_model,
            )
            if record is not None:
                await record("summary", usage)
        spoken = await self.model.reply(
            [{"role": "system", "content": SPEAK_PROMPT}, {"role": "user", "content": text}], voice=voice
        )
        if record is not None:
            await record("speak", spoken.usage)
        if spoken.audio is None:
            raise ModelError("speak: the model sent no audio")
        try:
            ogg = await self.audio.to_voice_ogg(spoken.audio)
        except AudioError as exc:
            raise ModelError(f"speak: {exc}") from exc
        return Spoken(Reply(text=spoken.text, voice_ogg=ogg, voice_seconds=spoken.audio.duration), summarized)


def _tone_report(raw: str) -> ToneReport:
    try:
        data = json.loads(raw)
        return ToneReport(
            sentiment=str(data["sentiment"]).lower(),
            confidence=max(0.0, min(1.0, float(data["confidence"]))),
            emotions=[str(e) for e in data.get("emotions", [])][:6],
            quotes=[str(q) for q in data.get("quotes", [])][:3],
            summary=str(data.get("summary", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"tone: the model's answer is not the agreed JSON: {raw[:200]!r}") from exc
