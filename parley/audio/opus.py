"""Voice notes without FFmpeg: OGG/Opus read and written in Python, the audio decoded and encoded by libopus
through ctypes.

Both ends of a voice turn are Opus in OGG, so a codec worker serves them without loading FFmpeg's
libraries at all (about half of its memory); codec.py, which does load them, is imported only for an input
that needs it. The library is the very libopus FFmpeg's `libopus` encoder wraps (the copy PyAV's wheel
bundles, found without importing PyAV), else the system's."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import random
import struct
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from parley.audio.bounds import CHUNK_BYTES, CodecError, Decoded

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
    encoder wraps (see _libopus_path). Through PyAV, the same encoding cost a third more
    CPU: every frame passes a filter graph that cuts it to the codec's frame size, an encoder wrapper and a
    muxer, each with its own copies and Python calls; here a reply is one call per Opus packet, and no
    FFmpeg frame pools or encoder threads stay behind for an open stream."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        self.path = path
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
        self.decode.argtypes = [pointer, data, ctypes.c_int32, pointer, ctypes.c_int, ctypes.c_int]
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
    """The libopus FFmpeg's libraries use: the copy already mapped into this process (FFmpeg's libraries
    loaded it), else the one PyAV's wheel bundles under a mangled name in its `av.libs` directory (found
    without importing PyAV, whose libraries a worker loads only for an input that needs them), else the
    system's, else None. Whichever loads first is the one both use: the dynamic loader matches the
    bundled copy's name when FFmpeg's libraries ask for it."""
    import ctypes.util

    with contextlib.suppress(OSError), open("/proc/self/maps") as maps:
        for line in maps:
            path = line.rstrip("\n").partition("/")[2]
            if path and _is_libopus(os.path.basename(path)):
                return "/" + path
    return _bundled_libopus() or ctypes.util.find_library("opus")


def _is_libopus(name: str) -> bool:
    return name.startswith(("libopus.so", "libopus-")) and ".so" in name  # not libopusfile or libopusenc


def _bundled_libopus() -> str | None:
    """libopus in the `av.libs` directory beside the `av` package, as auditwheel lays out PyAV's wheel."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("av")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for package in spec.submodule_search_locations:
        libs = os.path.join(os.path.dirname(package), "av.libs")
        with contextlib.suppress(OSError):
            for name in sorted(os.listdir(libs)):
                if _is_libopus(name):
                    return os.path.join(libs, name)
    return None


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
        self.out = ctypes.create_string_buffer(CHUNK_BYTES + 2 * self.most)
        """Decoded PCM gathers here, packet after packet, until a piece of CHUNK_BYTES leaves: no bytes object
        per packet."""
        self.base = ctypes.addressof(self.out)

    def decode_into(self, packet: bytes, offset: int) -> int:
        """Decode a packet into `out` at byte `offset` (below CHUNK_BYTES); its samples, or a negative number
        for a packet libopus refuses."""
        return int(self.lib.decode(self.handle, packet, len(packet), self.base + offset, self.most, 0))

    def take(self, size: int) -> bytes:
        return ctypes.string_at(self.base, size)

    def drop(self, offset: int, skip: int, keep: int) -> None:
        """Drop `skip` bytes at `offset`, moving the `keep` after them down."""
        ctypes.memmove(self.base + offset, self.base + offset + skip, keep)

    def close(self) -> None:
        self._free()


_REVERSED_BITS = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(page: bytes | bytearray) -> int:
    """OGG's CRC-32 of a page whose CRC field is zero (see _mirrored_crc)."""
    return _mirrored_crc(page.translate(_REVERSED_BITS))


def _mirrored_crc(*mirrored: bytes | bytearray | memoryview) -> int:
    """OGG's CRC-32 (polynomial 0x04C11DB7 unreflected, no initial or final XOR) of a page given in pieces whose
    bytes are already bit-reversed (`translate(_REVERSED_BITS)`), computed by zlib in C: zlib's CRC-32 is the
    same polynomial reflected, so over bit-reversed bytes it runs OGG's register bit-reversed. zlib inverts
    the value it is given and the value it returns: given all ones, it starts from zero, and inverting the
    result cancels the other."""
    register = 0xFFFFFFFF
    for piece in mirrored:
        register = zlib.crc32(piece, register)
    return int.from_bytes((register ^ 0xFFFFFFFF).to_bytes(4, "little").translate(_REVERSED_BITS), "big")


class _OggOpus:
    """An OGG/Opus stream (RFC 7845) written page by page: OpusHead, OpusTags, then pages of packets whose
    granule positions count 48 kHz samples; the last page's marks where the audio ends, so the padding that
    completes the last Opus frame is not played."""

    def __init__(self, *, pre_skip: int, input_rate: int, vendor: bytes, channels: int = 1, gain: int = 0) -> None:
        self.serial = random.getrandbits(32)
        self.sequence = 0
        self.pre_skip = pre_skip
        head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, input_rate, gain, 0)
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
        struct.pack_into("<I", page, 22, ogg_crc(page))
        self.sequence += 1
        return bytes(page)


PREROLL_SECONDS = 0.8
"""A part that starts mid-recording decodes this much before its start and drops it: Opus predicts each
frame's band energies from the previous frame's, so a decoder started cold needs frames to converge (the
Ogg Opus specification asks for at least 80 ms; this much makes the parts join as the whole note decodes,
to the sample or within a step of the last bit)."""

MAX_PACKET_SAMPLES = 5760
"""The longest Opus packet, 120 ms at 48 kHz."""


@dataclass(frozen=True, slots=True)
class _OggOpusStream:
    """An OGG/Opus recording as the decoder needs it: its OpusHead's pre-skip and gain, and its audio packets
    with their timestamps (48 kHz samples, counted as FFmpeg's demuxer counts them: the first packet at
    minus the pre-skip), the end trimming its last page asks for, and its declared length (the last
    granule position)."""

    pre_skip: int
    gain: int
    channels: int
    packets: list[bytes]
    starts: list[int]
    end_trim: int
    declared: int


def _packet_samples(packet: bytes) -> int:
    """The 48 kHz samples in an Opus packet, from its table of contents (RFC 6716, 3.1); 0 if it is not one."""
    toc = packet[0]
    config = toc >> 3
    if config < 12:
        size = (480, 960, 1920, 2880)[config & 3]  # SILK
    elif config < 16:
        size = (480, 960)[config & 1]  # hybrid
    else:
        size = (120, 240, 480, 960)[config & 3]  # CELT
    code = toc & 3
    if code == 3:
        if len(packet) < 2:
            return 0
        count = packet[1] & 0x3F
    else:
        count = 2 if code else 1
    samples = size * count
    return samples if samples <= MAX_PACKET_SAMPLES else 0


def _read_ogg_opus(data: bytes, *, max_samples: int) -> _OggOpusStream | None:
    """The recording, if `data` is exactly one well-formed OGG/Opus stream of one or two channels (channel
    mapping family 0): every voice note a Telegram client records. Anything else, or anything damaged (a
    page whose CRC is wrong, pages missing, an upload cut off, a second stream), is None: it goes to
    FFmpeg, which reads what it can of it.

    Packets are counted as they are read, and more than `max_samples` of them (48 kHz) is too long at once:
    a packet can be a single byte, so the largest upload holds millions of them, which the worker would
    otherwise keep until its memory ran out. Empty packets carry nothing and are not kept at all."""
    if not data.startswith(b"OggS"):
        return None
    packets: list[bytes] = []
    starts: list[int] = []
    partial: list[bytes] = []
    serial = sequence = None
    first_page: tuple[int, int] | None = None  # (granule, audio samples completed on it)
    at = samples = granule = flags = 0
    mirrored = memoryview(data.translate(_REVERSED_BITS))  # for the CRCs: one pass over the whole file
    while at < len(data):
        if len(data) - at < 27 or data[at : at + 5] != b"OggS\x00":
            return None
        flags, granule, page_serial, page_sequence, crc, count = struct.unpack_from("<BqIIIB", data, at + 5)
        body = at + 27 + count
        end = body + sum(data[at + 27 : body])
        if end > len(data) or _mirrored_crc(mirrored[at : at + 22], bytes(4), mirrored[at + 26 : end]) != crc:
            return None
        if serial is None:
            if flags != 0x02:  # the first page begins the stream and continues nothing
                return None
            serial, sequence = page_serial, page_sequence
        elif page_serial != serial or page_sequence != sequence or flags & 0x02 or bool(flags & 0x01) != bool(partial):
            return None
        sequence = (page_sequence + 1) & 0xFFFFFFFF
        completed = 0
        offset = body
        for size in data[at + 27 : body]:
            partial.append(data[offset : offset + size])
            offset += size
            if size < 255:
                packet = b"".join(partial)
                partial = []
                if len(packets) >= 2:  # past OpusHead and OpusTags
                    if not packet:
                        continue
                    length = _packet_samples(packet)
                    if not length:
                        return None
                    starts.append(samples)
                    samples += length
                    completed += length
                    if samples > max_samples:
                        raise CodecError("too_long", f"more than {max_samples / 48_000:.0f} s of audio")
                packets.append(packet)
        if first_page is None and completed:
            if granule < completed:
                return None
            first_page = (granule, completed)
        at = end
        if flags & 0x04:
            break
    head = packets[0] if packets else b""
    if (
        at != len(data)
        or not flags & 0x04
        or granule < 0
        or partial
        or first_page is None
        or len(head) < 19
        or not head.startswith(b"OpusHead")
        or head[8] & 0xF0
        or head[9] not in (1, 2)
        or head[18] != 0
        or not packets[1].startswith(b"OpusTags")
    ):
        return None
    pre_skip, gain = struct.unpack_from("<Hh", head, 10)[0], struct.unpack_from("<h", head, 16)[0]
    offset = first_page[0] - first_page[1] - pre_skip
    return _OggOpusStream(
        pre_skip=pre_skip,
        gain=gain,
        channels=head[9],
        packets=packets[2:],
        starts=[start + offset for start in starts],
        end_trim=max(0, samples + offset + pre_skip - granule),
        declared=granule,
    )


def decode_ogg(
    data: bytes,
    *,
    rate: int,
    max_seconds: float,
    emit: Callable[[bytes], None] | None,
    part: tuple[int, int] = (0, 1),
    rebuild: bool = False,
) -> Decoded | None:
    """An OGG/Opus voice note decoded by libopus straight to 16-bit mono PCM at `rate` (see _OpusDecoder),
    handed to `emit` in pieces; without `emit`, only how long it really is. None when this is not a
    recording this path reads (see _read_ogg_opus), when `rate` is not one Opus decodes to, or when libopus
    is missing: FFmpeg's libraries decode it then (codec.py).

    `part` (index, count) asks for one of `count` consecutive stretches of the recording, so that several
    workers can decode one long note side by side. A part's stretch is cut at packet timestamps from the
    declared length; the last part runs to the real end, so a length that lies moves the cut, never loses
    audio.

    With `rebuild`, a whole recording decoded (one part, with `emit`) comes back with `Decoded.ogg` as well:
    the Opus packets decoded, in a new OGG/Opus file (see _rebuilt), the compact form of what was heard."""
    if emit is None:
        rate = 8_000  # the length alone: the cheapest rate to decode at
    if rate not in OPUS_RATES or libopus_loaded() is None:
        return None
    # Decoded, a stream is short of its packets' samples by at most the pre-skip its first packet drops and
    # the trimming of its last: past this, the decoder's own cap below would stop it.
    stream = _read_ogg_opus(data, max_samples=int((max_seconds + 1) * 48_000) + 2 * MAX_PACKET_SAMPLES)
    if stream is None:
        return None
    if stream.declared > (max_seconds + 1) * 48_000:
        raise CodecError("too_long", f"declares {stream.declared / 48_000:.0f} s, more than {max_seconds:g} s")
    index, count = part
    start = stream.declared * index // count if index > 0 else None  # the first part takes the pre-skip too
    end = stream.declared * (index + 1) // count if index + 1 < count else None
    preroll = int(PREROLL_SECONDS * 48_000)
    scale = 48_000 // rate
    decoder = _OpusDecoder(rate, gain=stream.gain)
    fill = 0  # bytes of PCM waiting in the decoder's buffer
    samples = 0
    limit = (max_seconds + 1) * rate
    last = len(stream.packets) - 1
    pre_skip = stream.pre_skip // scale if start is None else 0  # what of the pre-skip is still to drop
    kept: list[bytes] | None = [] if rebuild and emit is not None and start is None and end is None else None
    try:
        for number, (packet, at) in enumerate(zip(stream.packets, stream.starts, strict=True)):
            if end is not None and at >= end:
                break
            if start is not None and at + _packet_samples(packet) <= start - preroll:
                continue
            count = decoder.decode_into(packet, fill)
            if count < 0:  # a packet libopus refuses: the recording is broken or cut off here
                if samples == 0 and index == 0:
                    raise CodecError("unreadable", "an Opus packet libopus cannot decode")
                break
            if start is not None and at < start:
                continue  # before this part's stretch: only to settle the decoder (the next packet overwrites it)
            if kept is not None:
                kept.append(packet)
            skip = min(count, pre_skip)  # a pre-skip may run past the first packet
            pre_skip -= skip
            keep = count - skip
            if number == last and stream.end_trim:
                keep = max(0, keep - stream.end_trim // scale)
            if skip and keep:
                decoder.drop(fill, 2 * skip, 2 * keep)
            samples += keep
            if samples > limit:
                raise CodecError("too_long", f"more than {max_seconds:g} s of audio")
            if emit is not None:
                fill += 2 * keep
                if fill >= CHUNK_BYTES:
                    emit(decoder.take(fill))
                    fill = 0
        if fill and emit is not None:
            emit(decoder.take(fill))
    finally:
        decoder.close()
    if kept is None:
        return Decoded(samples / rate)
    return Decoded(samples / rate, ogg=_rebuilt(stream, kept, end=stream.pre_skip + samples * scale) or None)


def _rebuilt(stream: _OggOpusStream, packets: list[bytes], *, end: int) -> bytes:
    """`packets` in an OGG/Opus file of their own: an OpusHead with the recording's channels, pre-skip and
    gain, an OpusTags with no comments, granule positions counted afresh from zero, and the last page's at
    `end`, where the decoding stopped. So a player hears what the decoder made of the recording and no more:
    not its metadata (tags, a device's name), nor a stream or bytes the decoder did not read."""
    ogg = _OggOpus(
        pre_skip=stream.pre_skip,
        input_rate=48_000,
        vendor=_libopus().version,
        channels=stream.channels,
        gain=stream.gain,
    )
    granule = 0
    for first in range(0, len(packets), PAGE_PACKETS):
        page = packets[first : first + PAGE_PACKETS]
        granule += sum(map(_packet_samples, page))
        last = first + PAGE_PACKETS >= len(packets)
        ogg.add(page, end if last else granule, last=last)
    return ogg.take()


class VoiceEncoder:
    """16-bit mono PCM at a rate Opus takes (the model's 24 kHz) → OGG/Opus, the only format Telegram shows
    as a voice bubble; fed in pieces as the model's audio arrives, so the voice note is ready when the last
    piece is. (Other rates and channel counts pass FFmpeg's resampler first: codec.ResamplingEncoder.)

    One `opus_encode` per packet, straight on libopus (see _Libopus); `input_rate` is the rate the audio had
    before any resampling, which the OpusHead records."""

    def __init__(self, *, rate: int, input_rate: int | None = None) -> None:
        if rate not in OPUS_RATES:
            raise CodecError("unreadable", f"Opus does not encode at {rate} Hz")
        self.opus_rate = rate
        lib = self.lib = _libopus()
        error = ctypes.c_int()
        handle = lib.create(rate, 1, APPLICATION_AUDIO, ctypes.byref(error))
        if not handle:
            raise CodecError("unreadable", f"libopus refused an encoder ({error.value})")
        self.handle = ctypes.c_void_p(handle)
        self._free = weakref.finalize(self, lib.destroy, self.handle)
        for request, value in (
            (_SET_BITRATE, VOICE_BITRATE),
            (_SET_VBR, 1),
            (_SET_VBR_CONSTRAINT, 1),
            (_SET_COMPLEXITY, VOICE_COMPLEXITY),
        ):
            lib.ctl(self.handle, ctypes.c_int(request), ctypes.c_int(value))
        lookahead = ctypes.c_int()
        lib.ctl(self.handle, ctypes.c_int(_GET_LOOKAHEAD), ctypes.byref(lookahead))
        self.scale = 48_000 // rate  # granule positions count 48 kHz samples
        self.lookahead = lookahead.value
        self.ogg = _OggOpus(pre_skip=self.lookahead * self.scale, input_rate=input_rate or rate, vendor=lib.version)
        self.frame = rate * VOICE_FRAME_MS // 1000
        self.out = ctypes.create_string_buffer(MAX_PACKET)
        self.rest = b""  # an odd byte carried to the next piece
        self.pending = b""  # PCM short of a whole Opus frame
        self.packets: list[bytes] = []
        self.consumed = 0  # samples taken in
        self.encoded = 0  # of them, and of the padding, encoded
        self.samples = 0

    def feed(self, pcm: bytes) -> bytes:
        """Encode a piece; return the OGG pages finished so far (often none: a page is about a second)."""
        if self.rest:
            pcm = self.rest + pcm
        whole = len(pcm) - len(pcm) % 2
        self.rest = pcm[whole:]
        self.encode(pcm[:whole] if self.rest else pcm)
        self.samples += whole // 2
        return self.ogg.take()

    def finish(self) -> bytes:
        """Encode the rest, padded to whole frames past the encoder's delay; close the stream; return the
        last pages."""
        if not self.consumed:
            self._free()
            return b""  # no audio, no voice note: the reply goes out as text
        padding = self.lookahead + (-(self.consumed + self.lookahead) % self.frame)
        self.encode(bytes(2 * padding), padding=True)
        self.ogg.add(self.packets, (self.lookahead + self.consumed) * self.scale, last=True)
        self.packets = []
        self._free()
        return self.ogg.take()

    def encode(self, pcm: bytes, *, padding: bool = False) -> None:
        """Whole samples through libopus, a whole Opus frame per call; the pages wait for `feed` or `finish`."""
        if not self._free.alive:
            raise CodecError("unreadable", "the voice stream is finished")
        if not padding:
            self.consumed += len(pcm) // 2
        data = self.pending + pcm if self.pending else pcm
        step = 2 * self.frame
        whole = len(data) - len(data) % step
        lib, handle, out = self.lib, self.handle, self.out
        for start in range(0, whole, step):
            size = lib.encode(handle, data[start : start + step], self.frame, out, MAX_PACKET)
            if size < 0:
                raise CodecError("unreadable", f"libopus failed to encode ({size})")
            self.packets.append(ctypes.string_at(out, size))
            self.encoded += self.frame
            if len(self.packets) == PAGE_PACKETS and not padding:  # the last page carries the padding
                self.ogg.add(self.packets, self.encoded * self.scale)
                self.packets = []
        self.pending = data[whole:]
