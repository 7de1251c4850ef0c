"""A small pool of codec worker processes (worker.py), driven from the event loop without blocking it.

Why processes and not threads: the decoders are C code fed untrusted bytes. In a worker, a crash costs
one worker (replaced at the next request), a hang is ended by killing it at the deadline, and a memory
bomb hits the worker's address-space cap; the bot carries on and the sender gets a plain answer. Why a
pool and not a process per conversion: starting Python with FFmpeg's libraries takes ~100 ms of CPU,
far more than decoding a voice note (a few milliseconds).

The pool is as wide as the machine's cores: codec work is CPU work, and more of it at once only queues
inside the kernel instead of here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from parley.audio.worker import HEADER, MESSAGE
from parley.errors import AudioError, AudioTimeout

log = logging.getLogger(__name__)

WORKER_MEMORY_MB = 512
"""Each worker's address-space cap (RLIMIT_AS). A worker with FFmpeg's libraries loaded maps ~150 MB;
the rest bounds what one conversion may allocate (30 minutes of 16 kHz PCM is 58 MB)."""


def default_size() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class WorkerCrashed(AudioError):
    """The worker died mid-conversion (a decoder crash, or the memory cap reached)."""


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def call(
        self, header: dict[str, Any], payload: bytes, sink: Callable[[bytes], None]
    ) -> tuple[bytes, dict[str, Any]]:
        """Send one request; hand each piece of output to `sink`; return the final message (b"R" with the
        result, or b"E" with the error): either way the worker is ready for the next request."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        encoded = json.dumps({**header, "size": len(payload)}).encode()
        self.proc.stdin.write(HEADER.pack(len(encoded)) + encoded)
        self.proc.stdin.write(payload)
        try:
            await self.proc.stdin.drain()
            while True:
                kind, size = MESSAGE.unpack(await self.proc.stdout.readexactly(MESSAGE.size))
                body = await self.proc.stdout.readexactly(size)
                if kind == b"D":
                    sink(body)
                    continue
                return kind, json.loads(body)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            raise WorkerCrashed(f"the codec worker died ({type(exc).__name__})") from None

    async def stop(self, *, kill: bool) -> None:
        if self.alive:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            elif self.proc.stdin is not None:
                self.proc.stdin.close()  # the worker's read sees the end and it exits
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class CodecPool:
    """Runs codec requests on at most `size` workers at once; each worker started on first need."""

    def __init__(self, size: int | None = None, *, memory_mb: int = WORKER_MEMORY_MB) -> None:
        self.size = size or default_size()
        self.memory_mb = memory_mb
        self._slots = asyncio.Semaphore(self.size)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False
        self.started = 0
        """Workers started so far (crashed and timed-out ones are replaced): for tests and metrics."""

    async def _spawn(self) -> _Worker:
        env = {**os.environ, "MALLOC_ARENA_MAX": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "parley.audio.worker",
            str(self.memory_mb),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=1 << 20,
        )
        self.started += 1
        return _Worker(proc)

    async def run(
        self,
        header: dict[str, Any],
        payload: bytes,
        *,
        timeout: float,  # noqa: ASYNC109
        sink: Callable[[bytes], None] = lambda _: None,
    ) -> dict[str, Any]:
        """One request on a free worker, killed (and replaced later) when it outlives `timeout` or when the
        caller is cancelled: a worker whose request was abandoned midway cannot be trusted with the next."""
        if self._closed:
            raise AudioError("the codec pool is closed")
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            self._busy.add(worker)
            clean = False
            try:
                async with asyncio.timeout(timeout):
                    kind, message = await worker.call(header, payload, sink)
                clean = True
            except TimeoutError:
                raise AudioTimeout(f"the codec ran longer than {timeout:g} s") from None
            finally:
                self._busy.discard(worker)
                if clean and worker.alive and not self._closed:
                    self._idle.append(worker)
                else:
                    await asyncio.shield(worker.stop(kill=True))
        if kind == b"R":
            return message
        if message.get("kind") == "too_long":
            raise AudioTimeout(str(message.get("message", "too long")))
        raise AudioError(str(message.get("message", "unreadable")))

    async def close(self) -> None:
        """Stop every worker (idle ones asked to exit, busy ones killed)."""
        self._closed = True
        idle, self._idle = self._idle, []
        busy, self._busy = list(self._busy), set()
        await asyncio.gather(
            *(w.stop(kill=False) for w in idle), *(w.stop(kill=True) for w in busy), return_exceptions=True
        )
