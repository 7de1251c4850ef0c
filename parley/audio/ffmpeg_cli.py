"""The ffmpeg command line (built with ffmpeg-python), for the jobs a subprocess still does best: scanning
a long recording for silences and cutting it into MP3 segments. Both stream through the recording once
with constant memory and hand back a few lines or a small file, so the process start (the wheel's static
binary starts quickly) is small beside the work.

The recording is given to ffmpeg as a private temporary file, not a pipe, so containers whose index sits
at the end (MP4 as phones and most encoders write it) can be read; only the demuxers in containers.DEMUXERS
may open it and only the file protocol is allowed, so a playlist naming other files is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import shutil
import tempfile
from collections.abc import AsyncIterator

import ffmpeg

from parley.audio.containers import DEMUXERS
from parley.errors import AudioError, AudioTimeout

SILENCE_START = re.compile(r"silence_start: (-?\d+(?:\.\d+)?)")
SILENCE_END = re.compile(r"silence_end: (-?\d+(?:\.\d+)?)")

FFMPEG_MEMORY_MB = 1024
"""Address-space cap of each ffmpeg child: generous for streaming work, fatal for a decompression bomb."""


def find_ffmpeg() -> str:
    """The ffmpeg binary shipped in the imageio-ffmpeg wheel, else a system one.

    The wheel's static build is preferred: it starts several times faster than a distribution's
    dynamically linked one, which loads some hundred shared libraries at every start."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):  # pragma: no cover - imageio-ffmpeg is a dependency
        system = shutil.which("ffmpeg")
        if system:
            return system
        raise RuntimeError("ffmpeg not found: install ffmpeg or the imageio-ffmpeg package") from None


@contextlib.asynccontextmanager
async def as_file(source: bytes) -> AsyncIterator[str]:
    """The recording in a private temporary file (mode 0600), removed afterwards whatever happens."""
    fd, path = tempfile.mkstemp(prefix="parley-", suffix=".audio")
    try:
        await asyncio.to_thread(_write_all, fd, source)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _input(path: str, **options: object) -> ffmpeg.nodes.FilterableStream:
    return ffmpeg.input(path, format_whitelist=DEMUXERS, protocol_whitelist="file", **options)


class FfmpegCli:
    def __init__(self, ffmpeg_path: str, *, timeout: float) -> None:
        self.ffmpeg_path = ffmpeg_path
        self.timeout = timeout

    def _command(self, stream: ffmpeg.nodes.OutputStream, loglevel: str = "error") -> list[str]:
        # Global options come first (ffmpeg ignores trailing ones). -nostdin: never read the console.
        return [self.ffmpeg_path, "-nostdin", "-hide_banner", "-loglevel", loglevel, *stream.get_args()]

    async def silences(self, source: bytes, *, min_silence: float, noise_db: int) -> list[float]:
        """Midpoints of the quiet stretches: where a recording can be cut without cutting a word."""
        async with as_file(source) as path:
            stream = _input(path).filter("silencedetect", noise=f"{noise_db}dB", d=min_silence)
            code, _, err = await self.exec(self._command(stream.output("-", format="null"), "info"))
        if code != 0:
            raise AudioError(f"ffmpeg could not scan the recording for silences ({code})")
        starts = [float(x) for x in SILENCE_START.findall(err)]
        ends = [float(x) for x in SILENCE_END.findall(err)]
        return [(start + end) / 2 for start, end in zip(starts, ends, strict=False)]

    async def mp3(self, source: bytes, *, rate: int, start: float, seconds: float | None) -> bytes:
        """16 kHz mono MP3 (about 4 KB a second) of the recording, or of `seconds` from `start`.

        The cut is made on the input side (`-ss`/`-t` before `-i`): ffmpeg seeks near the start with the
        container's index and decodes only from there, rather than decoding everything before the cut."""
        cut: dict[str, object] = {}
        if start:
            cut["ss"] = f"{start:.3f}"
        if seconds is not None:
            cut["t"] = f"{seconds:.3f}"
        options: dict[str, object] = {"format": "mp3", "acodec": "libmp3lame", "ac": 1, "ar": rate}
        options.update(audio_bitrate="32k", vn=None, sn=None, dn=None)
        async with as_file(source) as path:
            code, out, err = await self.exec(self._command(_input(path, **cut).output("pipe:1", **options)))
        if code != 0 or not out:
            lines = err.splitlines()
            raise AudioError(f"ffmpeg failed ({code}): {lines[-1] if lines else 'no output'}")
        return out

    async def exec(self, command: list[str], stdin: bytes = b"") -> tuple[int, bytes, str]:
        """Run ffmpeg to completion within the timeout (killed and reaped otherwise), its memory capped."""
        proc = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        with contextlib.suppress(ProcessLookupError, OSError):
            cap = FFMPEG_MEMORY_MB * 1024 * 1024
            resource.prlimit(proc.pid, resource.RLIMIT_AS, (cap, cap))
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=self.timeout)
        except TimeoutError:
            raise AudioTimeout(f"ffmpeg ran longer than {self.timeout:g} s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        assert proc.returncode is not None
        return proc.returncode, out, err.decode("utf-8", "replace").strip()
