"""Every container people really send, made at test time by ffmpeg with its default settings (nothing chosen
to suit the pipeline): the model must hear the whole recording, whichever way it arrives.

ffmpeg's MP4/MOV muxer writes the index (moov) after the media unless told `-movflags +faststart`, as phone
cameras and most encoders do; the tests check that the files really are laid out as they claim.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram
from lab.audio import ffmpeg_exe, parse_wav
from parley.audio import MODEL_SAMPLE_RATE, AudioConverter, find_ffmpeg

SECONDS = 3.7
"""Not a round number: a pipeline that drops or pads a frame's worth would still be within a round figure."""

TONE = f"sine=frequency=330:duration={SECONDS}"
VIDEO = f"testsrc=duration={SECONDS}:size=320x240:rate=25"

TONE_IN = ["-f", "lavfi", "-i", TONE]
VIDEO_IN = ["-f", "lavfi", "-i", VIDEO, *TONE_IN]
FASTSTART = ["-movflags", "+faststart"]

# name: (file name, ffmpeg arguments between the inputs and the output file)
CONTAINERS: dict[str, tuple[str, list[str]]] = {
    "m4a-index-at-end": ("a.m4a", TONE_IN),
    "m4a-index-at-start": ("a.m4a", [*TONE_IN, *FASTSTART]),
    "mp4-audio-index-at-end": ("a.mp4", TONE_IN),
    "mp4-video-index-at-end": ("v.mp4", VIDEO_IN),
    "mp4-video-index-at-start": ("v.mp4", [*VIDEO_IN, *FASTSTART]),
    "mov-audio-index-at-end": ("a.mov", TONE_IN),
    "mov-audio-index-at-start": ("a.mov", [*TONE_IN, *FASTSTART]),
    "mov-video-index-at-end": ("v.mov", VIDEO_IN),
    "mp4-fragmented": ("f.mp4", [*VIDEO_IN, "-movflags", "frag_keyframe+empty_moov"]),
    "mp3-id3-stereo-44k": (
        "a.mp3",
        ["-f", "lavfi", "-i", f"{TONE}:sample_rate=44100", "-ac", "2", "-metadata", "title=Memo"],
    ),
    "ogg-vorbis": ("a.ogg", [*TONE_IN, "-c:a", "libvorbis"]),
    "ogg-opus-48k": ("a.opus", ["-f", "lavfi", "-i", f"{TONE}:sample_rate=48000"]),
    "ogg-opus-16k": ("a.opus", ["-f", "lavfi", "-i", f"{TONE}:sample_rate=16000"]),
    "webm-opus": ("a.webm", ["-f", "lavfi", "-i", f"{TONE}:sample_rate=48000"]),
    "aac-adts": ("a.aac", TONE_IN),
    "flac": ("a.flac", TONE_IN),
    "wav-float32": ("a.wav", [*TONE_IN, "-c:a", "pcm_f32le"]),
    "wav-24-bit": ("a.wav", [*TONE_IN, "-c:a", "pcm_s24le"]),
    "wav-8-bit": ("a.wav", [*TONE_IN, "-c:a", "pcm_u8"]),
    "wav-stereo": ("a.wav", [*TONE_IN, "-ac", "2"]),
}


@cache
def recording(name: str, where: str) -> bytes:
    """The file ffmpeg writes for CONTAINERS[name] (to a real file: the MP4 muxer seeks back to finish)."""
    filename, args = CONTAINERS[name]
    out = Path(where) / f"{name}-{filename}"
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args, str(out)]
    proc = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return out.read_bytes()


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("containers"))


@pytest.fixture
async def converter() -> AsyncIterator[AudioConverter]:
    async with AudioConverter(find_ffmpeg(), timeout=30) as converter:
        yield converter


def test_the_files_are_laid_out_as_they_claim(made: str) -> None:
    """The index really is at the end (or start) where the name says so, and a video track is there."""
    for name in CONTAINERS:
        data = recording(name, made)
        if "index-at-end" in name:
            assert data.index(b"mdat") < data.index(b"moov"), name
        if "index-at-start" in name:
            assert data.index(b"moov") < data.index(b"mdat"), name
        if "video" in name or "fragmented" in name:
            assert b"avc1" in data, name
    assert recording("mp3-id3-stereo-44k", made).startswith(b"ID3")
    assert recording("aac-adts", made)[:2] in (b"\xff\xf1", b"\xff\xf9")
    assert b"OpusHead" in recording("webm-opus", made) or b"A_OPUS" in recording("webm-opus", made)
    assert b"vorbis" in recording("ogg-vorbis", made)[:200]
    opus_16k = recording("ogg-opus-16k", made)
    head = opus_16k.index(b"OpusHead")
    assert int.from_bytes(opus_16k[head + 12 : head + 16], "little") == 16_000  # the input rate it records


@pytest.mark.parametrize("name", list(CONTAINERS))
async def test_the_model_hears_the_whole_recording(converter: AudioConverter, made: str, name: str) -> None:
    wav = await converter.to_model_wav(recording(name, made))
    info = parse_wav(wav.data)
    assert (info.rate, info.channels, info.bits) == (MODEL_SAMPLE_RATE, 1, 16)
    assert info.duration == pytest.approx(SECONDS, abs=0.1)
    assert await converter.probe_seconds(recording(name, made)) == pytest.approx(SECONDS, abs=0.1)


@pytest.mark.parametrize("name", ["mp4-video-index-at-end", "m4a-index-at-end", "webm-opus", "mp3-id3-stereo-44k"])
async def test_long_recording_tools_read_them_too(converter: AudioConverter, made: str, name: str) -> None:
    """The ffmpeg command line (silences, MP3 segments) reads a file, not a pipe: the index at the end is fine."""
    data = recording(name, made)
    mp3 = await converter.to_model_mp3(data)
    assert await converter.probe_seconds(mp3) == pytest.approx(SECONDS, abs=0.1)
    part = await converter.to_model_mp3(data, start=1.0, seconds=2.0)
    assert await converter.probe_seconds(part) == pytest.approx(2.0, abs=0.1)
    assert await converter.silences(data) == []  # a tone throughout: nowhere quiet


CHAT = 5150

# How each arrives: (Telegram's field, its fields besides the file, the recording, the file the transcription
# endpoint is sent: the recording as it came when the endpoint takes its container and it is smaller than the
# WAV the model hears, else that WAV)
WRAPPERS = {
    "video-note-index-at-end": ("video_note", {"duration": 4, "length": 240}, "mp4-video-index-at-end", "voice.mp4"),
    "voice-note-webm": ("voice", {"duration": 4, "mime_type": "audio/webm"}, "webm-opus", "voice.webm"),
    "audio-m4a-index-at-end": ("audio", {"duration": 4, "mime_type": "audio/mp4"}, "m4a-index-at-end", "voice.m4a"),
    "audio-mp3-id3": ("audio", {"duration": 4, "mime_type": "audio/mpeg"}, "mp3-id3-stereo-44k", "voice.mp3"),
    "audio-aac-adts": ("audio", {"duration": 4, "mime_type": "audio/aac"}, "aac-adts", "voice.wav"),
    "document-mov": (
        "document", {"mime_type": "audio/quicktime", "file_name": "memo.mov"}, "mov-audio-index-at-end", "voice.wav"
    ),
    "document-flac": ("document", {"mime_type": "audio/flac", "file_name": "take.flac"}, "flac", "voice.flac"),
    "document-wav-float": (
        "document", {"mime_type": "audio/wav", "file_name": "take.wav"}, "wav-float32", "voice.wav"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(WRAPPERS))
async def test_end_to_end_the_model_hears_every_wrapper(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, made: str, case: str
) -> None:
    kind, fields, name, upload = WRAPPERS[case]
    data = recording(name, made)
    file_id, unique_id = telegram.add_file(data, kind=kind, mime_type=fields.get("mime_type"))
    ann = telegram.user(CHAT, "Ann")
    media = {**fields, "file_id": file_id, "file_unique_id": unique_id, "file_size": len(data)}
    telegram.push_message(CHAT, ann, {kind: media})
    [answer] = await telegram.wait_sent(CHAT)
    [request] = openai_api.chat_requests()
    [heard] = request.audio_input_seconds
    assert heard == pytest.approx(SECONDS, abs=0.1)
    assert answer.kind == "voice" and answer.caption == f"I heard {heard:.1f} seconds of audio."
    await openai_api.wait_for(lambda: openai_api.transcription_requests()[0].status is not None, 10, what="words")
    [transcription] = openai_api.transcription_requests()
    sent_name, sent = transcription.files["file"]
    assert sent_name == upload
    if upload == "voice.wav":
        assert parse_wav(sent).rate == MODEL_SAMPLE_RATE  # the WAV the model heard
    else:
        assert sent == data
    # The endpoint read the whole recording, whichever file it got.
    assert transcription.status == 200 and transcription.response["text"] == f"transcript of {SECONDS:.1f} s"
