"""The codec work that needs FFmpeg's libraries, in-process with PyAV: decode any container to model PCM,
and resample a reply Opus cannot take as it is. Synchronous and untrusting; it runs inside a worker process
(pool.py), never in the bot, so a decoder that crashes, hangs or balloons takes only its worker down. A
worker imports this module only for an input that needs it: voice notes in and out are OGG/Opus, which
opus.py reads, decodes and writes without FFmpeg.

Every input is bounded before it costs anything: the container must be one of the formats people send,
its audio stream's sample rate, channel count and declared duration must be in sane ranges, and decoding
stops as soon as the audio decoded so far passes the length cap. Input is read from memory (a seekable
file object, not a pipe), so an MP4 whose index sits at the end opens like any other.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import av
import av.error

from parley.audio.bounds import CHUNK_BYTES, MAX_CHANNELS, MAX_RATE, MIN_RATE, CodecError, Decoded
from parley.audio.containers import DEMUXERS
from parley.audio.opus import OPUS_RATES, VoiceEncoder

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
    workers can decode one long note side by side; here a recording is not cut (opus.decode_ogg cuts the
    voice notes it reads): it is decoded whole as its first part, and its other parts are empty."""
    container = _open(data)
    try:
        stream = _audio_stream(container, max_seconds)
        if emit is None:
            seconds = sum(frame.samples / frame.sample_rate for frame in _frames(container, stream, max_seconds))
            return Decoded(seconds)
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


class ResamplingEncoder:
    """16-bit PCM at any rate and channel count → OGG/Opus mono: FFmpeg's resampler converts it to mono at a
    rate Opus takes, then opus.VoiceEncoder encodes it."""

    def __init__(self, *, rate: int, channels: int = 1) -> None:
        if not MIN_RATE <= rate <= MAX_RATE or not 1 <= channels <= MAX_CHANNELS:
            raise CodecError("unreadable", f"cannot encode {channels} channels at {rate} Hz")
        self.rate, self.channels = rate, channels
        opus_rate = rate if rate in OPUS_RATES else 48_000
        self.opus = VoiceEncoder(rate=opus_rate, input_rate=rate)
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=opus_rate)
        self.rest = b""  # a partial sample frame carried to the next piece
        self.samples = 0

    def feed(self, pcm: bytes) -> bytes:
        """Encode a piece; return the OGG pages finished so far."""
        block = 2 * self.channels
        pcm = self.rest + pcm
        frames = len(pcm) // block
        self.rest = pcm[frames * block :]
        step = max(1, int(self.rate * FEED_SECONDS))
        view = memoryview(pcm)
        for start in range(0, frames, step):  # in slices: FFmpeg keeps buffers as large as the largest frame
            count = min(step, frames - start)
            frame = self._frame(view[start * block : (start + count) * block], count)
            self.opus.encode(_converted(self.resampler.resample(frame)))
        self.samples += frames
        return self.opus.ogg.take()

    def finish(self) -> bytes:
        """Encode the rest; close the stream; return the last pages."""
        self.opus.encode(_converted(self.resampler.resample(None)))
        return self.opus.finish()

    def _frame(self, piece: memoryview, count: int) -> av.AudioFrame:
        if self.channels > 2:
            return _unlabelled(bytes(piece), self.channels, self.rate)
        frame = av.AudioFrame(format="s16", layout="mono" if self.channels == 1 else "stereo", samples=count)
        frame.planes[0].update(bytes(piece))
        frame.sample_rate = self.rate
        return frame


def _converted(frames: list[av.AudioFrame]) -> bytes:
    return b"".join(bytes(frame.planes[0])[: frame.samples * 2] for frame in frames)


def _unlabelled(pcm: bytes, channels: int, rate: int) -> av.AudioFrame:
    import numpy as np

    mono = np.frombuffer(pcm, dtype="<i2").reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = rate
    return frame
