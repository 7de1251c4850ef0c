"""Decompression bombs against the real `parley run` process: the bot's whole process tree (the bot and its
codec workers) stays small, every sender gets a plain answer, and the bot carries on serving.

An 8 KB WAV whose header claims a 1 Hz sample rate holds 4,000 s of "audio": resampled to 16 kHz it is
128 MB of PCM, and an unbounded decoder spends several hundred megabytes on it. Refused before decoding,
it costs nothing.
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
from pathlib import Path

import pytest

from bot.texts import voice_too_long
from lab import FakeOpenAI, FakeTelegram, SentMessage, ffmpeg_exe, make_voice_ogg
from lab.harness import ParleyProcess, lab_env
from parley.errors import AudioError

TREE_LIMIT_MB = 300
SENDERS = 16


def wav(rate: int, channels: int, frames: int) -> bytes:
    block = channels * 2
    pcm = struct.pack(f"<{frames * channels}h", *([2000, -2000] * (frames * channels // 2)))
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def two_hours_of_flac_silence() -> bytes:
    """737 KB that decode to 2 hours (230 MB of 16 kHz PCM): longer than any conversation takes."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "lavfi"]
    command += ["-i", "anullsrc=r=8000:cl=mono", "-t", "7200", "-c:a", "flac", "-f", "flac", "pipe:1"]
    return subprocess.run(command, capture_output=True, check=True, timeout=120).stdout


BOMBS = {
    "1hz-8kb": (lambda: wav(1, 1, 4000), AudioError.user_message),
    "64-channels-at-1hz": (lambda: wav(1, 64, 64), AudioError.user_message),
    # The conversation decodes no further than its longest voice note (PARLEY_MAX_VOICE_SECONDS, 5 min).
    "two-hours-of-flac": (two_hours_of_flac_silence, voice_too_long(300)),
}


def tree_rss(root: int) -> int:
    """Resident memory of `root` and all its descendants, in bytes."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


@pytest.mark.parametrize("bomb", list(BOMBS))
async def test_many_bombs_at_once_leave_the_process_tree_small(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, bomb: str
) -> None:
    build, answer = BOMBS[bomb]
    data = build()
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_LOG_LEVEL="WARNING")
    bot = ParleyProcess(env, tmp_path)
    await bot.start()
    try:
        await telegram.wait_for(lambda: bool(telegram.calls_of("getUpdates")), timeout=60, what="the bot polling")
        assert bot.proc is not None
        chats = range(7000, 7000 + SENDERS)
        for chat in chats:
            telegram.push_voice(chat, telegram.user(chat, f"U{chat}"), data, duration=4)
        peak = 0

        def answers(chat: int) -> list[SentMessage]:
            """What the chat was told, less the "still working" notices a loaded machine may bring."""
            return [m for m in telegram.sent_to(chat) if not (m.text or "").startswith("Still working")]

        while not all(answers(chat) for chat in chats):
            peak = max(peak, tree_rss(bot.proc.pid))
            assert bot.proc.returncode is None, "the bot died"
            await asyncio.sleep(0.02)
        peak = max(peak, tree_rss(bot.proc.pid))
        for chat in chats:
            [reply] = answers(chat)
            assert (reply.kind, reply.text) == ("text", answer)
        assert peak < TREE_LIMIT_MB * 2**20, f"process tree peaked at {peak / 2**20:.0f} MB"
        assert openai_api.chat_requests() == []
        telegram.push_voice(chats[0], chats[0], make_voice_ogg(1.0), duration=1)
        await telegram.wait_for(lambda: len(answers(chats[0])) == 2, timeout=30, what="the ordinary note answered")
        assert answers(chats[0])[-1].kind == "voice"
    finally:
        bot.signal(15)
        assert await bot.wait(60) == 0, bot.text[-3000:]
