"""Wires python-telegram-bot to Parley's services and runs it until told to stop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from telegram import Bot, BotCommand, BotCommandScopeChat, Update
from telegram.error import BadRequest
from telegram.ext import Application, ApplicationBuilder, CallbackContext

from bot.dispatch import Dispatcher
from bot.gate import Gate
from bot.groups import DigestScheduler, GroupJobs
from bot.handlers import Handlers
from bot.jobs import ChatJobs
from bot.observe import ObservedRateLimiter, observe
from bot.texts import ADMIN_COMMANDS, COMMANDS
from bot.tools import ToolJobs
from bot.webhook import receive_updates
from parley.ops_server import serve_ops
from parley.services import Services
from parley.summaries import GroupSummarizer
from parley.tools import VoiceTools

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]


RETENTION_EVERY = 24 * 3600.0


async def publish_commands(bot: Bot, admins: frozenset[int]) -> None:
    """The command menu; admins also see the admin commands in their own chat with the bot."""
    await bot.set_my_commands([BotCommand(name, description) for name, description in COMMANDS])
    for admin in sorted(admins):
        try:
            await bot.set_my_commands(
                [BotCommand(n, d) for n, d in [*COMMANDS, *ADMIN_COMMANDS]], scope=BotCommandScopeChat(admin)
            )
        except BadRequest as exc:  # the admin has not opened a chat with the bot yet
            log.info("admin %s: command menu not set (%s)", admin, exc.message)


async def apply_retention(services: Services) -> None:
    """Delete what is older than PARLEY_RETENTION_DAYS (at start-up and daily, by the JobQueue)."""
    settings = services.settings
    report = await services.storage.privacy.apply_retention(
        days=settings.privacy.retention_days, audio_days=settings.privacy.audio_retention_days
    )
    privacy = settings.privacy
    group_days = min(privacy.group_retention_days or privacy.retention_days, privacy.retention_days)
    group_messages = await services.storage.groups.prune(time.time() - group_days * 86400)
    await services.storage.checkpoint()  # what was pruned survives in no file
    if group_messages:
        log.info("retention (%g days): deleted %d group log entries", group_days, group_messages)
    log.info(
        "retention (%g days): deleted %d turns, %d conversations, %d jobs, %d audio files",
        settings.privacy.retention_days,
        report.turns,
        report.conversations,
        report.jobs,
        report.audio,
    )


async def restore_digests(services: Services, groups: GroupJobs) -> None:
    """Daily digests live in SQLite; the JobQueue is rebuilt from there at every start."""
    if groups.digests is None:
        return
    for digest in await services.storage.groups.digests():
        groups.digests.schedule(digest.chat_id, digest.time, digest.timezone)


def _digest_firer(dispatcher: Dispatcher) -> Callable[[CallbackContext], Awaitable[None]]:
    """A daily digest is a durable summary job like any other, keyed by its day so it runs once."""

    async def fire(context: CallbackContext) -> None:
        job = context.job
        if job is None or job.chat_id is None:
            return
        day = time.strftime("%Y-%m-%d", time.gmtime())
        await dispatcher.accept(
            chat_id=job.chat_id, source=f"digest:{day}", kind="summary", payload={"span": "", "digest": True}
        )

    return fire


def build_application(services: Services) -> tuple[Application, Dispatcher]:
    settings = services.settings
    app = (
        ApplicationBuilder()
        .token(settings.telegram.token)
        .base_url(settings.telegram.base_url)
        .base_file_url(settings.telegram.base_file_url)
        .rate_limiter(ObservedRateLimiter(services.metrics, max_retries=10))
        .connection_pool_size(64)
        .read_timeout(30)
        .write_timeout(60)
        .media_write_timeout(120)
        .local_mode(settings.telegram.local_bot_api)
        .build()
    )
    summarizer = GroupSummarizer(
        model=services.model,
        audio=services.audio,
        summary_model=settings.model.summary_model,
        chunk_tokens=settings.groups.summary_chunk_tokens,
    )
    groups = GroupJobs(services, app.bot, summarizer)
    dispatcher = Dispatcher(
        storage=services.storage,
        scheduler=services.scheduler,
        jobs=ChatJobs(services, app.bot),
        groups=groups,
        tools=ToolJobs(
            services,
            app.bot,
            VoiceTools(
                model=services.model,
                audio=services.long_audio or services.audio,
                summary_model=settings.model.summary_model,
                segment_seconds=settings.tools.segment_seconds,
            ),
        ),
        max_queue=services.settings.operations.max_queue,
    )
    if app.job_queue is not None:
        groups.digests = DigestScheduler(app.job_queue, _digest_firer(dispatcher))
    Handlers(
        dispatcher,
        storage=services.storage,
        gate=Gate(services.access, services.storage),
        policy=services.access,
        user_rate=settings.access.user_rate,
        chat_rate=settings.access.chat_rate,
        summary_rate=settings.groups.summary_rate,
    ).register(app)
    observe(app, services.metrics)
    return app, dispatcher


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
    app, dispatcher = build_application(services)
    updater = app.updater
    if updater is None:  # pragma: no cover - the builder always makes one unless told not to
        raise RuntimeError("python-telegram-bot was built without an Updater")
    # The ops endpoint first (/healthz answers during start-up); app: initialize() is getMe, checking the token.
    async with serve_ops(services, stop), app:
        me = app.bot
        await publish_commands(me, services.settings.access.admins)
        await apply_retention(services)
        await app.start()
        try:
            if app.job_queue is not None:
                app.job_queue.run_repeating(
                    lambda _context: apply_retention(services), interval=retention_every, first=retention_every,
                    name="retention",
                )  # fmt: skip
            await dispatcher.resume()
            await restore_digests(services, dispatcher.groups)
            if on_started is not None:
                on_started(app)
            await receive_updates(
                updater, services.settings, poll_timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
            log.info("Parley is running as @%s", me.username)
            if ready is not None:
                ready.set()
            await stop.wait()
            log.info("stopping: no new updates; finishing jobs in progress, the rest stay queued")
        finally:
            # Also on a failed start: a still-running Application would hide the real error at shutdown.
            if updater.running:
                await updater.stop()
            await services.scheduler.shutdown(services.settings.operations.shutdown_seconds)
            await app.stop()
    log.info("stopped")
