"""libopus through ctypes, and OGG/Opus pages written in Python: the voice note's codec without FFmpeg.

The library is the very libopus FFmpeg's `libopus` encoder wraps: the copy already mapped into this
process with FFmpeg's libraries (a wheel of PyAV bundles its own under a mangled name), else the
system's."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import struct
import weakref
import zlib

from parley.audio.bounds import CodecError

OPUS_RATES = (8_000, 12_000, 16_000, 24_000, 48_000)
VOICE_BITRATE = 32_000
"""Mono Opus at 32 kbit/s, constrained VBR (plain VBR overshoots on tonal sound): minutes of reply stay
under the 1 MB above which Telegram draws no waveform."""

VOICE_COMPLEXITY = 1
"""libopus' "audio" mode at complexity 1, not "voip" at the default 10: several times faster for a small
loss of fidelity that speech does not show. Complexities 1 to 4 differ by a tenth of a decibel of
log-spectral distance on speech, and 1 costs the least of them; 0 skips more of the analysis and is
clearly worse. "voip" (SILK for speech) costs several times as much; 7 and up add the slow tonality
analysis. (The README's audio section has the figures.)"""

VOICE_FRAME_MS = 60
"""Opus frames of 60 ms instead of 20: fewer frames to pack, hardly measurable in quality."""

APPLICATION_AUDIO = 2049
"""libopus' OPUS_APPLICATION_AUDIO: CELT for speech at this bitrate. OPUS_APPLICATION_VOIP (SILK for speech)
costs several times as much here."""

_SET_BITRATE, _SET_VBR, _SET_VBR_CONSTRAINT, _SET_COMPLEXITY, _GET_LOOKAHEAD = 4002, 4006, 4020, 4010, 4027
_SET_GAIN = 4034
"""opus_encoder_ctl and opus_decoder_ctl requests (opus_defines.h, a stable ABI)."""

MAX_PACKET = 4000
"""libopus' own recommendation for the output buffer: larger than any packet it writes."""

PAGE_PACKETS = 16
"""Packets per OGG page: about a second of audio, as FFmpeg's muxer pages it."""


class _Libopus:
    """libopus' encoder API (opus.h) called directly through ctypes, on the very library FFmpeg's `libopus`
    encoder wraps (the one PyAV loaded; else the system's). Through PyAV, the same encoding cost a third more
    CPU: every frame passes a filter graph that cuts it to the codec's frame size, an encoder wrapper and a
    muxer, each with its own copies and Python calls; here a reply is one call per Opus packet, and no
    FFmpeg frame pools or encoder threads stay behind for an open stream."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self.create = lib.opus_encoder_create
        self.create.restype = ctypes.c_void_p
        self.create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        self.ctl = lib.opus_encoder_ctl  # variadic: each request takes one int or one int pointer
        self.ctl.restype = ctypes.c_int
        self.encode = lib.opus_encode
        self.encode.restype = ctypes.c_int32
        self.encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int32]
        self.destroy = lib.opus_encoder_destroy
        self.destroy.restype = None
        self.destroy.argtypes = [ctypes.c_void_p]
        self.decoder = _LibopusDecoder(lib)
        version = lib.opus_get_version_string
        version.restype = ctypes.c_char_p
        self.version: bytes = version() or b"libopus"


class _LibopusDecoder:
    """libopus' decoder API (opus.h), beside the encoder's."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.create = lib.opus_decoder_create
        self.create.restype = ctypes.c_void_p
        self.create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        self.ctl = lib.opus_decoder_ctl
        self.ctl.restype = ctypes.c_int
        self.decode = lib.opus_decode
        self.decode.restype = ctypes.c_int
        pointer, data = ctypes.c_void_p, ctypes.c_char_p
        self.decode.argtypes = [pointer, data, ctypes.c_int32, data, ctypes.c_int, ctypes.c_int]
        self.destroy = lib.opus_decoder_destroy
        self.destroy.restype = None
        self.destroy.argtypes = [ctypes.c_void_p]


def _libopus() -> _Libopus:
    lib = libopus_loaded()
    if lib is None:
        raise CodecError("unreadable", "libopus is not available to encode voice notes")
    return lib


@functools.cache
def libopus_loaded() -> _Libopus | None:
    """libopus through ctypes, or None when it cannot be found or loaded; looked up once per process, so a
    host without it pays for the search once, and voice notes then decode through FFmpeg's own decoder."""
    path = _libopus_path()
    if path is None:
        return None
    try:
        return _Libopus(path)
    except (OSError, AttributeError):  # not loadable, or a library without the Opus API
        return None


def _libopus_path() -> str | None:
    """The libopus already mapped into this process with FFmpeg's libraries (a wheel of PyAV bundles its own
    copy under a mangled name), else the system's, else None."""
    import ctypes.util

    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rstrip("\n").partition("/")[2]
            if path and os.path.basename(path).startswith(("libopus.", "libopus-")):  # not libopusfile, say
                return "/" + path
    return ctypes.util.find_library("opus")


class _OpusDecoder:
    """libopus' decoder at the rate the model takes: Opus decodes to 8, 12, 16, 24 or 48 kHz itself (CELT drops
    the bands above the output's Nyquist frequency before its inverse transform), so no resampler runs, and
    speech coded with SILK is not first resampled up to 48 kHz as FFmpeg's own decoder does. A stereo
    stream is mixed down by the decoder."""

    def __init__(self, rate: int, *, gain: int) -> None:
        lib = self.lib = _libopus().decoder
        error = ctypes.c_int()
        handle = lib.create(rate, 1, ctypes.byref(error))
        if not handle:
            raise CodecError("unreadable", f"libopus refused a decoder ({error.value})")
        self.handle = ctypes.c_void_p(handle)
        self._free = weakref.finalize(self, lib.destroy, self.handle)
        if gain:
            lib.ctl(self.handle, ctypes.c_int(_SET_GAIN), ctypes.c_int(gain))  # the OpusHead's output gain
        self.most = rate * 120 // 1000  # the longest Opus packet
        self.out = ctypes.create_string_buffer(2 * self.most)

    def decode(self, packet: bytes) -> bytes | None:
        """A packet's PCM, or None for a packet libopus refuses."""
        count = self.lib.decode(self.handle, packet, len(packet), self.out, self.most, 0)
        return None if count < 0 else ctypes.string_at(self.out, 2 * count)

    def close(self) -> None:
        self._free()


_REVERSED_BITS = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def _ogg_crc(page: bytes) -> int:
    """OGG's CRC-32 (polynomial 0x04C11DB7 unreflected, no initial or final XOR) computed by zlib in C: zlib's
    CRC-32 is the same polynomial reflected, so over bit-reversed bytes its result is the bit-reversed OGG
    CRC, once its initial and final XOR are cancelled by the CRC of as many zero bytes."""
    reflected = zlib.crc32(page.translate(_REVERSED_BITS)) ^ zlib.crc32(bytes(len(page)))
    return int(f"{reflected:032b}"[::-1], 2)


class _OggOpus:
    """An OGG/Opus stream (RFC 7845) written page by page: OpusHead, OpusTags, then pages of packets whose
    granule positions count 48 kHz samples; the last page's marks where the audio ends, so the padding that
    completes the last Opus frame is not played."""

    def __init__(self, *, pre_skip: int, input_rate: int, vendor: bytes) -> None:
        self.serial = random.getrandbits(32)
        self.sequence = 0
        self.pre_skip = pre_skip
        head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, input_rate, 0, 0)
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
        self.pages = [self._page([head], 0, 0x02), self._page([tags], 0, 0)]

    def add(self, packets: list[bytes], granule: int, *, last: bool = False) -> None:
        self.pages.append(self._page(packets, granule, 0x04 if last else 0))

    def take(self) -> bytes:
        """The pages written so far; none while only the headers are (a reply with no audio makes no note)."""
        if self.sequence <= 2:
            return b""
        data, self.pages = b"".join(self.pages), []
        return data

    def _page(self, packets: list[bytes], granule: int, flags: int) -> bytes:
        lacing = bytearray()
        for packet in packets:
            lacing += b"\xff" * (len(packet) // 255) + bytes((len(packet) % 255,))
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, self.serial, self.sequence, 0, len(lacing))
        page = bytearray(header + lacing)
        for packet in packets:
            page += packet
        struct.pack_into("<I", page, 22, _ogg_crc(bytes(page)))
        self.sequence += 1
        return bytes(page)
