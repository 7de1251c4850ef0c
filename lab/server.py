"""The loopback HTTP plumbing shared by the lab's stand-ins, and the 'something changed' signal they wait on."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["ChangeSignal", "LabServer"]

# Uploads up to Telegram's 50 MB bot limit (plus headroom) must reach the handlers so they can answer the
# way the real service does instead of aiohttp cutting the request off at its 1 MB default.
MAX_BODY = 64 * 1024 * 1024


class ChangeSignal:
    """Wakes whoever waits for news (long-polls, tests' wait_for) whenever a request or an update arrives.

    Cheaper and simpler than a condition per kind of news: waiters re-check their own predicate.
    """

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()
        self._stopping: asyncio.Event | None = None

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait(self, seconds: float) -> None:
        """Sleep until the next notify() or `seconds`, whichever is first."""
        if seconds <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(fut)
        try:
            await asyncio.wait({fut}, timeout=seconds)
        finally:
            self._waiters.discard(fut)

    def arm(self) -> None:
        """Called when the server starts: from now on stop() releases everything that waits."""
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        self.notify()

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def wait_stopping(self) -> None:
        assert self._stopping is not None, "the server is not started"
        await self._stopping.wait()


class LabServer:
    """An aiohttp app on 127.0.0.1 with a random free port, plus the change signal.

    Only loopback is ever bound, so the lab cannot reach or expose anything beyond this machine.
    """

    def __init__(self, signal: ChangeSignal | None = None) -> None:
        self.signal = signal or ChangeSignal()
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:  # pragma: no cover - abstract
        raise NotImplementedError

    async def start(self) -> Self:
        """Bind 127.0.0.1:0 and read back the port the OS chose."""
        if self._runner is not None:
            return self
        self.signal.arm()
        runner = web.AppRunner(self._make_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        """Release long-polls and hung requests first, so shutdown never waits on them."""
        if self._runner is None:
            return
        self.signal.stop()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def stopping(self) -> bool:
        return self.signal.stopping

    def describe(self) -> str:
        """What happened so far, for a failed wait (each stand-in lists its recent traffic)."""
        return type(self).__name__

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 15.0,  # noqa: ASYNC109 - a plain test deadline
        what: str = "condition",
    ) -> None:
        """Wait until predicate() holds; fail with the recent traffic (`describe`) if it never does."""
        await self._poll_until(predicate, timeout, self.describe, what)

    async def _poll_until(
        self, predicate: Callable[[], bool], limit: float, describe: Callable[[], str], what: str
    ) -> None:
        """Wait until predicate() is true; on timeout fail the test with a summary of what happened."""
        deadline = time.monotonic() + limit
        while True:
            if predicate():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {limit:.1f}s waiting for {what}\n{describe()}")
            # Re-check at least every 50 ms: the predicate may depend on state outside this server.
            await self.signal.wait(min(remaining, 0.05))
