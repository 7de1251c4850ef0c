"""How updates arrive: long polling (the default), or a webhook that is cheap to refuse.

In webhook mode Telegram POSTs each update to PARLEY_WEBHOOK_URL (an HTTPS front end — a reverse proxy or
a platform's ingress — forwards it to PARLEY_LISTEN, on the URL's path). `setWebhook` is called with
PARLEY_WEBHOOK_SECRET as the secret token, and Telegram sends it back in the X-Telegram-Bot-Api-Secret-Token
header. python-telegram-bot's own webhook server (tornado) buffers a whole body, up to 100 MB, before it
looks at that header, so four large POSTs from a stranger cost the bot half a gigabyte. This small aiohttp
server answers from the headers alone: 403 without the right secret, 413 for a body over WEBHOOK_MAX_BYTES
(declared, or found while reading), and only then reads the body; malformed JSON or a body that is not an
update is 400 (a 5xx would make Telegram send it again and again). What it accepts goes, as
python-telegram-bot's server would put it, onto the Application's update queue.

Several processes may sit behind one balancer, and Telegram posts an update again when an answer was slow or
lost, sometimes to another process: each update's id is recorded in the database before it is queued, and a
copy whose id is there already is answered 200 (so Telegram stops sending it) and dropped. When the database
cannot record it, the answer is 503: Telegram sends the update again later. As before, an update answered
200 is the process's to turn into a job: one killed (not stopped) in the milliseconds before that loses it.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import Application, ExtBot

from parley.config import Settings
from parley.ops_server import ServeError

if TYPE_CHECKING:
    # aiohttp's server side is imported when the webhook server starts: a bot that polls never needs it.
    from aiohttp import web

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_MAX_BYTES = 1024 * 1024
"""Telegram's updates are a few kilobytes (a message is at most 4,096 characters, plus its entities)."""
MAX_CONNECTIONS = 40
"""How many connections Telegram may open at once to deliver updates (its default)."""


def webhook_path(url: str) -> str:
    """The path the webhook server answers on: the public URL's, as a proxy forwards it unchanged."""
    return urlsplit(url).path.rstrip("/") or "/"


class UpdateReceiver:
    """Takes updates by long polling (python-telegram-bot's Updater) or by webhook, until stopped."""

    def __init__(
        self,
        app: Application,
        settings: Settings,
        *,
        poll_timeout: int,
        allowed_updates: list[str],
        record: Callable[[int], Awaitable[bool]],
    ) -> None:
        self.app = app
        self.record = record
        self.operations = settings.operations
        self.poll_timeout = poll_timeout
        self.allowed_updates = allowed_updates
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if not self.operations.webhook:
            assert self.app.updater is not None
            await self.app.updater.start_polling(timeout=self.poll_timeout, allowed_updates=self.allowed_updates)
            return
        url, secret = self.operations.webhook_url, self.operations.webhook_secret
        assert url is not None and secret is not None
        listen = self.operations.listen
        from aiohttp import web

        server = web.Application(client_max_size=WEBHOOK_MAX_BYTES)
        receive = WebhookHandler(self.app, secret, self.record).receive
        server.router.add_post(webhook_path(url), receive)
        if webhook_path(url) != "/":
            server.router.add_post(webhook_path(url) + "/", receive)
        runner = web.AppRunner(server, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        self._runner = runner
        try:
            await web.TCPSite(runner, listen.host, listen.port).start()
        except OSError as exc:
            raise ServeError(
                f"PARLEY_LISTEN: cannot listen on {listen} ({exc.strerror or exc}): choose another address"
            ) from exc
        try:  # listening first: Telegram may post the first update as soon as setWebhook returns
            await self.app.bot.set_webhook(
                url, allowed_updates=self.allowed_updates, secret_token=secret, max_connections=MAX_CONNECTIONS
            )
        except BadRequest as exc:
            raise ServeError(
                f"PARLEY_WEBHOOK_URL: Telegram refused the webhook {url} ({exc.message}): "
                "it must be a public https:// URL (ports 443, 80, 88 or 8443)"
            ) from exc
        log.info("webhook: listening on %s%s for %s", listen, webhook_path(url), url)

    async def stop(self) -> None:
        """Take no more updates (those already taken stay on the Application's queue)."""
        updater = self.app.updater
        if updater is not None and updater.running:
            await updater.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class WebhookHandler:
    """One POST from Telegram: refused from its headers when it can be, read (bounded) only when it is due."""

    def __init__(self, app: Application, secret: str, record: Callable[[int], Awaitable[bool]]) -> None:
        self.app = app
        self._secret = secret.encode()
        self._record = record

    async def receive(self, request: web.Request) -> web.Response:
        from aiohttp import web

        token = request.headers.get(SECRET_HEADER, "").encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(token, self._secret):
            return web.Response(status=403, text="wrong or missing secret token")
        if request.content_length is not None and request.content_length > WEBHOOK_MAX_BYTES:
            return web.Response(status=413, text="an update is never this large")
        try:
            body = await request.read()  # raises 413 past client_max_size, for bodies of undeclared length
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413, text="an update is never this large")
        try:
            data = json.loads(body)
            update = Update.de_json(data, self.app.bot) if isinstance(data, dict) else None
        except Exception:  # any malformed body (bad JSON, or JSON that is no update): say so, never a 5xx
            update = None
        if update is None:
            log.warning("webhook: a request with the right secret carried no readable update (%d bytes)", len(body))
            return web.Response(status=400, text="not a Telegram update")
        try:
            first = await self._record(update.update_id)
        except Exception as exc:  # the database cannot say whether it is new: let Telegram send it again
            log.error("webhook: update %s not recorded (%s): Telegram will send it again", update.update_id, exc)
            return web.Response(status=503, text="try again later")
        if not first:
            log.info("webhook: update %s taken in already: this copy dropped", update.update_id)
            return web.Response(status=200)
        if isinstance(self.app.bot, ExtBot):
            self.app.bot.insert_callback_data(update)
        await self.app.update_queue.put(update)
        return web.Response(status=200)
