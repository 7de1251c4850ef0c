"""Edge cases of the in-process codec (parley.audio.codec) with the real libraries: page boundaries of the
OGG writer, decoding without libopus, how many parts a long note is cut into."""

from __future__ import annotations

import io
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from lab.audio import ffmpeg_exe, make_voice_ogg, make_wav
from parley.audio import MODEL_SAMPLE_RATE, AudioConverter, CodecPool, codec, find_ffmpeg, opus, read_wav
from parley.audio.bounds import CodecError
from parley.audio.worker import MAX_PARTS
from parley.errors import AudioTooLong

RATE = 24_000

FFMPEG_LIBRARIES = ("libavcodec", "libavformat", "libavutil", "libswresample")


def _pages(data: bytes) -> list[tuple[int, int, int]]:
    """(flags, granule, segment count) of every page."""
    pages, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS"
        flags, granule, count = data[at + 5], struct.unpack_from("<q", data, at + 6)[0], data[at + 26]
        pages.append((flags, granule, count))
        at += 27 + count + sum(data[at + 27 : at + 27 + count])
    return pages


def _lengths() -> Iterator[int]:
    """Reply lengths around whole pages of packets once the encoder's padding is added, and some others."""
    probe = opus.VoiceEncoder(rate=RATE)
    frame, lookahead = probe.frame, probe.lookahead
    probe.finish()
    for pages in (1, 2):
        whole = pages * opus.PAGE_PACKETS * frame
        for k in (0, 1, 20, frame - 1, frame, frame + 1):
            yield whole - lookahead - k
    yield from (frame, 3 * RATE + 7, 5 * RATE)


@pytest.mark.parametrize("samples", list(_lengths()))
def test_granules_never_decrease_and_the_last_page_ends_the_reply(samples: int) -> None:
    pcm = make_wav(samples / RATE, rate=RATE)
    wav = read_wav(pcm)
    body = wav.pcm[: 2 * samples].ljust(2 * samples, b"\x00")
    encoder = opus.VoiceEncoder(rate=RATE)
    ogg = encoder.feed(body) + encoder.finish()
    pre_skip = struct.unpack_from("<H", ogg, 28 + 10)[0]
    audio = _pages(ogg)[2:]
    granules = [granule for _, granule, _ in audio]
    assert granules == sorted(granules)
    assert [flags for flags, _, _ in audio] == [0] * (len(audio) - 1) + [0x04]
    assert all(count > 0 for _, _, count in audio)  # the EOS page carries packets, so its granule trims them
    assert granules[-1] == pre_skip + samples * (48_000 // RATE)
    with av.open(io.BytesIO(ogg)) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == samples * (48_000 // RATE)  # FFmpeg applies the pre-skip and the end trim


@pytest.fixture
def without_libopus(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """A process in which libopus cannot be found; yields a list that grows by one per lookup."""
    lookups: list[int] = []

    def missing() -> None:
        lookups.append(1)
        return None

    monkeypatch.setattr(opus, "_libopus_path", missing)
    opus.libopus_loaded.cache_clear()
    yield lookups
    opus.libopus_loaded.cache_clear()


def test_without_libopus_voice_notes_decode_through_ffmpeg(without_libopus: list[int]) -> None:
    note = make_voice_ogg(3.0)
    for _ in range(2):
        pieces: list[bytes] = []
        assert opus.decode_ogg(note, rate=MODEL_SAMPLE_RATE, max_seconds=60, emit=pieces.append) is None
        decoded = codec.decode(note, rate=MODEL_SAMPLE_RATE, max_seconds=60, emit=pieces.append)
        assert decoded.seconds == pytest.approx(3.0, abs=0.05)
        assert len(b"".join(pieces)) == 2 * round(decoded.seconds * MODEL_SAMPLE_RATE)
    assert len(without_libopus) == 1  # the failed lookup is remembered
    with pytest.raises(CodecError):
        opus.VoiceEncoder(rate=RATE)  # encoding still needs it, and says so as a codec error


def test_a_very_long_note_is_cut_into_no_more_parts_than_a_worker_takes() -> None:
    note = bytearray(make_voice_ogg(1.0))
    last = note.rfind(b"OggS")
    note[last + 6 : last + 14] = (20 * MAX_PARTS * 48_000 * 10).to_bytes(8, "little")  # far past MAX_PARTS cuts
    converter = AudioConverter(find_ffmpeg(), timeout=30, pool=CodecPool(MAX_PARTS + 8))  # all idle, unstarted
    assert converter._parts(bytes(note)) == MAX_PARTS


def _m4a(path: Path, *, seconds: float) -> bytes:
    """A tone in M4A as ffmpeg writes it by default (AAC, the index at the end)."""
    tone = ["-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"]
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", *tone, str(path)], check=True, timeout=60)
    return path.read_bytes()


def _mapped(pid: int) -> set[str]:
    """The file names of the shared libraries a process has mapped."""
    with open(f"/proc/{pid}/maps") as maps:
        return {os.path.basename(line.split()[-1]) for line in maps if "/" in line}


def _libopus(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(("libopus.so", "libopus-"))}


async def test_a_worker_loads_ffmpegs_libraries_only_for_an_input_that_needs_them(tmp_path: Path) -> None:
    """Voice notes in and replies out are OGG/Opus, which a worker reads, decodes and writes without FFmpeg;
    an MP4 still decodes on the same worker afterwards, which only then maps FFmpeg's libraries, and they
    use the libopus the worker had already loaded."""
    m4a = _m4a(tmp_path / "a.m4a", seconds=2.5)
    pool = CodecPool(1)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=pool) as converter:
        await converter.start()
        [pid] = pool.pids()
        note = await converter.to_model_wav(make_voice_ogg(3.0))
        assert note.duration == pytest.approx(3.0, abs=0.05)
        reply = read_wav(make_wav(2.0, rate=RATE))
        stream = await converter.open_voice_stream(rate=RATE)
        await stream.add(reply.pcm)
        streamed = await stream.finish()
        whole = await converter.to_voice_ogg(reply)
        assert streamed.startswith(b"OggS") and whole.startswith(b"OggS")
        voice_only = _mapped(pid)
        assert not {name for name in voice_only if name.startswith(FFMPEG_LIBRARIES)}
        assert len(_libopus(voice_only)) == 1

        decoded = await converter.to_model_wav(m4a)
        assert decoded.duration == pytest.approx(2.5, abs=0.1)
        assert pool.pids() == [pid]
        after = _mapped(pid)
        assert {name.partition("-")[0].partition(".")[0] for name in after} >= set(FFMPEG_LIBRARIES)
        assert _libopus(after) == _libopus(voice_only)
    await pool.close()


@pytest.mark.parametrize("pre_skip", [2_000, 30_000])
def test_a_pre_skip_longer_than_the_first_packet_is_dropped_as_ffmpeg_drops_it(pre_skip: int) -> None:
    """The OpusHead's pre-skip counts samples, not packets: one longer than the first packet drops from the
    packets after it as well, so the Python reader yields what FFmpeg's decoder does."""
    note = bytearray(make_voice_ogg(1.0))
    struct.pack_into("<H", note, 28 + 10, pre_skip)  # the OpusHead's pre-skip
    note[22:26] = bytes(4)
    note[22:26] = opus.ogg_crc(bytes(note[: _page_end(note, 0)])).to_bytes(4, "little")
    ours: list[bytes] = []
    ffmpegs: list[bytes] = []
    assert opus.decode_ogg(bytes(note), rate=48_000, max_seconds=60, emit=ours.append) is not None
    codec.decode(bytes(note), rate=48_000, max_seconds=60, emit=ffmpegs.append)
    assert len(b"".join(ours)) == len(b"".join(ffmpegs)) < 2 * (48_000 + 312 - pre_skip + 1)


def _page(serial: int, sequence: int, granule: int, flags: int, packets: list[bytes]) -> bytes:
    lacing = bytes(len(packet) for packet in packets)  # packets shorter than 255 bytes
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, sequence, 0, len(lacing))
    page = bytearray(header + lacing + b"".join(packets))
    struct.pack_into("<I", page, 22, opus.ogg_crc(page))
    return bytes(page)


def _page_end(data: bytes, at: int) -> int:
    body = at + 27 + data[at + 26]
    return body + sum(data[at + 27 : body])


def _tiny_packet_flood(size: int) -> bytes:
    """A real voice note's OpusHead and OpusTags, then pages of 255 one-byte Opus packets (the note's own table
    of contents and no frame, which libopus conceals as a lost frame) up to `size` bytes: hours of audio in a
    few megabytes, under granule positions that claim seconds."""
    note = make_voice_ogg(1.0)
    serial = struct.unpack_from("<I", note, 14)[0]
    tags_end = _page_end(note, _page_end(note, 0))  # past the OpusHead and OpusTags pages
    toc = note[tags_end + 27 + note[tags_end + 26]]  # the first audio packet's first byte
    granule = 255 * opus._packet_samples(bytes((toc,)))
    pages, sequence, total = [note[:tags_end]], 2, tags_end
    while total < size:
        pages.append(_page(serial, sequence, granule, 0, [bytes((toc,))] * 255))
        total, sequence = total + len(pages[-1]), sequence + 1
    pages.append(_page(serial, sequence, granule, 0x04, [bytes((toc,))]))
    return b"".join(pages)


async def test_a_flood_of_tiny_packets_is_refused_as_too_long_before_it_fills_a_worker() -> None:
    """Telegram's largest download of one-byte packets is hours of audio: the reader stops at the cap as it
    counts them, instead of holding millions of packets until the worker runs out of memory."""
    flood = _tiny_packet_flood(20 * 1024 * 1024)
    async with AudioConverter(find_ffmpeg(), timeout=30, pool=CodecPool(1)) as converter:
        with pytest.raises(AudioTooLong):
            await converter.to_model_wav(flood)
