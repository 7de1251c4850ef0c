"""Nothing lost: hostile input end to end, against the real bot running on the lab.

A corpus made at test time (broken, lying, exotic and plain-hostile voice notes; text that would break a
parse mode, unicode, huge and blank text) goes through the real application. Each input gets one clear,
exact reply (or is answered normally), no model call is made for audio that cannot be read, the next
ordinary message in the same chat is still answered, and no ffmpeg process or temp file is left behind.

Temp files: tempfile.gettempdir() (and TMPDIR, which ffmpeg children inherit) is pointed at an empty
private directory for each test, so "no new files" is exact even while other processes write to /tmp.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import struct
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram, SentMessage
from lab.audio import ffmpeg_exe, make_mp3, make_voice_ogg
from parley.errors import AudioError, EmptyMessage

CHAT = 4242
STILL_THERE = "are you still there?"
EMPTY_TURN = EmptyMessage.user_message
"""What the engine says to a turn with nothing in it (a literal in parley/engine.py: no constant exists)."""


# ---------------------------------------------------------------------------------------------------------
# leak guards
# ---------------------------------------------------------------------------------------------------------


def ffmpeg_children() -> dict[int, str]:
    """Processes whose parent is this test process and whose name contains "ffmpeg" (zombies included)."""
    me = os.getpid()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if int(ppid) == me and "ffmpeg" in comm:
            found[int(entry)] = f"pid {entry} {comm!r} state {state}"
    return found


@dataclass
class LeakGuard:
    tmp: Path
    before: set[int]
    """ffmpeg children that already existed when the test started: not this test's to answer for."""

    def new_ffmpeg(self) -> list[str]:
        return [desc for pid, desc in ffmpeg_children().items() if pid not in self.before]

    def leftovers(self) -> list[str]:
        return sorted(str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*"))

    async def check(self) -> None:
        """No ffmpeg still running or unreaped, and nothing new in the temp dir."""
        for _ in range(50):  # up to a second to be reaped after the last reply, not to finish any work
            if not self.new_ffmpeg():
                break
            await asyncio.sleep(0.02)
        assert self.new_ffmpeg() == [], "ffmpeg processes left behind"
        assert tempfile.gettempdir() == str(self.tmp), "something re-pointed the temp dir"
        assert self.leftovers() == [], "temp files left behind"


@pytest.fixture(autouse=True)
async def guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LeakGuard]:
    """An empty private temp dir for the test (set up before the bot starts, checked after it stopped)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    leak_guard = LeakGuard(tmp, set(ffmpeg_children()))
    yield leak_guard
    await leak_guard.check()


async def test_the_leak_guards_see_what_they_look_for(guard: LeakGuard) -> None:
    """The guards themselves can fail: a live ffmpeg child and a stray temp file are both noticed."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(), "-nostdin", "-f", "s16le", "-i", "pipe:0", "-f", "null", "-", stdin=asyncio.subprocess.PIPE
    )
    try:
        assert any(f"pid {proc.pid} " in line for line in guard.new_ffmpeg())
    finally:
        proc.kill()
        await proc.wait()
    assert guard.new_ffmpeg() == []
    with tempfile.NamedTemporaryFile(delete=False) as stray:
        pass
    with pytest.raises(AssertionError, match="temp files left behind"):
        await guard.check()
    os.unlink(stray.name)


# ---------------------------------------------------------------------------------------------------------
# the corpus, made at test time
# ---------------------------------------------------------------------------------------------------------


def _ffmpeg(*args: str) -> bytes:
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout, proc.stderr.decode(errors="replace")
    return proc.stdout


def pcm_wav(seconds: float, *, rate: int, channels: int) -> bytes:
    """A 16-bit PCM WAV (exact sizes) holding a square wave in every channel."""
    frames = round(seconds * rate)
    period = max(2, rate // 440)
    frame = [(3000 if (i % period) < period // 2 else -3000) for i in range(period)]
    samples = [frame[i % period] for i in range(frames) for _ in range(channels)]
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    block = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


@cache
def ogg(seconds: float) -> bytes:
    return make_voice_ogg(seconds)


def _zero_second_note() -> bytes:
    """An OGG/Opus note with its headers and not a single audio packet."""
    return _ffmpeg(
        "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=1",
        "-t", "0", "-ac", "1", "-c:a", "libopus", "-f", "ogg", "pipe:1",
    )  # fmt: skip


def _opus_8_channels() -> bytes:
    return _ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1.5",
        "-ac", "8", "-c:a", "libopus", "-mapping_family", "1", "-b:a", "96k", "-f", "ogg", "pipe:1",
    )  # fmt: skip


def _corrupt_opus_head() -> bytes:
    note = bytearray(ogg(2.0))
    at = note.index(b"OpusHead")
    note[at : at + 19] = b"\xa5" * 19  # magic, version, channels, pre-skip, rate, gain, mapping
    return bytes(note)


def _wav_header_then_text() -> bytes:
    text = b"Dear bot, this file says it is a WAV but it is a letter. " * 40
    return b"RIFF" + struct.pack("<I", 4 + len(text)) + b"WAVE" + text


def _sample_rate_bomb() -> bytes:
    """8 KB of WAV claiming a 1 Hz sample rate: 4,000 s of audio, 128 MB once decoded at 16 kHz."""
    pcm = struct.pack("<4000h", *([2000, -2000] * 2000))
    fmt = struct.pack("<HHIIHH", 1, 1, 1, 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _playlist_to_local_file(kind: str) -> Callable[[Path], bytes]:
    """A "voice note" that is a playlist naming a real local audio file: it must never be read."""

    def build(where: Path) -> bytes:
        target = where / "secret.wav"
        target.write_bytes(pcm_wav(3.0, rate=16000, channels=1))
        if kind == "hls":
            return f"#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nfile://{target}\n#EXT-X-ENDLIST\n".encode()
        return f"ffconcat version 1.0\nfile '{target}'\n".encode()

    return build


_RANDOM = random.Random(20240601)
RANDOM_BYTES = _RANDOM.randbytes(20_000)
OGG_MAGIC_THEN_RANDOM = b"OggS" + _RANDOM.randbytes(5_000)
TEXT_AS_WAV = b"This is not a WAV file, it is plain text.\n" * 60

UNREADABLE: dict[str, tuple[Callable[[Path], bytes], int, str]] = {
    # id: (build(tmp_path) -> bytes, duration the update declares, the exact answer)
    "zero-bytes": (lambda _: b"", 3, AudioError.user_message),
    "zero-second-note": (lambda _: _zero_second_note(), 0, AudioError.user_message),
    "50ms-note": (lambda _: make_voice_ogg(0.05), 0, AudioError.user_message),
    "ogg-truncated-in-its-headers": (lambda _: ogg(2.0)[:100], 2, AudioError.user_message),
    "ogg-with-corrupt-opus-head": (lambda _: _corrupt_opus_head(), 2, AudioError.user_message),
    "random-bytes-as-audio/ogg": (lambda _: RANDOM_BYTES, 5, AudioError.user_message),
    "ogg-magic-then-random": (lambda _: OGG_MAGIC_THEN_RANDOM, 5, AudioError.user_message),
    "wav-that-is-text": (lambda _: TEXT_AS_WAV, 2, AudioError.user_message),
    "riff-wave-header-then-text": (lambda _: _wav_header_then_text(), 2, AudioError.user_message),
    "hls-playlist-naming-a-local-file": (_playlist_to_local_file("hls"), 3, AudioError.user_message),
    "ffconcat-naming-a-local-file": (_playlist_to_local_file("concat"), 3, AudioError.user_message),
    "1hz-sample-rate-bomb": (lambda _: _sample_rate_bomb(), 4, AudioError.user_message),
}

READABLE: dict[str, tuple[Callable[[], bytes], int, float]] = {
    # id: (build() -> bytes, duration the update declares, seconds of audio really in it)
    "declares-300s-holds-1s": (lambda: ogg(1.0), 300, 1.0),
    "declares-1s-holds-12s": (lambda: ogg(12.0), 1, 12.0),
    "declares-0s-holds-2s": (lambda: ogg(2.0), 0, 2.0),
    "wav-at-384khz": (lambda: pcm_wav(1.0, rate=384_000, channels=1), 1, 1.0),
    "wav-with-8-channels": (lambda: pcm_wav(1.0, rate=16_000, channels=8), 1, 1.0),
    "wav-with-32-channels": (lambda: pcm_wav(1.0, rate=16_000, channels=32), 1, 1.0),
    "opus-with-8-channels": (_opus_8_channels, 2, 1.5),
    "mp3-sent-as-a-voice-note": (lambda: make_mp3(1.5), 2, 1.5),
}


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------


async def still_serving(telegram: FakeTelegram, user: dict, already: int) -> None:
    """After a hostile input, an ordinary message in the same chat is answered as usual."""
    telegram.push_text(CHAT, user, STILL_THERE)
    sent = await telegram.wait_sent(CHAT, count=already + 1)
    assert len(sent) == already + 1, telegram.describe()
    assert sent[-1].kind == "voice" and sent[-1].caption == f"You said: {STILL_THERE}"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def plain(message: SentMessage) -> None:
    """Sent without any parse mode and with no formatting entities: the text is shown exactly as is."""
    assert message.parse_mode is None
    assert message.entities == []


# ---------------------------------------------------------------------------------------------------------
# audio
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(UNREADABLE), ids=list(UNREADABLE))
async def test_unreadable_voice_gets_one_exact_answer_and_no_model_call(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, tmp_path: Path, case: str
) -> None:
    build, declared, expected = UNREADABLE[case]
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, build(tmp_path), duration=declared)
    [answer] = await telegram.wait_sent(CHAT)
    assert (answer.kind, answer.text) == ("text", expected)
    assert answer.reply_to_message_id == note
    plain(answer)
    assert openai_api.chat_requests() == [] and openai_api.transcription_requests() == []
    await guard.check()
    await still_serving(telegram, ann, already=1)
    await guard.check()


@pytest.mark.parametrize("case", list(READABLE), ids=list(READABLE))
async def test_odd_but_readable_voice_is_answered_from_what_it_really_holds(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, case: str
) -> None:
    """Whatever the update claims, the model hears the audio the file really holds (as 16 kHz mono WAV)."""
    build, declared, seconds = READABLE[case]
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, build(), duration=declared)
    [answer] = await telegram.wait_sent(CHAT)
    [request] = openai_api.chat_requests()
    [heard] = request.audio_input_seconds
    assert heard == pytest.approx(seconds, abs=0.1)
    assert answer.kind == "voice" and answer.reply_to_message_id == note
    assert answer.caption == f"I heard {heard:.1f} seconds of audio."
    [info] = request.audio_inputs
    assert (info.rate, info.channels, info.bits) == (16_000, 1, 16)
    await guard.check()
    await still_serving(telegram, ann, already=1)


async def test_voice_note_cut_in_half_is_answered_from_the_half_that_arrived(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard
) -> None:
    whole = ogg(2.0)
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, whole[: len(whole) // 2], duration=2)
    [answer] = await telegram.wait_sent(CHAT)
    [request] = openai_api.chat_requests()
    [heard] = request.audio_input_seconds
    assert 0.1 <= heard < 1.9
    assert answer.kind == "voice" and answer.caption == f"I heard {heard:.1f} seconds of audio."
    await still_serving(telegram, ann, already=1)


@pytest.mark.parametrize(
    ("data", "fields"),
    [
        (RANDOM_BYTES, {"audio": {"duration": 5, "mime_type": "audio/mpeg", "file_name": "song.mp3"}}),
        (RANDOM_BYTES, {"document": {"mime_type": "audio/ogg", "file_name": "note.ogg"}}),
        (TEXT_AS_WAV, {"document": {"mime_type": "audio/wav", "file_name": "voice.wav"}}),
        (RANDOM_BYTES, {"video_note": {"duration": 5, "length": 240}}),
    ],
    ids=["random-bytes-as-audio/mpeg", "random-bytes-as-an-ogg-document", "text-as-a-wav-document", "video-note"],
)
async def test_broken_audio_in_any_wrapper_gets_the_unreadable_answer(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, data: bytes, fields: dict
) -> None:
    """Audio files, audio documents and video notes go through the same conversion as voice notes: what
    does not decode gets the plain "couldn't read that audio", and costs no model call."""
    [(kind, media)] = fields.items()
    file_id, unique_id = telegram.add_file(data, kind=kind, mime_type=media.get("mime_type"))
    ann = telegram.user(CHAT, "Ann")
    telegram.push_message(
        CHAT, ann, {kind: {**media, "file_id": file_id, "file_unique_id": unique_id, "file_size": len(data)}}
    )
    [answer] = await telegram.wait_sent(CHAT)
    assert (answer.kind, answer.text) == ("text", AudioError.user_message)
    assert len(telegram.calls_of("getFile")) == 1
    assert openai_api.requests == []
    await still_serving(telegram, ann, already=1)


# ---------------------------------------------------------------------------------------------------------
# text
# ---------------------------------------------------------------------------------------------------------

HOSTILE_TEXTS = {
    "html-unclosed-bold": "<b>unclosed",
    "html-mismatched-and-entities": "<i>a</b> & &amp; &lt;3 <script>alert(1)</script> <a href='x'>",
    "markdown-bold-underscore": "*bold_",
    "markdown-open-link": "[link](",
    "markdown-unclosed-code": "```python\nprint('hi')\n` and `one more",
    "markdownv2-specials": r"1.5 + (2) = 3! #tag ~strike~ >quote ||spoiler| {x} \ back\slash _it_",
    "emoji-zwj-flags-skin-tones": "👨‍👩‍👧‍👦 🇺🇦🏳️‍🌈 👋🏽 🫠 and e\u0301 combining",
    "rtl-arabic-hebrew-mixed": "مرحبا بالعالم — שלום עולם — hello 123 ‏(rtl mark)",
    "bidi-override": "\u202eevil override\u202c normal \u2067isolate\u2069",
    "cjk-and-astral": "你好，世界。こんにちは 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀",
    "control-characters": "tab\there bell\x07 escape\x1b[31m red",
}


@pytest.mark.parametrize("text", list(HOSTILE_TEXTS.values()), ids=list(HOSTILE_TEXTS))
async def test_markup_and_unicode_text_is_echoed_back_intact(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, text: str
) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_text(CHAT, ann, text)
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "voice" and answer.reply_to_message_id == note
    assert answer.caption == f"You said: {text.strip()}"
    plain(answer)
    assert len(openai_api.chat_requests()) == 1  # the caption is the stand-in's echo of what the model got
    await still_serving(telegram, ann, already=1)


WORDS_10K = " ".join(f"word{i}" for i in range(2_000))[:10_000]  # ends inside a word: nothing to strip


@pytest.mark.parametrize(
    ("text", "separator"),
    [
        (WORDS_10K, " "),
        ("😀" * 10_000, ""),  # 20,000 UTF-16 units: no break to split at, and never half a surrogate pair
    ],
    ids=["10000-characters-of-words", "10000-emoji"],
)
async def test_a_ten_thousand_character_message_gets_its_whole_answer(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, text: str, separator: str
) -> None:
    """Telegram caps messages at 4096 characters, but the bot must cope with one that is longer."""
    assert len(text) == 10_000
    expected = f"You said: {text}"
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, text)
    telegram.push_text(CHAT, ann, STILL_THERE)  # answered strictly after the whole answer to the long one
    await telegram.wait_for(
        lambda: any(m.caption == f"You said: {STILL_THERE}" for m in telegram.sent_to(CHAT)),
        timeout=30,
        what="the reply to the message after the long one",
    )
    voice, *follow_up, still_there = telegram.sent_to(CHAT)
    assert voice.kind == "voice" and not voice.caption  # too long for a caption: the transcript follows
    assert len(follow_up) == math.ceil(utf16_len(expected) / 4096)
    assert all(m.kind == "text" and utf16_len(m.text) <= 4096 for m in follow_up)
    assert follow_up[0].reply_to_message_id == voice.message_id
    assert separator.join(m.text for m in follow_up) == expected
    assert still_there.kind == "voice"


@pytest.mark.parametrize(
    "text", ["   ", " \n\t \n ", "\u3000\u00a0\u2003\u2009"], ids=["spaces", "newlines-and-tabs", "unicode-spaces"]
)
async def test_blank_text_gets_a_plain_prompt_and_no_model_call(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard, text: str
) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_text(CHAT, ann, text)
    [answer] = await telegram.wait_sent(CHAT)
    assert (answer.kind, answer.text, answer.reply_to_message_id) == ("text", EMPTY_TURN, note)
    assert openai_api.requests == []
    await still_serving(telegram, ann, already=1)


async def test_zero_width_only_text_is_treated_as_blank(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, guard: LeakGuard
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "\u200b\u200c\u200d\u2060\ufeff \u200b")
    [answer] = await telegram.wait_sent(CHAT)
    assert (answer.kind, answer.text) == ("text", EMPTY_TURN)
    assert openai_api.requests == []
    await still_serving(telegram, ann, already=1)
