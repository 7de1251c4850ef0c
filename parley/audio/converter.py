"""AudioConverter: the conversions the bot asks for, each routed to the codec workers or the ffmpeg command
line (see the package docstring for which and why)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType

from parley.audio.ffmpeg_cli import FfmpegCli
from parley.audio.pool import CodecPool
from parley.audio.wav import PcmFormat, WavAudio, wav_from_pcm
from parley.audio.worker import MAX_PARTS
from parley.errors import AudioError, AudioTimeout, AudioTooLong

MODEL_SAMPLE_RATE = 16_000
"""16 kHz mono 16-bit is plenty for speech and keeps five minutes of audio near 10 MB."""

MAX_DECODED_SECONDS = 30 * 60
"""A safety cap, not a product limit: longer audio is refused (checked against the container's declared
length before decoding, and against the audio really decoded while decoding)."""

_WAV_HEADER = 44

SPLIT_SECONDS = 10.0
"""A voice note gets one more worker for every this many seconds of it, as far as workers are idle: a long
note decoded in parts side by side reaches the model sooner (see codec.decode for how parts are cut)."""


class AudioConverter:
    """The bot's audio conversions. One pool of codec workers per process, shared by every converter
    built from it (`with_limits`); close it at shutdown."""

    def __init__(
        self,
        ffmpeg_path: str,
        *,
        timeout: float = 60.0,
        max_seconds: float = MAX_DECODED_SECONDS,
        pool: CodecPool | None = None,
    ) -> None:
        self.ffmpeg_path = ffmpeg_path
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.pool = pool or CodecPool()
        self._owns_pool = pool is None
        self._cli = FfmpegCli(ffmpeg_path, timeout=timeout)

    def with_limits(self, *, timeout: float, max_seconds: float) -> AudioConverter:
        """A converter for other limits (the voice tools take hours) on the same workers."""
        return AudioConverter(self.ffmpeg_path, timeout=timeout, max_seconds=max_seconds, pool=self.pool)

    async def start(self) -> None:
        """Start the codec workers now (at boot) rather than at the first voice note."""
        await self.pool.start()

    async def close(self) -> None:
        if self._owns_pool:
            await self.pool.close()

    async def __aenter__(self) -> AudioConverter:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def to_model_wav(self, source: bytes, *, max_seconds: float | None = None) -> WavAudio:
        """Any audio people send → 16-bit mono PCM WAV at MODEL_SAMPLE_RATE; a voice note decoded whole by
        libopus carries its packets as well, rebuilt as an OGG/Opus file (WavAudio.voice_ogg).

        `max_seconds` narrows the converter's cap for one call: a conversation turn stops decoding at the
        longest voice note it takes, so a file that lies about its length costs megabytes, not hundreds.
        """
        limit = min(max_seconds, self.max_seconds) if max_seconds else self.max_seconds
        fmt = PcmFormat(rate=MODEL_SAMPLE_RATE, channels=1, bits=16)
        cap = int((limit + 1) * fmt.bytes_per_second)
        parts = [bytearray(_WAV_HEADER)] + [bytearray() for _ in range(self._parts(source) - 1)]
        # the header is written into the first part once the length is known

        def sink(part: bytearray) -> Callable[[bytes], None]:
            def take(piece: bytes) -> None:
                if sum(len(each) for each in parts) - _WAV_HEADER + len(piece) > cap:
                    raise AudioTooLong(f"decoded audio is longer than {limit:g} s")
                part.extend(piece)

            return take

        header = {"op": "decode", "rate": fmt.rate, "max_seconds": limit}
        voice_ogg = None
        if len(parts) == 1:
            result = await self.pool.run({**header, "rebuild": True}, source, timeout=self.timeout, sink=sink(parts[0]))
            voice_ogg = result.get("file")
        else:
            calls = (
                self.pool.run({**header, "part": [index, len(parts)]}, source, timeout=self.timeout, sink=sink(part))
                for index, part in enumerate(parts)
            )
            for outcome in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(outcome, BaseException):
                    raise outcome  # each part runs to its end first: a part given up would cost its worker
        buffer = parts[0]
        for part in parts[1:]:
            buffer += part
            part.clear()
        pcm_bytes = len(buffer) - _WAV_HEADER
        pcm_bytes -= pcm_bytes % 2
        del buffer[_WAV_HEADER + pcm_bytes :]
        if pcm_bytes < fmt.bytes_per_second // 10:
            raise AudioError("decoded audio is shorter than 0.1 s")
        if pcm_bytes > limit * fmt.bytes_per_second:
            raise AudioTooLong(f"decoded audio is longer than {limit:g} s")
        buffer[:_WAV_HEADER] = wav_from_pcm(b"", fmt)[:_WAV_HEADER]
        buffer[4:8] = (36 + pcm_bytes).to_bytes(4, "little")
        buffer[40:44] = pcm_bytes.to_bytes(4, "little")
        data = bytes(buffer)
        buffer.clear()  # one copy of the recording at a time
        return WavAudio(data=data, format=fmt, pcm_offset=_WAV_HEADER, pcm_bytes=pcm_bytes, voice_ogg=voice_ogg)

    def _parts(self, source: bytes) -> int:
        """How many workers decode this recording side by side: one, unless it is a long OGG/Opus voice note
        and workers are idle to share it (a burst keeps every worker busy with notes of its own; there,
        cutting notes would only add work)."""
        if self.pool.size < 2 or not source.startswith(b"OggS") or source[28:36] != b"OpusHead":
            return 1
        last = source.rfind(b"OggS")
        granule = int.from_bytes(source[last + 6 : last + 14], "little", signed=True) if last > 0 else 0
        wanted = 1 + int(granule / 48_000 // SPLIT_SECONDS)
        idle = self.pool.idle()
        return max(1, min(wanted, idle, MAX_PARTS)) if idle >= 2 else 1

    async def to_voice_ogg(self, wav: WavAudio) -> bytes:
        """WAV → OGG/Opus mono, the only format Telegram shows as a voice bubble."""
        if wav.duration > self.max_seconds:
            raise AudioTimeout(f"audio of {wav.duration:.0f} s is longer than {self.max_seconds:g} s")
        if wav.format.bits != 16:
            raise AudioError(f"cannot encode {wav.format.bits}-bit audio")
        pieces: list[bytes] = []
        header = {"op": "encode_voice", "rate": wav.format.rate, "channels": wav.format.channels}
        await self.pool.run(header, wav.pcm, timeout=self.timeout, sink=pieces.append)
        ogg = b"".join(pieces)
        if not ogg:
            raise AudioError("the encoder produced nothing")
        return ogg

    async def open_voice_stream(self, *, rate: int) -> VoiceStream:
        """An Opus encoder on a codec worker, fed 16-bit mono PCM at `rate` as the model's audio streams in."""
        where = await self.pool.open_stream({"op": "voice_open", "rate": rate}, timeout=self.timeout)
        return VoiceStream(self.pool, where, rate=rate, timeout=self.timeout, max_seconds=self.max_seconds)

    async def libopus(self) -> tuple[str, str] | None:
        """The libopus the codec workers encode and decode voice notes with, as (version, path), or None
        when they find none; asked of a worker, which looks for it as it does for a voice note."""
        result = await self.pool.run({"op": "libopus"}, b"", timeout=self.timeout)
        return (str(result["version"]), str(result["path"])) if result else None

    async def probe_seconds(self, source: bytes) -> float:
        """How long a recording really is (declared durations lie), by decoding it once to nothing."""
        header = {"op": "decode", "rate": MODEL_SAMPLE_RATE, "max_seconds": self.max_seconds, "measure_only": True}
        result = await self.pool.run(header, source, timeout=self.timeout)
        return float(result["seconds"])

    async def silences(self, source: bytes, *, min_silence: float = 0.5, noise_db: int = -35) -> list[float]:
        """Midpoints of the quiet stretches in a recording: where it can be cut without cutting a word."""
        return await self._cli.silences(source, min_silence=min_silence, noise_db=noise_db)

    async def to_model_mp3(self, source: bytes, *, start: float = 0.0, seconds: float | None = None) -> bytes:
        """16 kHz mono MP3 (about 4 KB a second): how a long recording fits the model's 20 MB per request."""
        return await self._cli.mp3(source, rate=MODEL_SAMPLE_RATE, start=start, seconds=seconds)


class VoiceStream:
    """A reply's voice note, encoded while the reply streams in: the note is ready when the last audio is.

    PCM is passed on in pieces of a few seconds, each written to the worker without waiting for an answer
    (the worker keeps the pages); the last piece goes with the request that finishes the note and brings
    back the whole of it. So at most PIECE_SECONDS of the reply's audio is held here at a time, and each
    piece costs one write instead of a round trip."""

    PIECE_SECONDS = 2.0
    """With a hundred replies streaming at once and the workers behind, every reply holds up to a piece
    here: smaller pieces lower the burst's peak memory, and two seconds cost no more CPU than four."""

    def __init__(
        self, pool: CodecPool, where: tuple[int, int, int], *, rate: int, timeout: float, max_seconds: float
    ) -> None:
        self.pool, self.where, self.rate = pool, where, rate
        self.timeout, self.max_seconds = timeout, max_seconds
        self.pending = bytearray()
        self.pcm_bytes = 0
        self.done = False

    @property
    def seconds(self) -> float:
        """Seconds of audio received so far."""
        return self.pcm_bytes / (2 * self.rate)

    async def add(self, pcm: bytes) -> None:
        self.pcm_bytes += len(pcm)
        if self.seconds > self.max_seconds:
            await self.abort()
            raise AudioTimeout(f"the reply is longer than {self.max_seconds:g} s")
        self.pending.extend(pcm)
        if len(self.pending) >= self.PIECE_SECONDS * 2 * self.rate:
            piece = self._take()
            try:
                await self.pool.stream_send(self.where, {"op": "voice_feed"}, piece, timeout=self.timeout)
            except BaseException:
                await self.abort()
                raise

    async def finish(self) -> bytes:
        """The whole voice note (OGG/Opus)."""
        if self.done:
            raise AudioError("the voice stream is closed")
        pages: list[bytes] = []
        try:
            await self.pool.stream_call(
                self.where, {"op": "voice_finish"}, self._take(), timeout=self.timeout, sink=pages.append
            )
        except BaseException:
            await self.abort()
            raise
        self.done = True
        self.pool.close_stream(self.where)
        ogg = b"".join(pages)
        if not ogg:
            raise AudioError("the encoder produced nothing")
        return ogg

    async def abort(self) -> None:
        """Give up on the note (the reply failed, or goes out as text): the worker forgets the encoder."""
        if self.done:
            return
        self.done = True
        self.pool.close_stream(self.where)
        self.pending.clear()
        with contextlib.suppress(AudioError):
            await self.pool.stream_call(
                self.where, {"op": "voice_abort"}, b"", timeout=self.timeout, sink=lambda _chunk: None
            )

    def _take(self) -> bytes:
        piece = bytes(self.pending)
        self.pending.clear()
        return piece
