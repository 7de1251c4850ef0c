"""Fuzzing the audio layer (hypothesis, bounded and derandomised so CI sees the same examples every run).

The contract under test: whatever bytes arrive, AudioConverter.to_model_wav returns a WAV the strict lab
validator accepts, or raises AudioError (AudioTimeout included) -- never another exception, never later
than its timeout, never leaving an ffmpeg process behind, and the codec workers carry on to the next. The
pure-Python WAV parser (read_wav and normalise_wav) returns a WavAudio or raises AudioError for any bytes
at all, and what normalise_wav writes is always a strictly valid WAV.
"""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.audio import InvalidOgg, make_mp3, make_voice_ogg, make_wav, parse_wav
from parley.audio import (
    MAX_DECODED_SECONDS,
    AudioConverter,
    CodecPool,
    WavAudio,
    find_ffmpeg,
    normalise_wav,
    opus,
    read_wav,
)
from parley.audio.bounds import CodecError, Decoded
from parley.audio.opus import ogg_crc
from parley.errors import AudioError

TIMEOUT = 4.0
SLACK = 1.5
"""Start-up and reaping on a loaded CI machine; a conversion that outlives TIMEOUT + SLACK is a failure."""

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,  # nothing written to the working tree, and no example carried over between runs
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=False,
)
REPLY_CAP = 120.0
"""A low cap on reply length for the to_voice_ogg fuzz: it exercises the refusal without spending seconds
encoding 20-minute replies (a 3 Hz WAV of 4,000 frames is 22 minutes long)."""

PARSER_FUZZ = settings(FUZZ, max_examples=400)  # pure Python and fast: afford many more examples


@cache
def seed(kind: str) -> bytes:
    """Small real files to mutate (kept short so each ffmpeg run stays in the tens of milliseconds)."""
    if kind == "ogg":
        return make_voice_ogg(1.0)
    if kind == "wav":
        return make_wav(0.5, rate=8000)
    if kind == "mp3":
        return make_mp3(0.6)
    raise ValueError(kind)


def ffmpeg_children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == me and "ffmpeg" in comm:
            found.append(int(entry))
    return found


# ---------------------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------------------

# Positions: often inside the headers (where parsers break), otherwise anywhere (taken modulo the length).
positions = st.one_of(st.integers(0, 96), st.integers(0, 1 << 20))

mutations = st.one_of(
    st.tuples(st.just("flip"), positions, st.integers(1, 255)),
    st.tuples(st.just("truncate"), positions),
    st.tuples(st.just("insert"), positions, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("duplicate"), positions, positions, st.integers(1, 4096)),
    st.tuples(st.just("delete"), positions, st.integers(1, 512)),
    st.tuples(st.just("overwrite"), positions, st.binary(min_size=1, max_size=16)),
)


def mutate(data: bytes, ops: list[tuple]) -> bytes:
    buf = bytearray(data)
    for op in ops:
        at = op[1] % (len(buf) + 1)
        if op[0] == "flip" and at < len(buf):
            buf[at] ^= op[2]
        elif op[0] == "truncate":
            del buf[at:]
        elif op[0] == "insert":
            buf[at:at] = op[2]
        elif op[0] == "duplicate":  # copy a chunk from `at` and insert it at a second position
            chunk = bytes(buf[at : at + op[3]])
            where = op[2] % (len(buf) + 1)
            buf[where:where] = chunk
        elif op[0] == "delete":
            del buf[at : at + op[2]]
        elif op[0] == "overwrite":
            buf[at : at + len(op[2])] = op[2]
    return bytes(buf)


def test_mutations_really_change_the_seed() -> None:
    """Guards the fuzzer itself: each kind of mutation does what it says."""
    data = bytes(range(200))
    assert mutate(data, [("flip", 3, 0xFF)])[3] == 3 ^ 0xFF
    assert mutate(data, [("truncate", 10)]) == data[:10]
    assert mutate(data, [("insert", 5, b"xyz")]) == data[:5] + b"xyz" + data[5:]
    assert mutate(data, [("duplicate", 0, 200, 4)]) == data + data[:4]
    assert mutate(data, [("delete", 0, 150)]) == data[150:]
    assert mutate(data, [("overwrite", 198, b"abcd")]) == data[:198] + b"abcd"


# ---------------------------------------------------------------------------------------------------------
# the conversion layer (real ffmpeg)
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Session:
    """One event loop and one pool of codec workers for the whole module, as in the bot: the workers live
    across examples, so a hostile example that crashes or wedges one must not spoil the next."""

    runner: asyncio.Runner
    pool: CodecPool

    def converter(self, **limits: float) -> AudioConverter:
        return AudioConverter(find_ffmpeg(), pool=self.pool, **{"timeout": TIMEOUT, **limits})


_session: Session | None = None


def session() -> Session:
    global _session
    if _session is None:
        runner = asyncio.Runner()
        _session = Session(runner, runner.run(_new_pool()))
    return _session


async def _new_pool() -> CodecPool:
    return CodecPool()


@pytest.fixture(scope="module", autouse=True)
def _close_session() -> Iterator[None]:
    yield
    global _session
    if _session is not None:
        _session.runner.run(_session.pool.close())
        _session.runner.close()
        _session = None


def convert(data: bytes) -> tuple[WavAudio | AudioError, float]:
    """to_model_wav: its result or AudioError, and how long it took. Any other exception propagates and
    fails the example."""

    async def run() -> WavAudio | AudioError:
        try:
            return await session().converter().to_model_wav(data)
        except AudioError as exc:
            return exc

    started = time.monotonic()
    outcome = session().runner.run(run())
    return outcome, time.monotonic() - started


def assert_model_wav(wav: WavAudio) -> None:
    """A WAV the strict validator (and so the API) accepts, in the format the model is sent."""
    info = parse_wav(wav.data)
    assert (info.rate, info.channels, info.bits) == (16_000, 1, 16)
    assert wav.pcm_offset + wav.pcm_bytes == len(wav.data) and wav.pcm_bytes == info.frames * 2
    assert wav.duration == pytest.approx(info.duration)
    assert 0.1 <= wav.duration <= MAX_DECODED_SECONDS  # a 1 Hz "WAV" must not decode to gigabytes


def check_conversion(data: bytes) -> WavAudio | AudioError:
    outcome, elapsed = convert(data)
    assert elapsed < TIMEOUT + SLACK, f"conversion took {elapsed:.1f} s with a {TIMEOUT} s timeout"
    assert ffmpeg_children() == [], "ffmpeg left running or unreaped"
    if isinstance(outcome, WavAudio):
        assert_model_wav(outcome)
    return outcome


@pytest.mark.parametrize("kind", ["ogg", "wav", "mp3"])
@FUZZ
@given(ops=st.lists(mutations, min_size=1, max_size=4))
def test_mutated_audio_converts_to_a_valid_wav_or_raises_audio_error(kind: str, ops: list[tuple]) -> None:
    check_conversion(mutate(seed(kind), ops))


@pytest.mark.parametrize("kind", ["ogg", "wav", "mp3"])
def test_the_unmutated_seeds_convert(kind: str) -> None:
    """Without this, a fuzz run in which everything fails (say ffmpeg is missing) would look green."""
    assert isinstance(check_conversion(seed(kind)), WavAudio)


def reseal(data: bytes) -> bytes:
    """Every OGG page that still fits given a correct CRC, so a mutation reaches the Python reader (opus.py)
    past its check of the CRCs instead of being handed to FFmpeg at once."""
    buf = bytearray(data)
    at = buf.find(b"OggS")
    while 0 <= at and at + 27 <= len(buf):
        body = at + 27 + buf[at + 26]
        end = body + sum(buf[at + 27 : body])
        if end <= len(buf):
            buf[at + 22 : at + 26] = bytes(4)
            buf[at + 22 : at + 26] = ogg_crc(bytes(buf[at:end])).to_bytes(4, "little")
        at = buf.find(b"OggS", at + 4)
    return bytes(buf)


def decode_ogg(data: bytes) -> Decoded | CodecError | None:
    try:
        return opus.decode_ogg(data, rate=16_000, max_seconds=60, emit=lambda piece: None)
    except CodecError as exc:
        return exc


@PARSER_FUZZ
@given(ops=st.lists(mutations, min_size=1, max_size=4))
def test_a_mutated_voice_note_with_valid_crcs_is_read_refused_or_left_to_ffmpeg(ops: list[tuple]) -> None:
    """The Python OGG reader either decodes a note (no longer than its cap), refuses it with a codec error, or
    leaves it to FFmpeg (None): any other exception would be a bug in it."""
    outcome = decode_ogg(reseal(mutate(seed("ogg"), ops)))
    if isinstance(outcome, Decoded):
        assert 0 <= outcome.seconds <= 61


@FUZZ
@given(ops=st.lists(mutations, min_size=1, max_size=4))
def test_a_mutated_voice_note_with_valid_crcs_converts_or_raises_audio_error(ops: list[tuple]) -> None:
    check_conversion(reseal(mutate(seed("ogg"), ops)))


def test_the_ogg_fuzz_reaches_the_python_reader() -> None:
    """The two tests above mean something only if resealed notes do get past the CRCs: a byte changed inside an
    Opus packet still decodes there; one changed without resealing is left to FFmpeg."""
    note = seed("ogg")
    inside = len(note) - 40  # in the last page's packets
    assert isinstance(decode_ogg(reseal(note)), Decoded)
    assert isinstance(decode_ogg(reseal(mutate(note, [("flip", inside, 0x10)]))), Decoded)
    assert decode_ogg(mutate(note, [("flip", inside, 0x10)])) is None


@FUZZ
@given(
    tag=st.sampled_from([1, 0xFFFE, 3, 6, 0]),
    channels=st.one_of(st.integers(1, 40), st.sampled_from([0, 255, 256, 0x7FFF, 0xFFFF])),
    rate=st.one_of(
        st.sampled_from([1, 2, 7, 8000, 44_100, 384_000, 768_000, 0x7FFFFFFF, 0xFFFFFFFF]), st.integers(1, 10**6)
    ),
    bits=st.sampled_from([16, 8, 24, 32, 0, 12]),
    pcm=st.integers(0, 12_000),
)
def test_wav_headers_with_extreme_formats(tag: int, channels: int, rate: int, bits: int, pcm: int) -> None:
    """Sample rates from 1 Hz (4,000 s of audio in 8 KB: a decompression bomb) to 4 GHz, up to 65,535
    channels, odd sample sizes: still a valid WAV or an AudioError, inside the timeout."""
    block = max(1, channels * bits // 8)
    fmt = struct.pack("<HHIIHH", tag, channels, rate, min(rate * block, 0xFFFFFFFF), block & 0xFFFF, bits)
    samples = bytes((i * 37) & 0xFF for i in range(pcm))
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", pcm) + samples
    check_conversion(b"RIFF" + struct.pack("<I", len(body)) + body)


# ---------------------------------------------------------------------------------------------------------
# the pure-Python WAV parser
# ---------------------------------------------------------------------------------------------------------


def parse_or_error(data: bytes) -> WavAudio | None:
    """read_wav and normalise_wav agree, raise nothing but AudioError, and normalise_wav's output is valid."""
    try:
        wav = read_wav(data)
    except AudioError:
        with pytest.raises(AudioError):
            normalise_wav(data)
        return None
    assert 0 <= wav.pcm_offset <= wav.pcm_offset + wav.pcm_bytes <= len(data)
    assert wav.duration >= 0
    fixed = normalise_wav(data)
    assert (fixed.format, fixed.pcm) == (wav.format, wav.pcm)
    info = parse_wav(fixed.data, allow_empty=True)
    assert (info.rate, info.channels, info.bits) == (wav.format.rate, wav.format.channels, wav.format.bits)
    assert info.frames * info.channels * 2 == fixed.pcm_bytes
    assert read_wav(fixed.data) == fixed  # what we write we can read back, unchanged
    return wav


@PARSER_FUZZ
@given(data=st.binary(max_size=300))
def test_read_wav_on_arbitrary_bytes(data: bytes) -> None:
    parse_or_error(data)


PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")

other_chunk_ids = st.one_of(st.sampled_from([b"LIST", b"fact", b"junk", b"data"]), st.binary(min_size=4, max_size=4))
fmt_bodies = st.builds(
    lambda tag, channels, rate, byte_rate, align, bits, extension: (
        struct.pack("<HHIIHH", tag, channels, rate, byte_rate, align, bits) + extension
    ),
    st.sampled_from([1, 1, 0xFFFE, 3, 0]),
    st.one_of(st.integers(1, 8), st.integers(0, 0xFFFF)),
    st.one_of(st.sampled_from([1, 16_000, 384_000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]), st.integers(0, 0xFFFFFFFF)),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFF),
    st.sampled_from([16, 16, 8, 0, 24]),
    st.one_of(  # WAVE_FORMAT_EXTENSIBLE's 24 extra bytes, its sub-format GUID last (PCM or not), or junk
        st.just(b""),
        st.just(struct.pack("<HHI", 22, 16, 4) + PCM_GUID),
        st.binary(min_size=16, max_size=16).map(lambda guid: struct.pack("<HHI", 22, 16, 4) + guid),
        st.binary(max_size=30),
    ),
)


def chunk(draw: st.DrawFn, chunk_id: bytes, body: bytes) -> bytes:
    """A chunk whose size field is right, or wrong, or absurd; odd bodies sometimes get their pad byte."""
    size = draw(
        st.one_of(st.just(len(body)), st.just(len(body)), st.integers(0, 0xFFFFFFFF), st.sampled_from([0, 0xFFFFFFFF]))
    )
    pad = b"\x00" if len(body) % 2 and draw(st.booleans()) else b""
    return chunk_id + struct.pack("<I", size) + body + pad


@st.composite
def riff_files(draw: st.DrawFn) -> bytes:
    """Structured RIFF/WAVE files: usually a fmt chunk then a data chunk (where parsing goes deep), among
    other chunks, with field values and sizes that are right, wrong or absurd."""
    parts = [chunk(draw, draw(other_chunk_ids), draw(st.binary(max_size=40))) for _ in range(draw(st.integers(0, 2)))]
    if draw(st.integers(0, 9)):
        parts.append(chunk(draw, b"fmt ", draw(fmt_bodies)))
    parts += [chunk(draw, draw(other_chunk_ids), draw(st.binary(max_size=40))) for _ in range(draw(st.integers(0, 1)))]
    if draw(st.integers(0, 9)):
        parts.append(chunk(draw, b"data", draw(st.binary(max_size=200))))
    if draw(st.booleans()):
        parts = draw(st.permutations(parts))
    chunks = b"".join(parts)
    riff_size = draw(st.one_of(st.just(4 + len(chunks)), st.integers(0, 0xFFFFFFFF)))
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + chunks


@PARSER_FUZZ
@given(data=riff_files())
def test_read_wav_on_structured_riff_files(data: bytes) -> None:
    parse_or_error(data)


@PARSER_FUZZ
@given(ops=st.lists(mutations, min_size=1, max_size=4))
def test_read_wav_on_a_mutated_real_wav(ops: list[tuple]) -> None:
    parse_or_error(mutate(seed("wav"), ops))


@PARSER_FUZZ
@given(guid=st.one_of(st.just(PCM_GUID), st.binary(min_size=16, max_size=16)))
def test_extensible_wav_is_read_only_when_its_sub_format_is_pcm(guid: bytes) -> None:
    """WAVE_FORMAT_EXTENSIBLE says what its samples are in the sub-format GUID: anything but PCM (float,
    A-law, ...) relabelled as plain PCM by normalise_wav would reach the model as noise."""
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 16_000, 32_000, 2, 16) + struct.pack("<HHI", 22, 16, 4) + guid
    pcm = bytes(range(256)) * 4
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    if guid == PCM_GUID:
        assert parse_or_error(data) is not None
    else:
        with pytest.raises(AudioError):
            read_wav(data)


def test_the_parser_fuzz_reaches_valid_files() -> None:
    """The parser checks above are only meaningful if the happy path is reachable too."""
    wav = parse_or_error(seed("wav"))
    assert wav is not None and wav.duration == pytest.approx(0.5)
    assert parse_or_error(b"RIFF\x00\x00\x00\x00WAVE") is None


# ---------------------------------------------------------------------------------------------------------
# the way back: the model's WAV to a voice note
# ---------------------------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=40)
@given(
    channels=st.sampled_from([1, 2, 6, 8, 9, 32]),
    rate=st.sampled_from([1, 3, 8000, 24_000, 44_100, 192_000, 384_000, 1_000_000, 0x7FFFFFFF]),
    frames=st.integers(0, 4000),
)
def test_odd_reply_wavs_become_a_voice_note_or_audio_error(channels: int, rate: int, frames: int) -> None:
    """The model's reply is parsed by read_wav and encoded by to_voice_ogg: odd formats never crash it."""
    block = channels * 2
    pcm = bytes((i * 13) & 0xFF for i in range(frames * block))
    fmt = struct.pack("<HHIIHH", 1, channels, rate, min(rate * block, 0xFFFFFFFF), block, 16)
    data = b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    data += b"data" + struct.pack("<I", len(pcm)) + pcm

    async def run() -> bytes | AudioError:
        try:
            return await session().converter(max_seconds=REPLY_CAP).to_voice_ogg(read_wav(data))
        except AudioError as exc:
            return exc

    started = time.monotonic()
    outcome = session().runner.run(run())
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert ffmpeg_children() == []
    if isinstance(outcome, bytes):
        assert outcome.startswith(b"OggS") and b"OpusHead" in outcome[:512], InvalidOgg.__doc__
