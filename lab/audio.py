"""Test audio made at test time, and strict checks of audio the application produces.

Nothing here is shipped as a fixture file: tones are synthesised (ffmpeg's lavfi or pure Python) so the
tests never depend on binary blobs, and the validators are deliberately stricter than most decoders so a
subtly broken file (for example a WAV piped out of ffmpeg with placeholder RIFF sizes) is caught in tests
instead of by the real API in production.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache

from parley.audio.ffmpeg_cli import find_ffmpeg

_TIMEOUT = 60.0
_PCM = 1
_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM: the sub-format GUID that makes a WAVE_FORMAT_EXTENSIBLE file plain PCM.
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")


class AudioDecodeError(ValueError):
    """The bytes are not audio ffmpeg can decode."""


class InvalidWav(ValueError):
    """The bytes are not a well-formed PCM WAV file (the reason says which rule failed)."""


class InvalidOgg(ValueError):
    """The bytes are not a decodable OGG/Opus stream (what Telegram expects for a voice note)."""


@dataclass(frozen=True)
class WavInfo:
    """What a valid WAV file declares about itself."""

    rate: int
    channels: int
    bits: int
    frames: int
    duration: float


ffmpeg_exe = cache(find_ffmpeg)
"""The ffmpeg binary the lab makes and measures test audio with: the one Parley itself runs (found once)."""


def _ffmpeg(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=_TIMEOUT,
        check=False,
    )


def _ffmpeg_ok(args: list[str], stdin: bytes | None = None) -> bytes:
    proc = _ffmpeg(args, stdin)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"ffmpeg {' '.join(args)} failed: {proc.stderr.decode(errors='replace')[-800:]}")
    return proc.stdout


def make_voice_ogg(seconds: float = 2.0, freq: float = 440.0) -> bytes:
    """An OGG/Opus mono 48 kHz tone, shaped like the voice note a Telegram client uploads."""
    return _ffmpeg_ok(
        [
            "-f", "lavfi",
            "-i", f"sine=frequency={freq}:sample_rate=48000:duration={seconds}",
            "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "pipe:1",
        ]
    )  # fmt: skip


def make_speech_ogg(text: str) -> bytes | None:
    """Real synthetic speech (espeak-ng) as OGG/Opus, or None when espeak-ng is not installed."""
    espeak = shutil.which("espeak-ng")
    if not espeak:
        return None
    proc = subprocess.run([espeak, "--stdout", text], capture_output=True, timeout=_TIMEOUT, check=False)
    if proc.returncode != 0 or not proc.stdout:
        return None
    return _ffmpeg_ok(
        ["-i", "pipe:0", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-f", "ogg", "pipe:1"],
        stdin=proc.stdout,
    )


def make_wav(seconds: float, rate: int = 24000, freq: float = 440.0) -> bytes:
    """A correct 16-bit mono PCM WAV tone built in Python (sizes exact, no ffmpeg involved)."""
    frames = max(0, round(seconds * rate))
    amplitude = 0.3 * 32767
    step = 2.0 * math.pi * freq / rate
    samples = struct.pack(f"<{frames}h", *(int(amplitude * math.sin(step * i)) for i in range(frames)))
    return _wav_bytes(samples, rate=rate, channels=1, bits=16)


def _wav_bytes(pcm: bytes, *, rate: int, channels: int, bits: int) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", _PCM, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    if len(pcm) % 2:
        body += b"\x00"
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_mp3(seconds: float, freq: float = 440.0) -> bytes:
    """An MP3 (MPEG-1 layer III, libmp3lame) mono tone."""
    return _ffmpeg_ok(
        [
            "-f", "lavfi",
            "-i", f"sine=frequency={freq}:sample_rate=44100:duration={seconds}",
            "-ac", "1", "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", "pipe:1",
        ]
    )  # fmt: skip


def parse_wav(data: bytes, *, allow_empty: bool = False) -> WavInfo:
    """Validate a PCM WAV strictly and describe it; raise InvalidWav naming the first broken rule.

    Stricter than ffmpeg on purpose: the RIFF size must equal len(data) - 8 and the data chunk size must be
    exact, which is what a WAV streamed through a pipe (sizes left as 0xFFFFFFFF or 0) gets wrong.
    """
    if len(data) < 12:
        raise InvalidWav(f"too short for a RIFF header ({len(data)} bytes)")
    if data[:4] != b"RIFF":
        raise InvalidWav(f"does not start with 'RIFF' (starts with {data[:4]!r})")
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if riff_size != len(data) - 8:
        raise InvalidWav(f"RIFF size field is {riff_size:#x} but the file has {len(data) - 8} bytes after it")
    if data[8:12] != b"WAVE":
        raise InvalidWav(f"RIFF form type is {data[8:12]!r}, not 'WAVE'")
    fmt: tuple[int, int, int, int, int, int] | None = None
    data_size: int | None = None
    pos = 12
    while pos < len(data):
        if len(data) - pos < 8:
            raise InvalidWav(f"{len(data) - pos} stray bytes at offset {pos}, too few for a chunk header")
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body_start = pos + 8
        if chunk_id == b"data" and size in (0, 0xFFFFFFFF) and len(data) - body_start > 0:
            raise InvalidWav(
                f"data chunk size is the placeholder {size:#x} while {len(data) - body_start} bytes follow"
            )
        if size > len(data) - body_start:
            raise InvalidWav(
                f"chunk {chunk_id!r} at offset {pos} declares {size} bytes but only {len(data) - body_start} remain"
            )
        if chunk_id == b"fmt ":
            if fmt is not None:
                raise InvalidWav("more than one fmt chunk")
            if size < 16:
                raise InvalidWav(f"fmt chunk is {size} bytes, needs at least 16")
            fmt = struct.unpack_from("<HHIIHH", data, body_start)
            if fmt[0] == _EXTENSIBLE:
                if size < 40 or data[body_start + 24 : body_start + 40] != _PCM_GUID:
                    raise InvalidWav("WAVE_FORMAT_EXTENSIBLE whose sub-format is not PCM")
            elif fmt[0] != _PCM:
                raise InvalidWav(f"audio format {fmt[0]} is not PCM (1)")
        elif chunk_id == b"data":
            if fmt is None:
                raise InvalidWav("data chunk before the fmt chunk")
            if data_size is not None:
                raise InvalidWav("more than one data chunk")
            data_size = size
        pos = body_start + size + (size & 1)
        if pos > len(data) and pos - 1 == len(data):
            raise InvalidWav(f"chunk {chunk_id!r} has an odd size but its pad byte is missing")
    if fmt is None:
        raise InvalidWav("no fmt chunk")
    if data_size is None:
        raise InvalidWav("no data chunk")
    _, channels, rate, byte_rate, block_align, bits = fmt
    if channels < 1:
        raise InvalidWav("zero channels")
    if rate < 1:
        raise InvalidWav("zero sample rate")
    if bits not in (8, 16, 24, 32):
        raise InvalidWav(f"{bits} bits per sample is not a PCM sample size")
    if block_align != channels * bits // 8:
        raise InvalidWav(f"block align {block_align} != channels*bits/8 = {channels * bits // 8}")
    if byte_rate != rate * block_align:
        raise InvalidWav(f"byte rate {byte_rate} != rate*block_align = {rate * block_align}")
    if data_size % block_align:
        raise InvalidWav(f"data size {data_size} is not a whole number of {block_align}-byte frames")
    frames = data_size // block_align
    if frames == 0 and not allow_empty:
        raise InvalidWav("data chunk holds no audio frames")
    return WavInfo(rate=rate, channels=channels, bits=bits, frames=frames, duration=frames / rate)


def _decode_pcm_seconds(data: bytes, *, suffix: str = "") -> float:
    """Decode with ffmpeg to 16 kHz mono s16le and measure; a temp file lets ffmpeg seek (MP4/M4A)."""
    rate = 16000
    with tempfile.TemporaryDirectory(prefix="lab-audio-") as tmp:
        path = os.path.join(tmp, "input" + suffix)
        with open(path, "wb") as fh:
            fh.write(data)
        proc = _ffmpeg(["-i", path, "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le", "pipe:1"])
    if proc.returncode != 0 or not proc.stdout:
        raise AudioDecodeError(
            f"ffmpeg could not decode {len(data)} bytes: {proc.stderr.decode(errors='replace')[-400:].strip()}"
        )
    return len(proc.stdout) / 2 / rate


def ogg_opus_duration(data: bytes) -> float:
    """Duration of an OGG/Opus stream, after checking it really is one and that it decodes."""
    if not data.startswith(b"OggS"):
        raise InvalidOgg(f"does not start with 'OggS' (starts with {data[:4]!r})")
    if b"OpusHead" not in data[:512]:
        raise InvalidOgg("OGG stream without an OpusHead header: not Opus")
    try:
        return _decode_pcm_seconds(data, suffix=".ogg")
    except AudioDecodeError as exc:
        raise InvalidOgg(str(exc)) from exc


def ogg_seconds(data: bytes) -> float:
    """Duration of an OGG stream read from its pages, as a server reads it without decoding: the last page's
    granule position, less Opus's pre-skip, over the codec's granule rate (48 kHz for Opus, the sample rate for
    Vorbis). The pages must tile the file exactly, start with the codec's identification header, and end in a
    granule past it; raises AudioDecodeError otherwise (a truncated or patched file)."""
    at, granule, head = 0, -1, b""
    while at < len(data):
        if data[at : at + 4] != b"OggS" or len(data) < at + 27 or data[at + 4] != 0:
            raise AudioDecodeError(f"no OGG page at offset {at}")
        segments = data[at + 26]
        table = data[at + 27 : at + 27 + segments]
        end = at + 27 + segments + sum(table)
        if len(table) < segments or end > len(data):
            raise AudioDecodeError(f"the OGG page at offset {at} runs past the end of the file")
        if at == 0:
            head = data[at + 27 + segments : end]
        page_granule = int.from_bytes(data[at + 6 : at + 14], "little", signed=True)
        granule = page_granule if page_granule != -1 else granule
        at = end
    if head.startswith(b"OpusHead") and len(head) >= 19:
        rate, skip = 48_000, int.from_bytes(head[10:12], "little")
    elif head.startswith(b"\x01vorbis") and len(head) >= 16:
        rate, skip = int.from_bytes(head[12:16], "little"), 0
    else:
        raise AudioDecodeError("an OGG stream of neither Opus nor Vorbis")
    if rate <= 0 or granule <= skip:
        raise AudioDecodeError("an OGG stream without audio")
    return (granule - skip) / rate


def ogg_packets(data: bytes) -> list[bytes]:
    """The packets of an OGG file's first logical stream, reassembled across pages (headers included): what a
    server reads of it. Raises AudioDecodeError at anything that is not an OGG page."""
    packets: list[bytes] = []
    partial = b""
    at, serial = 0, None
    while at < len(data):
        if data[at : at + 4] != b"OggS" or len(data) < at + 27:
            raise AudioDecodeError(f"no OGG page at offset {at}")
        segments = data[at + 26]
        table = data[at + 27 : at + 27 + segments]
        offset = at + 27 + segments
        page_serial = data[at + 14 : at + 18]
        serial = serial or page_serial
        for size in table:
            if page_serial == serial:
                partial += data[offset : offset + size]
                if size < 255:
                    packets.append(partial)
                    partial = b""
            offset += size
        at = offset
    return packets


def opus_comments(data: bytes) -> tuple[bytes, list[bytes]]:
    """The vendor string and the comments ("TITLE=…", "location=…") of an OGG/Opus file's OpusTags."""
    tags = ogg_packets(data)[1]
    if not tags.startswith(b"OpusTags"):
        raise AudioDecodeError("no OpusTags")
    (size,) = struct.unpack_from("<I", tags, 8)
    vendor, at = tags[12 : 12 + size], 12 + size
    comments = []
    for _ in range(struct.unpack_from("<I", tags, at)[0]):
        (length,) = struct.unpack_from("<I", tags, at + 4)
        comments.append(tags[at + 8 : at + 8 + length])
        at += 4 + length
    return vendor, comments


def decode_duration(data: bytes) -> float:
    """Duration of anything ffmpeg can decode (raises AudioDecodeError otherwise)."""
    return _decode_pcm_seconds(data)


_MP3_BITRATES = {
    # (MPEG-1?, layer) -> kbit/s by bitrate index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(data: bytes, i: int) -> int | None:
    """Length of the MPEG audio frame whose header starts at i, or None if there is no valid header."""
    if i + 4 > len(data) or data[i] != 0xFF or data[i + 1] & 0xE0 != 0xE0:
        return None
    version = (data[i + 1] >> 3) & 0x03  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 = reserved
    layer = 4 - ((data[i + 1] >> 1) & 0x03)  # 4 would be the reserved layer bits 00
    bitrate_index, rate_index = data[i + 2] >> 4, (data[i + 2] >> 2) & 0x03
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _MP3_BITRATES[(mpeg1, layer)][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (data[i + 2] >> 1) & 0x01
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    per_frame = 144 if (mpeg1 or layer == 2) else 72
    return per_frame * bitrate // rate + padding


def _is_mp3(data: bytes) -> bool:
    """MPEG audio: (optional ID3v2 tag, then) two consecutive valid frame headers near the start."""
    pos = 0
    if data.startswith(b"ID3") and len(data) >= 10:
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
        pos = 10 + size
    for i in range(pos, min(len(data) - 3, pos + 4096)):
        length = _mp3_frame_length(data, i)
        if length is None or length < 24:
            continue
        following = i + length
        if following == len(data) or _mp3_frame_length(data, following) is not None:
            return True
    return False


def sniff_audio_format(data: bytes) -> str | None:
    """Format by magic bytes: wav, mp3, ogg, opus (OGG/Opus), flac, m4a, webm, aac (ADTS) or None."""
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"OggS"):
        return "opus" if b"OpusHead" in data[:512] else "ogg"
    if data.startswith(b"fLaC"):
        return "flac"
    if data[4:8] == b"ftyp":
        return "m4a"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if len(data) > 7 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0:
        return "aac"  # ADTS
    if _is_mp3(data):
        return "mp3"
    return None
