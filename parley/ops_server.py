"""The operations endpoint: /healthz, /readyz and /metrics on PARLEY_METRICS_LISTEN (127.0.0.1:9090).

It is an aiohttp server on the bot's own event loop, so /healthz answering *is* the liveness check: a
blocked or dead loop answers nothing. It serves in polling and in webhook mode alike, on its own address,
so the metrics are never exposed where Telegram's webhook requests arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from parley.audio import AudioConverter
from parley.config import Address
from parley.health import readiness
from parley.metrics import CONTENT_TYPE, Metrics
from parley.services import Services
from storage import Storage

if TYPE_CHECKING:
    # aiohttp's server side is imported when a server starts: with PARLEY_METRICS_LISTEN=off, no process
    # of the bot ever needs it.
    from aiohttp import web

log = logging.getLogger(__name__)


class OpsServer:
    def __init__(
        self,
        address: Address,
        *,
        storage: Storage,
        audio: AudioConverter,
        metrics: Metrics,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.address = address
        self.storage = storage
        self.audio = audio
        self.metrics = metrics
        self.stopping = stopping or asyncio.Event()
        """Set on SIGTERM: /readyz then answers 503, so a load balancer stops sending work here."""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be used (e.g. already in use)."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.address.host, self.address.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        log.info("health and metrics on http://%s (/healthz, /readyz, /metrics)", self.address)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        if self.stopping.is_set():
            return web.json_response({"ready": False, "reason": "shutting down"}, status=503)
        result = await readiness(self.storage, self.audio, self.metrics)
        checks = {name: reason or "ok" for name, reason in result.checks.items()}
        if result.ready:
            return web.json_response({"ready": True, "checks": checks})
        return web.json_response({"ready": False, "reason": result.reason, "checks": checks}, status=503)

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web

        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


class ServeError(Exception):
    """A server Parley was told to run cannot start (address in use, webhook refused): one plain line."""


@contextlib.asynccontextmanager
async def serve_ops(services: Services, stopping: asyncio.Event) -> AsyncIterator[OpsServer | None]:
    """Run the operations endpoint for the life of the block (nothing when PARLEY_METRICS_LISTEN=off).

    `stopping` is the bot's stop event: once set, /readyz answers 503 while jobs in progress finish.
    """
    address = services.settings.operations.metrics_listen
    if address is None:
        yield None
        return
    server = OpsServer(
        address, storage=services.storage, audio=services.audio, metrics=services.metrics, stopping=stopping
    )
    try:
        await server.start()
    except OSError as exc:
        raise ServeError(
            f"PARLEY_METRICS_LISTEN: cannot listen on {address} ({exc.strerror or exc}): "
            "choose another address, or set it to off"
        ) from exc
    try:
        yield server
    finally:
        await server.stop()
