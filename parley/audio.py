"""Audio conversion with ffmpeg, run as an asyncio subprocess over pipes (no temp files, never blocking).

Voice notes arrive as OGG/Opus; the model takes WAV or MP3 and answers in WAV; a Telegram voice bubble
must be OGG/Opus. ffmpeg writing WAV to a pipe cannot seek back to fill in the RIFF sizes, so we ask it
for raw PCM and write the header ourselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import struct
from dataclasses import dataclass

import ffmpeg

from parley.errors import AudioError, AudioTimeout

log = logging.getLogger(__name__)

# KSDATAFORMAT_SUBTYPE_PCM: the sub-format that makes a WAVE_FORMAT_EXTENSIBLE file plain PCM.
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")

MODEL_SAMPLE_RATE = 16_000
"""16 kHz mono 16-bit is plenty for speech and keeps five minutes of audio near 10 MB."""

MAX_DECODED_SECONDS = 30 * 60
_TIME_RE = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")
_SILENCE_START_RE = re.compile(r"silence_start: (-?\d+(?:\.\d+)?)")
_SILENCE_END_RE = re.compile(r"silence_end: (-?\d+(?:\.\d+)?)")
"""A safety cap, not a product limit: a few kilobytes of WAV claiming a 1 Hz sample rate decode to hours of
16 kHz PCM (gigabytes, in memory). Longer audio is refused instead of exhausting memory."""

DOWNMIX_CHANNELS = 64
"""ffmpeg cannot downmix a layout it does not know (e.g. 32 unlabelled channels) to mono; for those we
average the channels explicitly, up to the pan filter's limit of 64 (more are refused as unreadable)."""

_DOWNMIX_FILTER = "pan=mono|c0<" + "+".join(f"c{i}" for i in range(DOWNMIX_CHANNELS))
_UNKNOWN_LAYOUT = "rematrix is needed"

VOICE_BITRATE = "32k"
"""Mono Opus at 32 kbit/s, constrained VBR (plain VBR overshoots on tonal sound): minutes of reply stay
under the 1 MB above which Telegram draws no waveform."""

VOICE_COMPLEXITY = 4
"""libopus' default mode ("audio") at complexity 4, not "voip" at the default 10. Encoding the reply is the
largest piece of a turn's own work: 17.7 s of speech took ~175 ms as "voip"/10 (SILK at full effort) and
~50 ms like this (with 60 ms frames, below), on the project's 2.6 GHz cores. At 32 kbit/s the difference
is slight: against the source, log-spectral distance 8.6 dB here and 7.4 dB for voip/10, waveform SNR
13.7 dB here and 11.1 dB there. Complexity 7 and up add the tonality analysis, which triples the time."""


VOICE_FRAME_MS = 60
"""Opus frames of 60 ms instead of 20: a third as many frames for ffmpeg to pass between its threads
(encode 67 → 55 ms for 17 s of speech), for a hardly measurable change in quality (log-spectral
distance 8.5 dB instead of 8.2, both at complexity 6)."""


def find_ffmpeg() -> str:
    """The system ffmpeg when there is one, else the binary shipped in the imageio-ffmpeg wheel."""
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a dependency
        raise RuntimeError("ffmpeg not found: install ffmpeg or the imageio-ffmpeg package") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True, slots=True)
class PcmFormat:
    rate: int
    channels: int
    bits: int

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.channels * self.bits // 8


@dataclass(frozen=True, slots=True)
class WavAudio:
    """A WAV file with its decoded format, so callers never re-parse headers."""

    data: bytes
    format: PcmFormat
    pcm_offset: int
    pcm_bytes: int

    @property
    def pcm(self) -> bytes:
        return self.data[self.pcm_offset : self.pcm_offset + self.pcm_bytes]

    @property
    def duration(self) -> float:
        return self.pcm_bytes / self.format.bytes_per_second if self.format.bytes_per_second else 0.0


def wav_from_pcm(pcm: bytes, fmt: PcmFormat) -> bytes:
    """A canonical 44-byte RIFF header whose sizes match the data exactly."""
    block_align = fmt.channels * fmt.bits // 8
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        fmt.channels,
        fmt.rate,
        fmt.rate * block_align,
        block_align,
        fmt.bits,
        b"data",
        len(pcm),
    )
    return header + pcm


def read_wav(data: bytes) -> WavAudio:
    """Parse a PCM WAV leniently: models and encoders often leave streaming placeholders in the sizes,
    so a data chunk whose size overruns the file is taken to end where the file ends."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos = 12
    fmt: PcmFormat | None = None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioError("truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag not in (1, 0xFFFE) or bits != 16 or channels < 1 or rate < 1:
                raise AudioError(f"unsupported WAV encoding (format {tag}, {bits} bit)")
            sub_format = data[body + 24 : body + 40] if size >= 40 else _PCM_GUID
            if tag == 0xFFFE and sub_format != _PCM_GUID:
                raise AudioError("unsupported WAV encoding (extensible, sub-format is not PCM)")
            block_align = channels * bits // 8
            if block_align > 0xFFFF or rate * block_align > 0xFFFFFFFF:
                # wav_from_pcm could not write these back (struct.error): no real recording looks like this.
                raise AudioError(f"unsupported WAV format ({channels} channels at {rate} Hz)")
            fmt = PcmFormat(rate=rate, channels=channels, bits=bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("WAV data before its format")
            available = len(data) - body
            pcm_bytes = min(size, available)
            pcm_bytes -= pcm_bytes % (fmt.channels * fmt.bits // 8)
            return WavAudio(data=data, format=fmt, pcm_offset=body, pcm_bytes=pcm_bytes)
        pos = body + size + (size & 1)
    raise AudioError("WAV has no data chunk")


def normalise_wav(data: bytes) -> WavAudio:
    """Rewrite a WAV with exact sizes (the model's own header may carry placeholders)."""
    wav = read_wav(data)
    return pcm_to_wav(wav.pcm, wav.format)


def pcm_to_wav(pcm: bytes, fmt: PcmFormat) -> WavAudio:
    return WavAudio(data=wav_from_pcm(pcm, fmt), format=fmt, pcm_offset=44, pcm_bytes=len(pcm))


class AudioConverter:
    """Runs ffmpeg. One instance per process, built at start-up with the binary it found."""

    def __init__(self, ffmpeg_path: str, *, timeout: float = 60.0, max_seconds: float = MAX_DECODED_SECONDS) -> None:
        self.ffmpeg_path = ffmpeg_path
        self.timeout = timeout
        self.max_seconds = max_seconds

    def _command(self, stream: ffmpeg.nodes.OutputStream) -> list[str]:
        # Global options must come first (ffmpeg ignores trailing ones). -nostdin: never read the console.
        return [self.ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "error", *stream.get_args()]

    def _model_command(self, fmt: PcmFormat, *, downmix: bool) -> list[str]:
        options: dict[str, object] = {
            "format": "s16le",
            "acodec": "pcm_s16le",
            "ac": fmt.channels,
            "ar": fmt.rate,
            # Stop a decompression bomb at the cap (one second over it, so "too long" is recognisable).
            "t": f"{self.max_seconds + 1:g}",
            "vn": None,
        }
        # The resampler runs in the filter graph, then frames are regrouped a quarter second each: ffmpeg
        # hands every frame from thread to thread, and a voice note's 20 ms frames made those hand-offs
        # (not the decoding) most of the conversion's time (30 s note: 64 ms → 50 ms).
        filters = [_DOWNMIX_FILTER] if downmix else []
        filters += [f"aresample={fmt.rate}", f"asetnsamples=n={fmt.rate // 4}:p=0"]
        options["af"] = ",".join(filters)
        stream = ffmpeg.input("pipe:0", protocol_whitelist="pipe").output("pipe:1", **options)
        return self._command(stream)

    async def to_model_wav(self, source: bytes) -> WavAudio:
        """Any audio ffmpeg can decode → 16-bit mono PCM WAV at MODEL_SAMPLE_RATE."""
        fmt = PcmFormat(rate=MODEL_SAMPLE_RATE, channels=1, bits=16)
        deadline = asyncio.get_running_loop().time() + self.timeout
        returncode, pcm, err = await self._exec(self._model_command(fmt, downmix=False), source, self.timeout)
        if returncode != 0 and _UNKNOWN_LAYOUT in err.lower():
            # Channels without a known layout (more than ffmpeg can guess): average them instead.
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AudioTimeout(f"ffmpeg ran longer than {self.timeout:g} s")
            returncode, pcm, err = await self._exec(self._model_command(fmt, downmix=True), source, remaining)
        self._check(returncode, pcm, err)
        pcm = pcm[: len(pcm) - len(pcm) % 2]
        if len(pcm) < fmt.bytes_per_second // 10:
            raise AudioError("decoded audio is shorter than 0.1 s")
        if len(pcm) > self.max_seconds * fmt.bytes_per_second:
            raise AudioTimeout(f"decoded audio is longer than {self.max_seconds:g} s")
        return pcm_to_wav(pcm, fmt)

    async def to_voice_ogg(self, wav: WavAudio) -> bytes:
        """WAV → OGG/Opus mono, the only format Telegram shows as a voice bubble."""
        if wav.duration > self.max_seconds:
            raise AudioTimeout(f"audio of {wav.duration:.0f} s is longer than {self.max_seconds:g} s")
        stream = ffmpeg.input("pipe:0", format="wav", protocol_whitelist="pipe").output(
            "pipe:1",
            format="ogg",
            acodec="libopus",
            ac=1,
            audio_bitrate=VOICE_BITRATE,
            vbr="constrained",
            compression_level=VOICE_COMPLEXITY,
            frame_duration=VOICE_FRAME_MS,
        )
        return await self._run(self._command(stream), wav.data)

    async def probe_seconds(self, source: bytes) -> float:
        """How long a recording really is (declared durations lie), by decoding it once to nothing."""
        stream = ffmpeg.input("pipe:0", protocol_whitelist="pipe").output("-", format="null", vn=None)
        command = [self.ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "info", *stream.get_args()]
        returncode, _, err = await self._exec(command, source, self.timeout)
        times = _TIME_RE.findall(err)
        if returncode != 0 or not times:
            raise AudioError(f"ffmpeg could not read the recording ({returncode})")
        hours, minutes, seconds = times[-1]
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)

    async def silences(self, source: bytes, *, min_silence: float = 0.5, noise_db: int = -35) -> list[float]:
        """Midpoints of the quiet stretches in a recording: where it can be cut without cutting a word."""
        stream = (
            ffmpeg.input("pipe:0", protocol_whitelist="pipe")
            .filter("silencedetect", noise=f"{noise_db}dB", d=min_silence)
            .output("-", format="null")
        )
        command = [self.ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", "info", *stream.get_args()]
        returncode, _, err = await self._exec(command, source, self.timeout)
        if returncode != 0:
            raise AudioError(f"ffmpeg could not scan the recording for silences ({returncode})")
        starts = [float(x) for x in _SILENCE_START_RE.findall(err)]
        ends = [float(x) for x in _SILENCE_END_RE.findall(err)]
        return [(start + end) / 2 for start, end in zip(starts, ends, strict=False)]

    async def to_model_mp3(self, source: bytes, *, start: float = 0.0, seconds: float | None = None) -> bytes:
        """16 kHz mono MP3 (about 4 KB a second): how a long recording fits the model's 20 MB per request."""
        input_options: dict[str, object] = {"protocol_whitelist": "pipe"}
        output_options: dict[str, object] = {
            "format": "mp3",
            "acodec": "libmp3lame",
            "ac": 1,
            "ar": MODEL_SAMPLE_RATE,
            "audio_bitrate": "32k",
            "vn": None,
        }
        if start:
            output_options["ss"] = f"{start:.3f}"
        if seconds is not None:
            output_options["t"] = f"{seconds:.3f}"
        stream = ffmpeg.input("pipe:0", **input_options).output("pipe:1", **output_options)
        return await self._run(self._command(stream), source)

    async def _run(self, command: list[str], stdin: bytes) -> bytes:
        returncode, out, err = await self._exec(command, stdin, self.timeout)
        self._check(returncode, out, err)
        return out

    async def _exec(self, command: list[str], stdin: bytes, budget: float) -> tuple[int, bytes, str]:
        """Run ffmpeg to completion within `budget` seconds (killed and reaped otherwise)."""
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=budget)
        except TimeoutError:
            raise AudioTimeout(f"ffmpeg ran longer than {self.timeout:g} s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out, err.decode("utf-8", "replace").strip()

    @staticmethod
    def _check(returncode: int, out: bytes, err: str) -> None:
        if returncode != 0 or not out:
            lines = err.splitlines()
            raise AudioError(f"ffmpeg failed ({returncode}): {lines[-1] if lines else 'no output'}")
