"""The codec work itself, in-process with PyAV (FFmpeg's libraries): decode anything to model PCM, encode
the model's PCM to a voice note. Synchronous and untrusting; it runs inside a worker process (pool.py),
never in the bot, so a decoder that crashes, hangs or balloons takes only its worker down.

Every input is bounded before it costs anything: the container must be one of the formats people send,
its audio stream's sample rate, channel count and declared duration must be in sane ranges, and decoding
stops as soon as the audio decoded so far passes the length cap. Input is read from memory (a seekable
file object, not a pipe), so an MP4 whose index sits at the end opens like any other.
"""

from __future__ import annotations

import ctypes
import io
import struct
import weakref
from collections.abc import Callable, Iterator
from fractions import Fraction

import av
import av.error

from parley.audio.bounds import CHUNK_BYTES, MAX_CHANNELS, MAX_RATE, MIN_RATE, CodecError, Decoded
from parley.audio.containers import DEMUXERS
from parley.audio.opus import (
    _GET_LOOKAHEAD,
    _SET_BITRATE,
    _SET_COMPLEXITY,
    _SET_VBR,
    _SET_VBR_CONSTRAINT,
    APPLICATION_AUDIO,
    MAX_PACKET,
    OPUS_RATES,
    PAGE_PACKETS,
    VOICE_BITRATE,
    VOICE_COMPLEXITY,
    VOICE_FRAME_MS,
    _libopus,
    _OggOpus,
    _OpusDecoder,
    libopus_loaded,
)

FEED_SECONDS = 0.24
"""Where a reply must be resampled before encoding (a rate Opus does not take, or more than one channel),
the resampler is handed at most this much audio per frame, whatever size the pieces come in: FFmpeg's
frame pools keep buffers as large as the largest frame they saw, for as long as the stream is open, and a
hundred replies may stream at once."""


def _open(data: bytes) -> av.container.InputContainer:
    try:
        return av.open(io.BytesIO(data), mode="r", options={"format_whitelist": DEMUXERS}, metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError, UnicodeDecodeError, IndexError) as exc:
        raise CodecError("unreadable", f"not a container we read: {exc}") from None


def _audio_stream(container: av.container.InputContainer, max_seconds: float) -> av.audio.stream.AudioStream:
    """The first audio stream, after its format and declared length are checked."""
    if not container.streams.audio:
        raise CodecError("unreadable", f"no audio stream in the {container.format.name} container")
    stream = container.streams.audio[0]
    context = stream.codec_context
    rate, channels = context.sample_rate, context.channels
    if not MIN_RATE <= rate <= MAX_RATE:
        raise CodecError("unreadable", f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE}")
    if not 1 <= channels <= MAX_CHANNELS:
        raise CodecError("unreadable", f"{channels} channels (at most {MAX_CHANNELS})")
    declared = _declared_seconds(container, stream)
    if declared is not None and declared > max_seconds + 1:
        raise CodecError("too_long", f"declares {declared:.0f} s, more than {max_seconds:g} s")
    context.thread_count = 1  # one core per worker: the pool is as wide as the machine
    return stream


def _declared_seconds(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _frames(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, max_seconds: float
) -> Iterator[av.AudioFrame]:
    """Decoded frames, stopping (too_long) as soon as their real length passes the cap."""
    seconds = 0.0
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                if not MIN_RATE <= frame.sample_rate <= MAX_RATE:  # a stream may change format midway
                    raise CodecError("unreadable", f"a frame at {frame.sample_rate} Hz")
                seconds += frame.samples / frame.sample_rate
                if seconds > max_seconds + 1:
                    raise CodecError("too_long", f"more than {max_seconds:g} s of audio")
                yield frame
    except av.error.FFmpegError as exc:
        if seconds == 0:
            raise CodecError("unreadable", f"{exc}") from None
        # A file cut off midway (an upload interrupted): what arrived is what the person said so far.


_SCALE = {"u8": (128.0, 128.0), "s16": (0.0, 32768.0), "s32": (0.0, 2.0**31), "s64": (0.0, 2.0**63)}
"""Integer sample formats (planar or not) as (offset, full scale); float formats are already in -1..1."""


def _mono(frame: av.AudioFrame) -> av.AudioFrame:
    """Channels without a known layout (32 unlabelled ones, say) averaged to one: the resampler cannot
    downmix a layout it does not know. (numpy is imported only here: it costs a worker memory, and such files
    are rare.)"""
    import numpy as np

    offset, scale = _SCALE.get(frame.format.name.rstrip("p"), (0.0, 1.0))
    samples = (frame.to_ndarray().astype(np.float32) - offset) / scale
    if frame.format.is_planar:
        samples = samples.mean(axis=0, keepdims=True)
    else:
        samples = samples.reshape(-1, len(frame.layout.channels)).mean(axis=1).reshape(1, -1)
    mono = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="flt", layout="mono")
    mono.sample_rate = frame.sample_rate
    return mono


def _known_layout(frame: av.AudioFrame) -> bool:
    return frame.layout.name not in ("", f"{len(frame.layout.channels)} channels")


def decode(
    data: bytes,
    *,
    rate: int,
    max_seconds: float,
    emit: Callable[[bytes], None] | None,
    part: tuple[int, int] = (0, 1),
) -> Decoded:
    """Decode the first audio stream to 16-bit mono PCM at `rate`, handing it to `emit` in pieces;
    without `emit`, only measure how long the audio really is (no resampling).

    `part` (index, count) asks for one of `count` consecutive stretches of the recording, so that several
    workers can decode one long note side by side; a recording that cannot be cut (anything but Opus in
    OGG) is decoded whole as its first part, and its other parts are empty."""
    container = _open(data)
    try:
        stream = _audio_stream(container, max_seconds)
        if emit is None:
            seconds = sum(frame.samples / frame.sample_rate for frame in _frames(container, stream, max_seconds))
            return Decoded(seconds)
        if _plain_opus(container, stream) and rate in OPUS_RATES and libopus_loaded() is not None:
            return _decode_opus(container, stream, rate, max_seconds, emit, part)
        if part[0] > 0:
            return Decoded(0.0)
        output = _Output(rate, emit)
        try:
            _resample(_frames(container, stream, max_seconds), output)
        except (av.error.FFmpegError, ValueError) as exc:
            raise CodecError("unreadable", f"cannot resample: {exc}") from None
        output.close()
        return Decoded(output.samples / rate)
    finally:
        container.close()


def _plain_opus(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> bool:
    """Opus in OGG, mono or stereo (channel mapping family 0): every voice note a Telegram client records."""
    head = stream.codec_context.extradata or b""
    return (
        container.format.name == "ogg"
        and stream.codec_context.name == "opus"
        and stream.time_base == Fraction(1, 48_000)  # the unit of the cuts, the pre-skip and the trimming
        and len(head) >= 19
        and head.startswith(b"OpusHead")
        and head[9] in (1, 2)
        and head[18] == 0
    )


PREROLL_SECONDS = 0.8
"""A part that starts mid-recording decodes this much before its start and drops it: Opus predicts each
frame's band energies from the previous frame's, so a decoder started cold needs frames to converge (the
Ogg Opus specification asks for at least 80 ms; this much makes the parts join as the whole note decodes,
to the sample or within a step of the last bit)."""


def _decode_opus(
    container: av.container.InputContainer,
    stream: av.audio.stream.AudioStream,
    rate: int,
    max_seconds: float,
    emit: Callable[[bytes], None],
    part: tuple[int, int],
) -> Decoded:
    """Opus packets straight to libopus at `rate` (see _OpusDecoder), FFmpeg's demuxer still reading the
    container. A part's stretch is cut at packet timestamps (48 kHz) from the declared length; the last
    part runs to the real end, so a length that lies moves the cut, never loses audio."""
    index, count = part
    declared = stream.duration if stream.duration is not None and stream.duration > 0 else 0
    start = declared * index // count if index > 0 else None  # the first part takes the pre-skip too
    end = declared * (index + 1) // count if index + 1 < count else None
    preroll = int(PREROLL_SECONDS * 48_000)
    scale = 48_000 // rate
    head = stream.codec_context.extradata or b""
    decoder = _OpusDecoder(rate, gain=int.from_bytes(head[16:18], "little", signed=True))
    pending = bytearray()
    samples = 0
    limit = (max_seconds + 1) * rate
    position = 0
    try:
        for packet in container.demux(stream):
            if not packet.size:
                continue
            at = packet.pts if packet.pts is not None else position
            position = at + (packet.duration or 960)
            if end is not None and at >= end:
                break
            if start is not None and position <= start - preroll:
                continue
            pcm = decoder.decode(bytes(packet))
            if pcm is None:  # a packet libopus refuses: the recording is broken or cut off here
                if samples == 0 and index == 0:
                    raise CodecError("unreadable", "an Opus packet libopus cannot decode")
                break
            if start is not None and at < start:
                continue  # before this part's stretch: only to settle the decoder
            if packet.has_sidedata("skip_samples"):
                skip_start, skip_end = struct.unpack_from("<II", bytes(packet.get_sidedata("skip_samples")))
                pcm = pcm[2 * min(len(pcm) // 2, skip_start // scale) : max(0, len(pcm) - 2 * (skip_end // scale))]
            pending += pcm
            samples += len(pcm) // 2
            if samples > limit:
                raise CodecError("too_long", f"more than {max_seconds:g} s of audio")
            if len(pending) >= CHUNK_BYTES:
                emit(bytes(pending))
                pending.clear()
    except av.error.FFmpegError as exc:
        if samples == 0 and index == 0:
            raise CodecError("unreadable", f"{exc}") from None
    finally:
        decoder.close()
    if pending:
        emit(bytes(pending))
    return Decoded(samples / rate)


class _Output:
    """Resampled frames gathered into CHUNK_BYTES pieces for `emit`."""

    def __init__(self, rate: int, emit: Callable[[bytes], None]) -> None:
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        self.emit = emit
        self.pending = bytearray()
        self.samples = 0

    def resample(self, frame: av.AudioFrame | None) -> None:
        for out in self.resampler.resample(frame):
            self.pending.extend(memoryview(out.planes[0])[: out.samples * 2])
            self.samples += out.samples
        if len(self.pending) >= CHUNK_BYTES:
            self.emit(bytes(self.pending))
            self.pending.clear()

    def close(self) -> None:
        self.resample(None)
        if self.pending:
            self.emit(bytes(self.pending))
            self.pending.clear()


BATCH_SAMPLES = 48_000
"""Decoded frames are gathered in FFmpeg's sample FIFO and resampled about a second at a time (at 48 kHz
mono), not one by one: a voice note's Opus frames are 20 ms each, and a call into the resampler per frame
costs more than decoding the frame. The FIFO copies in C; gathering them in Python cost more than the
resampling itself."""


def _resample(frames: Iterator[av.AudioFrame], output: _Output) -> None:
    """Every frame through one FIFO to the resampler. The format and sample rate may not change midway (the
    FIFO refuses), nor the channel count (checked here: the FIFO copies as many planes as it was made
    for). Channels without a known layout are averaged to mono first (see _mono)."""
    fifo = av.AudioFifo()
    channels = 0
    unlabelled = False
    batch = BATCH_SAMPLES
    for frame in frames:
        count = frame.layout.nb_channels
        if count != channels:
            if channels:
                raise CodecError("unreadable", f"{count} channels midway through {channels}")
            channels, unlabelled = count, not _known_layout(frame)
            batch = max(1, BATCH_SAMPLES // channels)
        if unlabelled:
            frame = _mono(frame)
        frame.pts = None  # the FIFO checks timestamps for gaps; a gap in a recording is no reason to refuse it
        fifo.write(frame)
        if fifo.samples >= batch:
            output.resample(fifo.read())
    if fifo.samples:
        output.resample(fifo.read())


class VoiceEncoder:
    """16-bit PCM → OGG/Opus mono, the only format Telegram shows as a voice bubble; fed in pieces as the
    model's audio arrives, so the voice note is ready when the last piece is.

    Mono PCM at a rate Opus takes (the model's 24 kHz) goes straight to libopus (see _Libopus); other rates
    and channel counts are first converted by FFmpeg's resampler."""

    def __init__(self, *, rate: int, channels: int = 1) -> None:
        if not MIN_RATE <= rate <= MAX_RATE or not 1 <= channels <= MAX_CHANNELS:
            raise CodecError("unreadable", f"cannot encode {channels} channels at {rate} Hz")
        self.rate, self.channels = rate, channels
        self.opus_rate = rate if rate in OPUS_RATES else 48_000
        self.resampler = None
        if channels != 1 or self.opus_rate != rate:
            self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.opus_rate)
        lib = self.lib = _libopus()
        error = ctypes.c_int()
        handle = lib.create(self.opus_rate, 1, APPLICATION_AUDIO, ctypes.byref(error))
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
        self.scale = 48_000 // self.opus_rate  # granule positions count 48 kHz samples
        self.lookahead = lookahead.value
        self.ogg = _OggOpus(pre_skip=self.lookahead * self.scale, input_rate=rate, vendor=lib.version)
        self.frame = self.opus_rate * VOICE_FRAME_MS // 1000
        self.out = ctypes.create_string_buffer(MAX_PACKET)
        self.rest = b""  # a partial sample frame carried to the next piece
        self.pending = b""  # mono PCM at the Opus rate short of a whole Opus frame
        self.packets: list[bytes] = []
        self.consumed = 0  # mono samples at the Opus rate taken in
        self.encoded = 0  # of them, and of the padding, encoded
        self.samples = 0

    def feed(self, pcm: bytes) -> bytes:
        """Encode a piece; return the OGG pages finished so far (often none: a page is about a second)."""
        block = 2 * self.channels
        pcm = self.rest + pcm
        frames = len(pcm) // block
        self.rest = pcm[frames * block :]
        if self.resampler is None:
            self._encode(pcm[: frames * block])
        else:
            step = max(1, int(self.rate * FEED_SECONDS))
            view = memoryview(pcm)
            for start in range(0, frames, step):  # in slices: FFmpeg keeps buffers as large as the largest frame
                count = min(step, frames - start)
                frame = self._frame(view[start * block : (start + count) * block], count)
                self._encode(_converted(self.resampler.resample(frame)))
        self.samples += frames
        return self.ogg.take()

    def finish(self) -> bytes:
        """Encode the rest, padded to whole frames past the encoder's delay; close the stream; return the
        last pages."""
        if self.resampler is not None:
            self._encode(_converted(self.resampler.resample(None)))
        if not self.consumed:
            self._free()
            return b""  # no audio, no voice note: the reply goes out as text
        padding = self.lookahead + (-(self.consumed + self.lookahead) % self.frame)
        self._encode(bytes(2 * padding), padding=True)
        self.ogg.add(self.packets, (self.lookahead + self.consumed) * self.scale, last=True)
        self.packets = []
        self._free()
        return self.ogg.take()

    def _frame(self, piece: memoryview, count: int) -> av.AudioFrame:
        if self.channels > 2:
            return _unlabelled(bytes(piece), self.channels, self.rate)
        frame = av.AudioFrame(format="s16", layout="mono" if self.channels == 1 else "stereo", samples=count)
        frame.planes[0].update(bytes(piece))
        frame.sample_rate = self.rate
        return frame

    def _encode(self, pcm: bytes, *, padding: bool = False) -> None:
        """Mono PCM at the Opus rate through libopus, a whole Opus frame per call."""
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


def _converted(frames: list[av.AudioFrame]) -> bytes:
    return b"".join(bytes(frame.planes[0])[: frame.samples * 2] for frame in frames)


def encode_voice(pcm: bytes, *, rate: int, channels: int) -> bytes:
    """A whole reply at once (see VoiceEncoder)."""
    encoder = VoiceEncoder(rate=rate, channels=channels)
    return encoder.feed(pcm) + encoder.finish()


def _unlabelled(pcm: bytes, channels: int, rate: int) -> av.AudioFrame:
    import numpy as np

    mono = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    return frame
