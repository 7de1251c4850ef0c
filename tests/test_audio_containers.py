"""Every container people really send, made at test time by ffmpeg with its default settings (nothing chosen
to suit the pipeline): the model must hear the whole recording, whichever way it arrives.

ffmpeg's MP4/MOV muxer writes the index (moov) after the media unless told `-movflags +faststart`, as phone
cameras and most encoders do; the tests check that the files really are laid out as they claim.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram
from lab.audio import decode_duration, ffmpeg_exe, make_voice_ogg, opus_comments, parse_wav
from parley.audio import MODEL_SAMPLE_RATE, AudioConverter, CodecPool, find_ffmpeg

SECONDS = 3.7
"""Not a round number: a pipeline that drops or pads a frame's worth would still be within a round figure."""

TONE = f"sine=frequency=330:duration={SECONDS}"
VIDEO = f"testsrc=duration={SECONDS}:size=320x240:rate=25"

TONE_IN = ["-f", "lavfi", "-i", TONE]
VIDEO_IN = ["-f", "lavfi", "-i", VIDEO, *TONE_IN]
FASTSTART = ["-movflags", "+faststart"]
TAGS = ["-metadata", "title=Memo at home", "-metadata", "location=+52.5200+013.4050/"]
"""What a phone's voice memo carries besides its audio: none of it is the transcription endpoint's business."""

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
    "ogg-opus-tagged": ("a.opus", ["-f", "lavfi", "-i", f"{TONE}:sample_rate=48000", *TAGS]),
    "ogg-opus-stereo-tagged": ("a.opus", ["-f", "lavfi", "-i", f"{TONE}:sample_rate=48000", "-ac", "2", *TAGS]),
    "ogg-opus-two-streams": (
        "a.opus",
        [
            "-f",
            "lavfi",
            "-i",
            f"{TONE}:sample_rate=48000",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=550:duration=20",
            "-map",
            "0",
            "-map",
            "1",
        ],
    ),
    "m4a-tagged": ("a.m4a", [*TONE_IN, *TAGS]),
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

# How each arrives: (Telegram's field, its fields besides the file, the recording)
WRAPPERS = {
    "video-note-index-at-end": ("video_note", {"duration": 4, "length": 240}, "mp4-video-index-at-end"),
    "voice-note-webm": ("voice", {"duration": 4, "mime_type": "audio/webm"}, "webm-opus"),
    "voice-note-tagged": ("voice", {"duration": 4, "mime_type": "audio/ogg"}, "ogg-opus-tagged"),
    "voice-note-stereo-tagged": ("voice", {"duration": 4, "mime_type": "audio/ogg"}, "ogg-opus-stereo-tagged"),
    "audio-m4a-index-at-end": ("audio", {"duration": 4, "mime_type": "audio/mp4"}, "m4a-index-at-end"),
    "audio-m4a-tagged": ("audio", {"duration": 4, "mime_type": "audio/mp4"}, "m4a-tagged"),
    "audio-mp3-id3": ("audio", {"duration": 4, "mime_type": "audio/mpeg"}, "mp3-id3-stereo-44k"),
    "audio-aac-adts": ("audio", {"duration": 4, "mime_type": "audio/aac"}, "aac-adts"),
    "document-mov": ("document", {"mime_type": "audio/quicktime", "file_name": "memo.mov"}, "mov-audio-index-at-end"),
    "document-flac": ("document", {"mime_type": "audio/flac", "file_name": "take.flac"}, "flac"),
    "document-wav-float": ("document", {"mime_type": "audio/wav", "file_name": "take.wav"}, "wav-float32"),
}


async def _sent(telegram: FakeTelegram, openai_api: FakeOpenAI, kind: str, fields: dict, data: bytes) -> tuple:
    """Send `data` to the bot as Telegram's `kind`; (the seconds the model heard, the WAV it heard, the file
    the transcription endpoint was sent, the endpoint's answer)."""
    file_id, unique_id = telegram.add_file(data, kind=kind, mime_type=fields.get("mime_type"))
    ann = telegram.user(CHAT, "Ann")
    media = {**fields, "file_id": file_id, "file_unique_id": unique_id, "file_size": len(data)}
    telegram.push_message(CHAT, ann, {kind: media})
    [answer] = await telegram.wait_sent(CHAT)
    [request] = openai_api.chat_requests()
    [heard] = request.audio_input_seconds
    assert answer.kind == "voice" and answer.caption == f"I heard {heard:.1f} seconds of audio."
    [wav] = [
        base64.b64decode(part["input_audio"]["data"])
        for message in request.json["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "input_audio"
    ]
    await openai_api.wait_for(lambda: openai_api.transcription_requests()[0].status is not None, 10, what="words")
    [transcription] = openai_api.transcription_requests()
    assert transcription.status == 200
    return heard, wav, transcription.files["file"], transcription.response["text"]


@pytest.mark.parametrize("case", list(WRAPPERS))
async def test_end_to_end_the_model_hears_every_wrapper_and_the_transcription_what_it_heard(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, made: str, case: str
) -> None:
    """A voice note decoded by libopus is transcribed from its own Opus packets in a new file without its tags;
    anything else from the WAV the model heard. Never the file as it came, with its metadata."""
    kind, fields, name = WRAPPERS[case]
    data = recording(name, made)
    assert b"Memo at home" in data or "tagged" not in name
    heard, wav, (sent_name, sent), words = await _sent(telegram, openai_api, kind, fields, data)
    assert heard == pytest.approx(SECONDS, abs=0.1)
    assert sent != data and b"Memo" not in sent and b"52.5200" not in sent
    if name.startswith("ogg-opus"):
        assert sent_name == "voice.ogg"
        vendor, comments = opus_comments(sent)
        assert vendor and comments == []
        assert sent[37] == (2 if "stereo" in name else 1)  # the OpusHead's channels, as the note had them
        assert decode_duration(sent) == pytest.approx(parse_wav(wav).duration, abs=0.1)
        assert len(sent) < len(wav) / 2
    else:
        assert (sent_name, sent) == ("voice.wav", wav)
    assert words == f"transcript of {SECONDS:.1f} s"


def _trailing_garbage(made: str) -> bytes:
    return recording("ogg-opus-48k", made) + bytes(range(256)) * 64


def _chained(made: str) -> bytes:
    return recording("ogg-opus-48k", made) + recording("ogg-opus-16k", made)


@pytest.mark.parametrize(
    "make",
    [_trailing_garbage, _chained, lambda made: recording("ogg-opus-two-streams", made)],
    ids=["trailing-garbage", "chained", "two-streams"],
)
async def test_end_to_end_a_note_with_more_than_its_audio_is_transcribed_from_what_the_model_heard(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, made: str, make
) -> None:
    """Bytes past the end, a second stream after or beside the first: the endpoint would decode and bill them
    all; it gets what the model heard, and no more."""
    data = make(made)
    assert decode_duration(data) >= SECONDS - 0.1
    heard, wav, (sent_name, sent), _ = await _sent(telegram, openai_api, "voice", {"duration": 4}, data)
    assert decode_duration(sent) <= heard + 0.05
    assert (sent_name, sent) == ("voice.wav", wav)


@pytest.mark.parametrize("name", ["ogg-opus-tagged", "ogg-opus-stereo-tagged", "ogg-opus-16k"])
async def test_a_voice_notes_rebuilt_file_decodes_to_exactly_what_the_model_heard(
    converter: AudioConverter, made: str, name: str
) -> None:
    """The same packets, pre-skip, gain and end: decoded again, the rebuilt file gives the same samples."""
    wav = await converter.to_model_wav(recording(name, made))
    assert wav.voice_ogg is not None
    again = await converter.to_model_wav(wav.voice_ogg)
    assert again.pcm == wav.pcm


@pytest.mark.parametrize("name", ["m4a-tagged", "webm-opus", "ogg-vorbis"])
async def test_other_recordings_carry_no_rebuilt_file(converter: AudioConverter, made: str, name: str) -> None:
    assert (await converter.to_model_wav(recording(name, made))).voice_ogg is None


async def test_a_long_note_decoded_in_parts_carries_no_rebuilt_file() -> None:
    """Parts decode overlapping stretches (each settles its decoder on what comes before it): no part holds
    the packets of the whole, so the WAV is what the transcription gets."""
    pool = CodecPool(2)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        await converter.start()
        note = make_voice_ogg(25.0)
        assert converter._parts(note) == 2
        wav = await converter.to_model_wav(note)
    await pool.close()
    assert wav.duration == pytest.approx(25.0, abs=0.1) and wav.voice_ogg is None
