"""A small pool of codec worker processes (worker.py), driven from the event loop without blocking it.

Why processes and not threads: the decoders are C code fed untrusted bytes. In a worker, a crash costs
one worker (replaced at the next request), a hang is ended by killing it at the deadline, and a memory
bomb hits the worker's address-space cap; the bot carries on and the sender gets a plain answer. Why a
pool and not a process per conversion: starting Python with FFmpeg's libraries costs far more CPU than
decoding a voice note.

The pool is as wide as the machine's cores: codec work is CPU work, and more of it at once only queues
inside the kernel instead of here.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from parley.audio.worker import HEADER, MESSAGE
from parley.errors import AudioError, AudioTimeout, AudioTooLong

log = logging.getLogger(__name__)

WORKER_MEMORY_MB = 512
"""Each worker's address-space cap (RLIMIT_AS). A worker with FFmpeg's libraries loaded maps a good part of it;
the rest bounds what one conversion may allocate (30 minutes of 16 kHz PCM is 58 MB)."""


PIPE_BYTES = 1 << 20
"""Where the links to a worker are pipes (asyncio's own loop), they are widened from Linux's 64 KB to this
(the system's usual maximum), so a piece of a reply passes in one write instead of waking both processes
per 64 KB. uvloop, which `parley run` uses, links them with socket pairs instead, whose buffers already hold a
four-second piece; _widen leaves those as they are."""


def _widen(pipe: object) -> None:
    """Best effort: the pipe keeps its size where the system does not allow more."""
    transport = getattr(pipe, "transport", None) or getattr(pipe, "_transport", None)
    fileno = getattr(transport.get_extra_info("pipe"), "fileno", None) if transport is not None else None
    if fileno is not None and hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):
            fcntl.fcntl(fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)


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

    async def send(self, header: dict[str, Any], payload: bytes) -> None:
        """Write one request (the pipe is large enough that this rarely waits for the worker)."""
        assert self.proc.stdin is not None
        encoded = json.dumps({**header, "size": len(payload)}).encode()
        self.proc.stdin.write(HEADER.pack(len(encoded)) + encoded)
        self.proc.stdin.write(payload)
        try:
            await self.proc.stdin.drain()
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise WorkerCrashed(f"the codec worker died ({type(exc).__name__})") from None

    async def call(
        self, header: dict[str, Any], payload: bytes, sink: Callable[[bytes], None]
    ) -> tuple[bytes, dict[str, Any]]:
        """Send one request; hand each piece of output to `sink`; return the final message (b"R" with the
        result, or b"E" with the error): either way the worker is ready for the next request. A file the
        worker made beside the output (b"F") comes with the result, under "file"."""
        assert self.proc.stdout is not None
        await self.send(header, payload)
        file: bytes | None = None
        try:
            while True:
                kind, size = MESSAGE.unpack(await self.proc.stdout.readexactly(MESSAGE.size))
                body = await self.proc.stdout.readexactly(size)
                if kind == b"D":
                    sink(body)
                    continue
                if kind == b"F":
                    file = body
                    continue
                message = json.loads(body)
                if kind == b"R" and file is not None:
                    message["file"] = file
                return kind, message
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


class _Slot:
    """One worker's place in the pool: requests on it run one at a time, in arrival order."""

    def __init__(self) -> None:
        self.worker: _Worker | None = None
        self.lock = asyncio.Lock()
        self.load = 0
        """Requests running or waiting here, and open voice streams: where the next request goes."""
        self.generation = 0
        """Bumped with each worker started here: a voice stream opened on an older one is gone."""


class CodecPool:
    """Runs codec requests on at most `size` workers at once. `start()` starts them all at boot (the bot
    calls it), so the first voice note does not wait for a worker to start (FFmpeg's libraries a worker
    loads only for an input that needs them: worker.py); a worker that crashed or was killed is started
    again by the next request that needs it.

    A request goes to the least loaded worker. A voice stream (an Opus encoder fed as the model's audio
    arrives) stays on the worker it was opened on, since the encoder's state lives there; its pieces are
    short requests like any other, so it never holds a worker while waiting for the network."""

    def __init__(self, size: int | None = None, *, memory_mb: int = WORKER_MEMORY_MB) -> None:
        self.size = size or default_size()
        self.memory_mb = memory_mb
        self._slots = [_Slot() for _ in range(self.size)]
        self._closed = False
        self._next_stream = 0
        self.started = 0
        """Workers started so far (crashed and timed-out ones are replaced): for tests and metrics."""

    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [slot.worker.proc.pid for slot in self._slots if slot.worker is not None and slot.worker.alive]

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
        for pipe in (proc.stdin, proc.stdout):
            _widen(pipe)
        self.started += 1
        log.info("codec worker %d started (pid %d, %d MB address space)", self.started, proc.pid, self.memory_mb)
        return _Worker(proc)

    async def start(self) -> None:
        """Start every worker that is not running yet. Only the spawn happens here (a fork and exec); each
        worker loads its libraries in its own process, on its own core, while the bot carries on."""
        if self._closed:
            raise AudioError("the codec pool is closed")
        for slot in self._slots:
            async with slot.lock:
                if slot.worker is None or not slot.worker.alive:
                    slot.worker = await self._spawn()
                    slot.generation += 1

    def idle(self) -> int:
        """Workers with nothing running, waiting or open on them."""
        return sum(1 for slot in self._slots if slot.load == 0)

    def _least_loaded(self) -> int:
        return min(range(self.size), key=lambda index: self._slots[index].load)

    async def run(
        self,
        header: dict[str, Any],
        payload: bytes,
        *,
        timeout: float,  # noqa: ASYNC109
        sink: Callable[[bytes], None] = lambda _: None,
    ) -> dict[str, Any]:
        """One request on the least loaded worker. See _run_on for what happens when it goes wrong."""
        return await self._run_on(self._least_loaded(), None, header, payload, timeout, sink)

    async def _run_on(
        self,
        index: int,
        generation: int | None,
        header: dict[str, Any],
        payload: bytes,
        timeout: float,  # noqa: ASYNC109
        sink: Callable[[bytes], None] | None,
    ) -> dict[str, Any]:
        """Run on worker `index` (one that is still of `generation`, when given). The worker is killed,
        and replaced at the next request, when the request outlives `timeout` or the caller is cancelled:
        a worker whose request was abandoned midway cannot be trusted with the next. Without a `sink`,
        the request is one the worker does not answer (a voice_feed): it is written, not waited for."""
        if self._closed:
            raise AudioError("the codec pool is closed")
        slot = self._slots[index]
        slot.load += 1
        try:
            async with slot.lock:
                alive = slot.worker is not None and slot.worker.alive
                if generation is not None and (generation != slot.generation or not alive):
                    raise WorkerCrashed("the codec worker holding this voice stream is gone")
                if slot.worker is None or not alive:
                    slot.worker = await self._spawn()
                    slot.generation += 1
                worker = slot.worker
                clean = False
                try:
                    async with asyncio.timeout(timeout):
                        if sink is None:
                            await worker.send(header, payload)
                            kind, message = b"R", dict[str, Any]()
                        else:
                            kind, message = await worker.call(header, payload, sink)
                    clean = True
                except TimeoutError:
                    raise AudioTimeout(f"the codec ran longer than {timeout:g} s") from None
                finally:
                    if not clean or not worker.alive:
                        slot.worker = None  # the next request starts a new one (of the next generation)
                        await asyncio.shield(worker.stop(kill=True))
        finally:
            slot.load -= 1
        if kind == b"R":
            return message
        if message.get("kind") == "too_long":
            raise AudioTooLong(str(message.get("message", "too long")))
        raise AudioError(str(message.get("message", "unreadable")))

    async def open_stream(self, header: dict[str, Any], *, timeout: float) -> tuple[int, int, int]:  # noqa: ASYNC109
        """Start a stream on the least loaded worker: (its slot, the worker's generation, the stream id)."""
        index = self._least_loaded()
        self._next_stream += 1
        stream = self._next_stream
        await self._run_on(index, None, {**header, "stream": stream}, b"", timeout, lambda _: None)
        slot = self._slots[index]
        slot.load += 1  # an open stream counts: its pieces will come here
        return index, slot.generation, stream

    async def stream_call(
        self,
        where: tuple[int, int, int],
        header: dict[str, Any],
        payload: bytes,
        *,
        timeout: float,  # noqa: ASYNC109
        sink: Callable[[bytes], None],
    ) -> dict[str, Any]:
        index, generation, stream = where
        return await self._run_on(index, generation, {**header, "stream": stream}, payload, timeout, sink)

    async def stream_send(
        self,
        where: tuple[int, int, int],
        header: dict[str, Any],
        payload: bytes,
        *,
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """A request the worker does not answer (a voice_feed): written in turn, its outcome reported by the
        stream's last request."""
        index, generation, stream = where
        await self._run_on(index, generation, {**header, "stream": stream}, payload, timeout, None)

    def close_stream(self, where: tuple[int, int, int]) -> None:
        self._slots[where[0]].load -= 1

    async def close(self) -> None:
        """Stop every worker: idle ones are asked to exit, busy ones killed."""
        self._closed = True
        stops = []
        for slot in self._slots:
            worker, slot.worker = slot.worker, None
            if worker is not None:
                stops.append(worker.stop(kill=slot.lock.locked()))
        await asyncio.gather(*stops, return_exceptions=True)
