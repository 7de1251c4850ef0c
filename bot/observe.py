"""What the Telegram edge reports to the metrics: updates by kind, Bot API 429s and successes, errors.

All of it hooks into python-telegram-bot's own extension points (a handler group, the rate limiter, an
error handler), so no handler has to remember to count anything.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from parley.metrics import Metrics

COUNT_GROUP = -100
"""Handler group for counting: before every other group (access control runs in -1), and never matched
by anything else, since only the first matching handler of a group runs."""


def update_kind(update: Update) -> str:
    """voice, text, command, button or other: the label of parley_updates_total."""
    if update.callback_query is not None:
        return "button"
    message = update.message
    if message is None:
        return "other"
    if message.voice is not None:
        return "voice"
    if message.text is not None:
        return "command" if message.text.startswith("/") else "text"
    return "other"


UNMETERED = "sendChatAction"
"""The Bot API method sent past the rate limiter."""


class ObservedRateLimiter(AIORateLimiter):
    """AIORateLimiter (which waits out a 429 and tries again) that also counts 429s and notes success; chat
    actions go past it."""

    def __init__(self, metrics: Metrics, *, max_retries: int) -> None:
        super().__init__(max_retries=max_retries)
        self._metrics = metrics

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        metrics = self._metrics

        async def observed(*call_args: Any, **call_kwargs: Any) -> Any:
            try:
                result = await callback(*call_args, **call_kwargs)
            except RetryAfter:
                metrics.telegram_rate_limited.inc()
                raise
            metrics.telegram_succeeded()
            return result

        if endpoint == UNMETERED:
            # Not a message: Telegram's 30 messages a second are for answers. Metered, a burst of people
            # would spend the budget on "recording voice…" and their answers would queue behind it; a
            # refused chat action is simply not shown (the sender does not retry it).
            return await observed(*args, **kwargs)
        return await super().process_request(observed, args, kwargs, endpoint, data, rate_limit_args)


def observe(app: Application, metrics: Metrics) -> None:
    """Count every update as it arrives, and every error python-telegram-bot reports, by class."""

    async def count_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        metrics.updates.labels(update_kind(update)).inc()

    async def count_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        metrics.error(type(context.error).__name__)

    app.add_handler(TypeHandler(Update, count_update), group=COUNT_GROUP)
    app.add_error_handler(count_error)
