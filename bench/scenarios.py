"""The measurements. Each drives the running bot through the lab and reads the lab's own records.

Clocks: the lab runs in this process, so push times, the lab's request records (time.monotonic) and the
bot's spawn time are on one clock. "Model time" is how long the OpenAI stand-in held the chat request.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bench.process import BotProcess
from lab import FakeOpenAI, FakeTelegram, ffmpeg_exe, make_voice_ogg, ogg_opus_duration
from parley.audio import PcmFormat, wav_from_pcm

REPLY = (
    "Sure. The early train leaves at seven, so set an alarm for six and pack the night before. Bring a warm "
    "layer, because it gets cold up there in the evening, and check the weather on Friday in case the pass "
    "is closed. If it rains, the museum in town is a good plan B, and the café next to it does great soup."
)
"""A typical spoken answer: about 300 characters, 15-18 s of speech."""


def spoken_reply() -> bytes | None:
    """REPLY as real synthetic speech (espeak-ng), a 24 kHz mono WAV as the model sends; None without
    espeak-ng (the stand-in then answers with a tone, which Opus encodes about twice as fast as speech)."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        return None
    speech = subprocess.run([espeak, "--stdout", REPLY], capture_output=True, check=True).stdout
    to_pcm = ["-i", "pipe:0", "-ac", "1", "-ar", "24000", "-f", "s16le", "-acodec", "pcm_s16le", "pipe:1"]
    pcm = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *to_pcm],
        input=speech,
        capture_output=True,
        check=True,
    ).stdout
    return wav_from_pcm(pcm, PcmFormat(rate=24_000, channels=1, bits=16))


_STEP = re.compile(r"\b(download|convert|model|encode|send|total)=(\d+)ms")
TURN_LINE = "kind=voice"


@dataclass
class Lab:
    telegram: FakeTelegram
    openai: FakeOpenAI
    bot: BotProcess


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.499999))
    return ordered[min(rank, len(ordered)) - 1]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "p95": round(percentile(values, 95), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
        "n": len(values),
    }


@dataclass(frozen=True)
class Note:
    """A voice note made once, its duration known, so pushing it costs the lab nothing measurable
    (without `duration`, the stand-in decodes the note to find it: tens of milliseconds)."""

    ogg: bytes
    duration: int

    @classmethod
    def make(cls, seconds: float) -> Note:
        ogg = make_voice_ogg(seconds)
        return cls(ogg, max(1, round(ogg_opus_duration(ogg))))

    def push(self, telegram: FakeTelegram, chat_id: int, user: dict[str, Any] | int) -> int:
        return telegram.push_voice(chat_id, user, self.ogg, duration=self.duration)


async def _turns_done(lab: Lab, count: int) -> None:
    """Wait for the bot's log line of `count` voice turns; any turn that did not end well stops the bench."""
    await lab.bot.wait_log(TURN_LINE, count)
    failed = [line for line in lab.bot.log_lines() if TURN_LINE in line and "outcome=ok" not in line]
    if failed:
        raise RuntimeError(
            f"a voice turn failed, so the figures would mean nothing: {failed[0]} (see {lab.bot.log_path})"
        )


def _finished_voices(telegram: FakeTelegram, chat_ids: set[int]) -> list[Any]:
    return [c for c in telegram.calls_of("sendVoice") if c.finished and c.ok and int(c.params["chat_id"]) in chat_ids]


async def overhead(lab: Lab, seconds: float, turns: int, chat_id: int, model_latency: float) -> dict[str, Any]:
    """Bot overhead per voice turn: from the note being available to the reply delivered, minus model time.

    One person, notes one after another (each waits for the previous turn to be fully done). The model
    streams its reply over `model_latency` seconds, as the real one takes seconds to speak (its first chunk
    after a quarter of it); 0 sends the whole reply at once, so nothing of the encoding overlaps the model.
    The bot's own per-step timings (its log line) show where the rest of the time goes.
    """
    telegram, openai_api = lab.telegram, lab.openai
    openai_api.latency = model_latency
    openai_api.transcription_latency = model_latency / 2
    note = Note.make(seconds)
    user = telegram.user(chat_id, "Bench")
    overheads: list[float] = []
    steps: dict[str, list[float]] = {}
    for turn in range(turns + 1):  # the first turn warms up (lazy imports, connection pools) and is not counted
        done_before = lab.bot.count_in_log(TURN_LINE)
        chats_before = len(openai_api.chat_requests())
        voices_before = len(_finished_voices(telegram, {chat_id}))
        pushed = time.monotonic()
        note.push(telegram, chat_id, user)
        await _turns_done(lab, done_before + 1)
        sent = _finished_voices(telegram, {chat_id})[voices_before]
        chat = openai_api.chat_requests()[chats_before]
        assert sent.finished is not None and chat.finished is not None
        if turn == 0:
            continue
        overheads.append((sent.finished - pushed - (chat.finished - chat.started)) * 1000)
        line = [entry for entry in lab.bot.log_lines() if TURN_LINE in entry][-1]
        for name, ms in _STEP.findall(line):
            steps.setdefault(name, []).append(float(ms))
    openai_api.latency = openai_api.transcription_latency = 0.0
    return {
        "note_seconds": seconds,
        "model_seconds": model_latency,
        "overhead_ms": _summary(overheads),
        "bot_steps_median_ms": {name: statistics.median(values) for name, values in steps.items()},
    }


async def makespan(lab: Lab, users: int, first_chat: int, model_latency: float) -> dict[str, Any]:
    """`users` people each send a 5 s note at the same moment; the model takes `model_latency` seconds.
    Makespan: from the first note to the last reply delivered."""
    telegram, openai_api = lab.telegram, lab.openai
    openai_api.latency = model_latency
    openai_api.transcription_latency = model_latency / 2
    note = Note.make(5.0)
    chats = set(range(first_chat, first_chat + users))
    for chat_id in chats:
        telegram.user(chat_id, f"User {chat_id}")
    done_before = lab.bot.count_in_log(TURN_LINE)
    python_before, below_before = lab.bot.cpu_seconds()
    reaped_before = lab.bot.reaped_seconds()
    load = os.getloadavg()[0]
    lab.bot.reset_peak_tree()
    started = time.monotonic()
    for chat_id in sorted(chats):
        note.push(telegram, chat_id, chat_id)
    await _turns_done(lab, done_before + users)
    finished = [c.finished for c in _finished_voices(telegram, chats) if c.finished is not None]
    assert len(finished) == users, f"{len(finished)} replies for {users} users"
    seconds = max(finished) - started
    python_after, below_after = lab.bot.cpu_seconds()
    reaped_ms = (lab.bot.reaped_seconds() - reaped_before) * 1000 / users
    openai_api.latency = openai_api.transcription_latency = 0.0
    bot_ms = (python_after - python_before) * 1000 / users
    below_ms = (below_after - below_before) * 1000 / users
    cores = len(os.sched_getaffinity(0))
    floor = model_latency + users * (bot_ms + below_ms) / 1000 / cores
    pss, rss = lab.bot.peak_tree
    bot_pss, workers_pss = lab.bot.peak_split
    return {
        "users": users,
        "model_seconds": model_latency,
        "seconds": round(seconds, 2),
        "ratio": round(seconds / model_latency, 2),
        "floor_seconds": round(floor, 2),
        "floor_ratio": round(seconds / floor, 2),
        "cpu_ms_per_turn": {
            "bot": round(bot_ms, 1),
            "workers_and_children": round(below_ms, 1),
            "total": round(bot_ms + below_ms, 1),
            "ffmpeg_children": round(reaped_ms, 1),
        },
        "load_average": round(load, 2),
        "peak_tree_mb": {
            "pss": round(pss / 2**20, 1),
            "rss": round(rss / 2**20, 1),
            "bot_pss": round(bot_pss / 2**20, 1),
            "workers_pss": round(workers_pss / 2**20, 1),
        },
    }


async def prompt_tokens(lab: Lab, turns: int, chat_id: int) -> dict[str, Any]:
    """One person talks for `turns` voice turns: the prompt tokens of each model call (as the stand-in
    counts them: ~4 characters a text token, 10 tokens a second of audio, as OpenAI's audio models do)."""
    telegram, openai_api = lab.telegram, lab.openai
    note = Note.make(3.0)
    user = telegram.user(chat_id, "Talker")
    first = len(openai_api.chat_requests())
    done_before = lab.bot.count_in_log(TURN_LINE)
    for turn in range(turns):
        note.push(telegram, chat_id, user)
        await _turns_done(lab, done_before + turn + 1)
    counts = [int(r.usage["prompt_tokens"]) for r in openai_api.chat_requests()[first:] if r.usage]
    return {
        "turns": turns,
        "per_turn": counts,
        "first": counts[0],
        "median": statistics.median(counts),
        "max": max(counts),
        "last": counts[-1],
    }
