"""Audio conversion with the real codecs (PyAV in worker processes, the ffmpeg command line) on audio made
at test time."""

from __future__ import annotations

import array
import asyncio
import os
import signal
import struct
from collections.abc import AsyncIterator

import pytest

from lab.audio import InvalidWav, make_mp3, make_speech_ogg, make_voice_ogg, make_wav, ogg_opus_duration, parse_wav
from parley.audio import MODEL_SAMPLE_RATE, AudioConverter, CodecPool, find_ffmpeg, normalise_wav, read_wav
from parley.audio.ffmpeg_cli import FfmpegCli
from parley.audio.pool import WorkerCrashed
from parley.errors import AudioError, AudioTimeout


@pytest.fixture
async def converter() -> AsyncIterator[AudioConverter]:
    async with AudioConverter(find_ffmpeg(), timeout=30) as converter:
        yield converter


async def test_voice_note_becomes_a_valid_16k_mono_wav(converter: AudioConverter) -> None:
    wav = await converter.to_model_wav(make_voice_ogg(3.0))
    info = parse_wav(wav.data)  # strict: RIFF and data sizes must match the bytes
    assert (info.rate, info.channels, info.bits) == (MODEL_SAMPLE_RATE, 1, 16)
    assert info.duration == pytest.approx(3.0, abs=0.1)
    assert wav.duration == pytest.approx(info.duration)


async def test_mp3_converts_too(converter: AudioConverter) -> None:
    wav = await converter.to_model_wav(make_mp3(1.5))
    assert parse_wav(wav.data).duration == pytest.approx(1.5, abs=0.15)


async def test_reply_wav_becomes_ogg_opus_voice(converter: AudioConverter) -> None:
    wav = read_wav(make_wav(4.0, rate=24000))
    ogg = await converter.to_voice_ogg(wav)
    assert ogg.startswith(b"OggS") and b"OpusHead" in ogg[:200]
    assert ogg_opus_duration(ogg) == pytest.approx(4.0, abs=0.1)


def _ogg_pages(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(flags, granule, sequence, body) of every page, each page's CRC checked by the textbook table-driven
    OGG CRC-32 (not the encoder's own way of computing it)."""
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
        table.append(crc)
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        flags, granule, _serial, sequence, crc, count = struct.unpack_from("<xBqIIIB", data, at + 4)
        size = 27 + count + sum(data[at + 27 : at + 27 + count])
        page = bytearray(data[at : at + size])
        page[22:26] = bytes(4)
        computed = 0
        for byte in page:
            computed = ((computed << 8) & 0xFFFFFFFF) ^ table[(computed >> 24) ^ byte]
        assert computed == crc, f"page {sequence}: CRC {crc:#x}, computed {computed:#x}"
        pages.append((flags, granule, sequence, bytes(page[27 + count :])))
        at += size
    return pages


async def test_a_reply_is_a_well_formed_ogg_opus_stream(converter: AudioConverter) -> None:
    """Pages as RFC 7845 has them: OpusHead alone on the first page, OpusTags next, then audio whose last
    page ends the stream at the reply's exact length (its padding trimmed)."""
    ogg = await converter.to_voice_ogg(read_wav(make_wav(3.3, rate=24000)))
    pages = _ogg_pages(ogg)
    assert [sequence for _, _, sequence, _ in pages] == list(range(len(pages)))
    (head_flags, _, _, head), (_, _, _, tags) = pages[0], pages[1]
    assert head_flags == 0x02 and head.startswith(b"OpusHead") and tags.startswith(b"OpusTags")
    channels, pre_skip, input_rate = struct.unpack_from("<xBHI", head, 8)
    assert (channels, input_rate) == (1, 24000)
    granules = [granule for _, granule, _, _ in pages[2:]]
    assert granules == sorted(granules)
    assert [flags for flags, _, _, _ in pages[2:]] == [0] * (len(pages) - 3) + [0x04]
    assert granules[-1] - pre_skip == round(3.3 * 48000)


def test_a_reply_without_audio_makes_no_voice_note() -> None:
    from parley.audio import opus

    encoder = opus.VoiceEncoder(rate=24000)
    assert encoder.feed(b"") == b"" and encoder.finish() == b""
    encoder = opus.VoiceEncoder(rate=24000)
    assert encoder.feed(b"\x00") == b"" and encoder.finish() == b""  # half a sample is no audio either


async def test_a_long_reply_stays_under_telegrams_waveform_limit(converter: AudioConverter) -> None:
    """Telegram draws no waveform for voice files over 1 MB; three minutes of reply must fit."""
    ogg = await converter.to_voice_ogg(read_wav(make_wav(180.0, rate=24000)))
    assert len(ogg) < 1_000_000


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00" * 1000, os.urandom(50_000), b"OggS" + os.urandom(3000), b"RIFF....WAVEfmt not really"],
    ids=["empty", "zeros", "random", "fake-ogg-header", "fake-wav"],
)
async def test_unreadable_audio_is_a_typed_error(converter: AudioConverter, garbage: bytes) -> None:
    with pytest.raises(AudioError):
        await converter.to_model_wav(garbage)


async def test_truncated_ogg_is_rejected_or_shorter(converter: AudioConverter) -> None:
    ogg = make_voice_ogg(3.0)
    try:
        wav = await converter.to_model_wav(ogg[: len(ogg) // 2])
    except AudioError:
        return
    assert parse_wav(wav.data).duration < 3.0


async def test_ffmpeg_is_killed_at_its_timeout() -> None:
    slow = FfmpegCli(find_ffmpeg(), timeout=0.5)
    # -re reads input at its natural pace: ten minutes of silence cannot finish inside the timeout.
    command = [slow.ffmpeg_path, "-nostdin", "-re", "-f", "s16le", "-ar", "8000", "-ac", "1", "-i", "pipe:0"]
    command += ["-f", "s16le", "pipe:1"]
    before = _ffmpeg_children()
    with pytest.raises(AudioTimeout):
        await slow.exec(command, b"\x00" * (8000 * 2 * 600))
    assert _ffmpeg_children() == before


def running(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def silent_wav(seconds: float, rate: int = 8000) -> bytes:
    """A long 16-bit mono WAV of silence, made without synthesising every sample in Python."""
    pcm = bytes(round(seconds * rate) * 2)
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def test_a_worker_past_its_deadline_is_killed_and_replaced() -> None:
    """Twenty minutes of audio cannot decode in 50 ms: the worker is killed; the next request gets a new one."""
    pool = CodecPool(1)
    converter = AudioConverter(find_ffmpeg(), timeout=0.05, pool=pool)
    try:
        long_wav = silent_wav(20 * 60)
        with pytest.raises(AudioTimeout):
            await converter.to_model_wav(long_wav)
        assert pool.started == 1 and pool.pids() == []  # killed, not returned to the pool
        converter.timeout = 30
        assert (await converter.to_model_wav(make_voice_ogg(1.0))).duration == pytest.approx(1.0, abs=0.1)
        assert pool.started == 2
    finally:
        await pool.close()


async def test_a_worker_that_dies_mid_conversion_is_replaced() -> None:
    """A decoder crash (here the worker is killed from outside) fails that conversion only."""
    pool = CodecPool(1)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        await converter.to_model_wav(make_voice_ogg(0.5))  # the worker exists now
        [worker] = pool.pids()

        async def kill_soon() -> None:
            await asyncio.sleep(0.05)
            os.kill(worker, signal.SIGKILL)

        killer = asyncio.create_task(kill_soon())
        with pytest.raises(WorkerCrashed):
            await converter.to_model_wav(silent_wav(25 * 60))
        await killer
        assert (await converter.to_model_wav(make_voice_ogg(1.0))).duration == pytest.approx(1.0, abs=0.1)
        assert pool.started == 2
    [replacement] = pool.pids()  # a converter given a pool leaves it to its owner …
    await pool.close()
    assert pool.pids() == [] and not running(replacement)  # … who closes it


async def test_a_cancelled_conversion_kills_its_worker() -> None:
    """A conversion abandoned midway (the job cancelled at shutdown) leaves no worker half way through it."""
    async with AudioConverter(find_ffmpeg(), timeout=30) as converter:
        task = asyncio.create_task(converter.to_model_wav(silent_wav(25 * 60)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert converter.pool.pids() == []
        assert (await converter.to_model_wav(make_voice_ogg(1.0))).duration == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize(
    ("rate", "channels"), [(1, 1), (7_999, 1), (384_001, 1), (16_000, 65)], ids=["1hz", "7999hz", "384001hz", "65ch"]
)
async def test_formats_outside_sane_ranges_are_refused_before_decoding(
    converter: AudioConverter, rate: int, channels: int
) -> None:
    frames = 4000
    block = channels * 2
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    pcm = b"\x10\x00" * frames * channels
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    with pytest.raises(AudioError) as refused:
        await converter.to_model_wav(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert type(refused.value) is AudioError  # "couldn't read that audio", not "too long"
    assert "Hz" in str(refused.value) or "channels" in str(refused.value)


async def test_a_recording_declaring_more_than_the_cap_is_refused_before_decoding() -> None:
    async with AudioConverter(find_ffmpeg(), timeout=30, max_seconds=5) as converter:
        with pytest.raises(AudioTimeout, match="declares"):
            await converter.to_model_wav(make_wav(8.0, rate=8000))
        assert (await converter.to_model_wav(make_wav(4.0, rate=8000))).duration == pytest.approx(4.0)


def _ffmpeg_children() -> int:
    me = os.getpid()
    count = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().split()
        except OSError:
            continue
        if int(fields[3]) == me and "ffmpeg" in fields[1]:
            count += 1
    return count


def test_read_wav_tolerates_streaming_placeholder_sizes() -> None:
    good = make_wav(1.0, rate=24000)
    placeholder = good[:4] + struct.pack("<I", 0xFFFFFFFF) + good[8:40] + struct.pack("<I", 0xFFFFFFFF) + good[44:]
    with pytest.raises(InvalidWav):
        parse_wav(placeholder)  # the strict validator (like the API) refuses it …
    fixed = normalise_wav(placeholder)  # … and normalising rewrites exact sizes
    assert parse_wav(fixed.data).duration == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("data", [b"", b"RIFF", b"RIFF\x00\x00\x00\x00WAVE", b"not a wav at all........."])
def test_read_wav_rejects_non_wav(data: bytes) -> None:
    with pytest.raises(AudioError):
        read_wav(data)


async def test_input_cannot_make_ffmpeg_open_other_files(converter: AudioConverter, tmp_path) -> None:
    """A "voice note" that is really a playlist pointing at a local file must not be followed.

    Current ffmpeg already declines to sniff a playlist from a pipe; the pipe-only protocol whitelist
    is the second wall, should a future build be more willing."""
    secret = tmp_path / "secret.wav"
    secret.write_bytes(make_wav(2.0, rate=16000))
    for reference in (f"file://{secret}", str(secret), "http://127.0.0.1:9/x.wav"):
        playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{reference}\n#EXT-X-ENDLIST\n".encode()
        with pytest.raises(AudioError):
            await converter.to_model_wav(playlist)


async def test_a_voice_stream_fed_in_odd_pieces_makes_the_whole_note() -> None:
    """Pieces as a streaming model sends them (sizes vary, and need not end on a sample boundary)."""
    pcm = read_wav(make_wav(6.3, rate=24000)).pcm
    async with AudioConverter(find_ffmpeg(), timeout=30) as converter:
        stream = await converter.open_voice_stream(rate=24000)
        at, sizes = 0, [4801, 9600, 1, 333, 48_000, 7]
        while at < len(pcm):
            size = sizes[at % len(sizes)]
            await stream.add(pcm[at : at + size])
            at += size
        ogg = await stream.finish()
    assert stream.seconds == pytest.approx(6.3)
    assert ogg.startswith(b"OggS") and ogg_opus_duration(ogg) == pytest.approx(6.3, abs=0.1)


async def test_voice_streams_interleave_on_one_worker_without_holding_it() -> None:
    """Two replies streaming at once on a single worker, and a voice note decoded in between: an open
    stream keeps its encoder on the worker, not the worker itself."""
    a, b = read_wav(make_wav(3.0, rate=24000)).pcm, read_wav(make_wav(2.0, rate=24000, freq=880)).pcm
    pool = CodecPool(1)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        first, second = await converter.open_voice_stream(rate=24000), await converter.open_voice_stream(rate=24000)
        for i in range(0, 48_000 * 3, 24_000):
            await first.add(a[i : i + 24_000])
            if i < len(b):
                await second.add(b[i : i + 24_000])
            note = await asyncio.wait_for(converter.to_model_wav(make_voice_ogg(0.5)), timeout=10)
            assert note.duration == pytest.approx(0.5, abs=0.1)
        one, two = await first.finish(), await second.finish()
    await pool.close()
    assert ogg_opus_duration(one) == pytest.approx(3.0, abs=0.1)
    assert ogg_opus_duration(two) == pytest.approx(2.0, abs=0.1)
    assert pool.started == 1


async def test_a_voice_stream_whose_worker_died_fails_plainly_and_the_pool_goes_on() -> None:
    pool = CodecPool(1)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        stream = await converter.open_voice_stream(rate=24000)
        await stream.add(bytes(48_000 * 2))
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed):
            await stream.add(bytes(48_000 * 2))
            await stream.finish()
        again = await converter.open_voice_stream(rate=24000)
        await again.add(bytes(24_000 * 2))
        assert ogg_opus_duration(await again.finish()) == pytest.approx(1.0, abs=0.1)
    await pool.close()
    assert pool.pids() == []


async def test_a_voice_stream_longer_than_the_cap_is_stopped() -> None:
    async with AudioConverter(find_ffmpeg(), timeout=30, max_seconds=2) as converter:
        stream = await converter.open_voice_stream(rate=24000)
        await stream.add(bytes(24_000 * 2))
        with pytest.raises(AudioTimeout):
            await stream.add(bytes(24_000 * 2 * 2))
        with pytest.raises(AudioError):
            await stream.finish()


async def test_a_hundred_voice_streams_at_once_fit_two_workers() -> None:
    """A burst of replies streaming together: every open encoder lives on a worker under its address-space
    cap (FFmpeg's encoder threads get small stacks, or some thirty streams would exhaust it)."""
    pool = CodecPool(2)
    async with AudioConverter(find_ffmpeg(), timeout=60, pool=pool) as converter:
        streams = [await converter.open_voice_stream(rate=24000) for _ in range(100)]
        for stream in streams:
            await stream.add(read_wav(make_wav(1.0, rate=24000)).pcm)
        notes = [await stream.finish() for stream in streams]
    await pool.close()
    assert pool.started == 2
    assert all(ogg_opus_duration(note) == pytest.approx(1.0, abs=0.1) for note in notes)


async def test_the_pool_started_at_boot_serves_without_starting_more() -> None:
    """The bot starts every worker at boot, so no voice note waits for one to load FFmpeg's libraries."""
    pool = CodecPool(2)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        await converter.start()
        assert pool.started == 2 and len(pool.pids()) == 2
        await converter.start()  # running workers are kept, not started again
        notes = await asyncio.gather(*(converter.to_model_wav(make_voice_ogg(1.0)) for _ in range(4)))
        assert all(note.duration == pytest.approx(1.0, abs=0.1) for note in notes)
        assert pool.started == 2
        dead = pool.pids()[0]
        os.kill(dead, signal.SIGKILL)
        for _ in range(500):  # until the pool has seen it die
            if dead not in pool.pids():
                break
            await asyncio.sleep(0.02)
        await converter.start()  # one that died is replaced
        assert pool.started == 3 and len(pool.pids()) == 2
    await pool.close()
    assert pool.pids() == []


def _decoded(data: bytes, part: tuple[int, int] = (0, 1)) -> bytes:
    """As a worker decodes: a voice note by libopus alone, anything else by FFmpeg's libraries."""
    from parley.audio import codec, opus

    pieces: list[bytes] = []
    if opus.decode_ogg(data, rate=MODEL_SAMPLE_RATE, max_seconds=60, emit=pieces.append, part=part) is None:
        codec.decode(data, rate=MODEL_SAMPLE_RATE, max_seconds=60, emit=pieces.append, part=part)
    return b"".join(pieces)


@pytest.mark.parametrize("count", [2, 3])
def test_a_voice_note_decoded_in_parts_is_the_whole_note(count: int) -> None:
    """Parts cut mid-note join sample for sample: each part settles its decoder on the audio before its
    start, and every packet lands in exactly one part."""
    note = make_speech_ogg("The early train leaves at seven, so set an alarm for six. " * 3) or make_voice_ogg(12.0)
    whole = _decoded(note)
    parts = [_decoded(note, (index, count)) for index in range(count)]
    assert all(parts) and _close(b"".join(parts), whole)


def _close(one: bytes, other: bytes) -> bool:
    """The same length, and no sample more than the last bit apart."""
    a, b = array.array("h", one), array.array("h", other)
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) <= 1


def test_a_recording_that_cannot_be_cut_is_its_first_part() -> None:
    mp3 = make_mp3(3.0)
    assert _decoded(mp3, (0, 2)) == _decoded(mp3) and _decoded(mp3, (1, 2)) == b""


async def test_a_long_voice_note_is_shared_by_idle_workers() -> None:
    note = make_voice_ogg(25.0, freq=300.0)
    alone = CodecPool(1)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=alone) as converter:
        one = await converter.to_model_wav(note)
    pool = CodecPool(2)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        await converter.start()
        assert converter._parts(note) == 2 and converter._parts(make_voice_ogg(3.0)) == 1
        shared = await converter.to_model_wav(note)
    await alone.close()
    await pool.close()
    assert shared.data[:44] == one.data[:44] and _close(shared.pcm, one.pcm)
    assert shared.duration == pytest.approx(25.0, abs=0.01)
