"""Readiness checks: can this process do its job right now? Each check answers None (fine) or a reason.

- database: SQLite can write — a file can be created next to the database (SQLite needs to, for its
  -wal and -shm files) and a write transaction can begin and commit;
- ffmpeg: the binary runs;
- telegram: the Bot API has answered a request at least once since start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parley.audio import AudioConverter
from parley.metrics import Metrics
from storage import Storage

CHECK_SECONDS = 5.0
"""A readiness probe must answer quickly; a check that takes longer than this has failed."""


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str | None] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(reason is None for reason in self.checks.values())

    @property
    def reason(self) -> str | None:
        """The first failed check, as one line (None when ready)."""
        return next((f"{name}: {reason}" for name, reason in self.checks.items() if reason), None)


def _probe_directory(directory: Path) -> None:
    probe = directory / f".parley-probe-{os.getpid()}"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"ok")
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()


async def check_database(storage: Storage) -> str | None:
    if storage.path is not None and str(storage.path) != ":memory:":
        directory = storage.path.resolve().parent
        try:
            await asyncio.to_thread(_probe_directory, directory)
        except OSError as exc:
            return f"cannot write in {directory} ({exc.strerror or exc}): SQLite needs to create files there"
    try:
        async with storage.db.transaction():  # BEGIN IMMEDIATE … COMMIT: takes the write lock
            pass
    except Exception as exc:
        return f"cannot write to {storage.db.description} ({exc})"
    return None


async def check_ffmpeg(audio: AudioConverter) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            audio.ffmpeg_path,
            "-hide_banner",
            "-version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except OSError as exc:
        return f"cannot run {audio.ffmpeg_path} ({exc.strerror or exc})"
    try:
        code = await asyncio.wait_for(proc.wait(), timeout=CHECK_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"{audio.ffmpeg_path} -version did not finish in {CHECK_SECONDS:g} s"
    return None if code == 0 else f"{audio.ffmpeg_path} -version exited with {code}"


async def check_telegram(metrics: Metrics) -> str | None:
    return None if metrics.reached_telegram else "the Bot API has not answered yet"


async def readiness(storage: Storage, audio: AudioConverter, metrics: Metrics) -> Readiness:
    """Run every check at once, each within CHECK_SECONDS."""

    async def bounded(check: Coroutine[Any, Any, str | None]) -> str | None:
        try:
            return await asyncio.wait_for(check, timeout=CHECK_SECONDS)
        except TimeoutError:
            return f"no answer within {CHECK_SECONDS:g} s"

    database, ffmpeg, telegram = await asyncio.gather(
        bounded(check_database(storage)), bounded(check_ffmpeg(audio)), bounded(check_telegram(metrics))
    )
    return Readiness({"database": database, "ffmpeg": ffmpeg, "telegram": telegram})
