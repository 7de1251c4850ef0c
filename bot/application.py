"""Wires python-telegram-bot to Parley's services and runs it until told to stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from telegram import Update
from telegram.ext import Application, ApplicationBuilder

from bot.dispatch import Dispatcher
from bot.features import reminders
from bot.features.groups import schedule
from bot.features.privacy import apply_retention, retention_due
from bot.intake import Intake
from bot.observe import ObservedRateLimiter, observe
from bot.order import ChatOrderedUpdates
from bot.registry import ROUTES, Menus, register
from bot.telegram_http import AiohttpRequest
from bot.webhook import UpdateReceiver
from parley.memory import release_free_memory
from parley.ops_server import serve_ops
from parley.services import Services

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.MY_CHAT_MEMBER]


RETENTION_EVERY = 24 * 3600.0

RELEASE_MEMORY_EVERY = 10.0
"""How often the bot gives the free pages in its heap back to the system (parley/memory.py): a burst of
turns leaves megabytes of them, kept for good otherwise; each release takes well under a millisecond."""


def build_application(services: Services) -> tuple[Application, Dispatcher, Menus]:
    """python-telegram-bot's Application with every handler registered, the dispatcher of its jobs, and the
    command menus (published at start-up)."""
    settings = services.settings
    app = (
        ApplicationBuilder()
        .token(settings.telegram.token)
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .rate_limiter(ObservedRateLimiter(services.metrics, max_retries=10))
        .request(AiohttpRequest(connection_pool_size=64, read_timeout=30, write_timeout=60, media_write_timeout=120))
        .get_updates_request(AiohttpRequest())
        .concurrent_updates(ChatOrderedUpdates())
        .local_mode(settings.telegram.local_bot_api)
        .build()
    )
    dispatcher = Dispatcher(services, app.bot, ROUTES, job_queue=app.job_queue)
    intake = Intake(dispatcher.edge, user_rate=settings.access.user_rate, chat_rate=settings.access.chat_rate)
    menus = Menus(settings.access.admins, settings.telegram.language)
    register(app, intake, settings, menus)
    observe(app, services.metrics)
    return app, dispatcher, menus


async def run_bot(
    services: Services,
    stop: asyncio.Event,
    *,
    poll_timeout: int = 30,
    retention_every: float = RETENTION_EVERY,
    on_started: Callable[[Application], None] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Take updates (polling, or the webhook server) until `stop` is set, then finish jobs and shut down.

    Raises telegram.error.InvalidToken / NetworkError when Telegram refuses or cannot be reached at start.
    """
    app, dispatcher, menus = build_application(services)
    receiver = UpdateReceiver(
        app,
        services.settings,
        poll_timeout=poll_timeout,
        allowed_updates=ALLOWED_UPDATES,
        record=services.storage.updates.record,
    )
    # The ops endpoint first (/healthz answers during start-up); app: initialize() is getMe, checking the token.
    async with serve_ops(services, stop), app:
        await services.audio.start()  # the codec workers load FFmpeg's libraries while the rest starts up
        me = app.bot
        await menus.publish(me)
        if services.access.unconfigured:
            log.warning(
                "nobody can use this bot: PARLEY_ADMINS and PARLEY_ALLOWED are both empty. Set PARLEY_ADMINS to "
                "your numeric user id (write to the bot: its reply tells you your id) and restart."
            )
        await apply_retention(services)
        await app.start()
        try:
            if app.job_queue is not None:
                app.job_queue.run_repeating(
                    lambda _context: retention_due(services, retention_every), interval=retention_every,
                    first=retention_every, name="retention",
                )  # fmt: skip
                app.job_queue.run_repeating(
                    schedule.sync(dispatcher.edge), interval=schedule.SYNC_SECONDS, first=schedule.SYNC_SECONDS,
                    name="digest-sync",
                )  # fmt: skip
                app.job_queue.run_repeating(
                    _release_memory, interval=RELEASE_MEMORY_EVERY, first=RELEASE_MEMORY_EVERY, name="release-memory"
                )
            await dispatcher.resume()
            dispatcher.start()
            await schedule.restore(dispatcher.edge)
            services.reminders = reminders.start(dispatcher.edge)
            if on_started is not None:
                on_started(app)
            await receiver.start()
            log.info("Parley is running as @%s", me.username)
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("stopping: no new updates; finishing jobs in progress, the rest stay queued")
        finally:
            # Also on a failed start: a still-running Application would hide the real error at shutdown.
            await receiver.stop()
            if services.reminders is not None:
                await services.reminders.stop()
            await dispatcher.stop()
            await services.scheduler.shutdown(services.settings.operations.shutdown_seconds)
            await dispatcher.release()
            await app.stop()
    log.info("stopped")


async def _release_memory(_context: object) -> None:
    release_free_memory()
