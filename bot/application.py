"""Wires python-telegram-bot to Parley's services and runs it until told to stop."""

from __future__ import annotations

import asyncio
import logging

from telegram import BotCommand, Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder

from bot.dispatch import Dispatcher
from bot.handlers import Handlers
from bot.jobs import ChatJobs
from bot.texts import COMMANDS
from parley.services import Services

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def build_application(services: Services) -> tuple[Application, Dispatcher]:
    settings = services.settings
    app = (
        ApplicationBuilder()
        .token(settings.telegram_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .connection_pool_size(64)
        .read_timeout(30)
        .write_timeout(60)
        .media_write_timeout(120)
        .build()
    )
    dispatcher = Dispatcher(
        storage=services.storage,
        scheduler=services.scheduler,
        jobs=ChatJobs(services, app.bot),
        max_queue=services.settings.max_queue,
    )
    Handlers(dispatcher).register(app)
    return app, dispatcher


async def run_bot(
    services: Services,
    stop: asyncio.Event,
    *,
    poll_timeout: int = 30,
    ready: asyncio.Event | None = None,
) -> None:
    """Poll for updates until `stop` is set, then finish in-flight jobs and shut down cleanly.

    Raises telegram.error.InvalidToken / NetworkError when Telegram refuses or cannot be reached at start.
    """
    app, dispatcher = build_application(services)
    updater = app.updater
    if updater is None:  # pragma: no cover - the builder always makes one unless told not to
        raise RuntimeError("python-telegram-bot was built without an Updater")
    async with app:  # initialize(): getMe, which also checks the token
        me = app.bot
        await me.set_my_commands([BotCommand(name, description) for name, description in COMMANDS])
        await app.start()
        try:
            await dispatcher.resume()
            await updater.start_polling(timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES)
            log.info("Parley is running as @%s", me.username)
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("stopping: no new updates; finishing jobs in progress, the rest stay queued")
        finally:
            # Also on a failed start: a still-running Application would hide the real error at shutdown.
            if updater.running:
                await updater.stop()
            await services.scheduler.shutdown(services.settings.shutdown_seconds)
            await app.stop()
    log.info("stopped")
