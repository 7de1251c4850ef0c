"""Button taps: one job kind for every inline button, routed by its callback prefix to the feature that made it.

A tap runs in its chat's turn like any message (a choice made while a reply is being recorded applies
after it). The feature's function returns what happened, and the buttons' message is edited to say so.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot import texts
from bot.callbacks import CallbackData, CallbackDataError, prefix_of
from bot.jobs import Payload
from bot.replies import Retry, Run

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Press(Payload, kind="button"):
    user_id: int
    message_id: int  # the message that carries the buttons
    data: str


C = TypeVar("C", bound=CallbackData)


@dataclass(frozen=True, slots=True)
class Button(Generic[C]):
    """A feature's button: its data type and what a tap does (the sentence that replaces the buttons)."""

    data: type[C]
    tapped: Callable[[C, Press, Run], Awaitable[str | None]]

    async def __call__(self, press: Press, run: Run) -> str | None:
        return await self.tapped(self.data.unpack(press.data), press, run)


class Buttons:
    """The prefix → button table; its `press` is the job body of every tap."""

    def __init__(self, *buttons: Button[Any]) -> None:
        self._by_prefix = {button.data.prefix: button for button in buttons}
        if len(self._by_prefix) != len(buttons):
            raise ValueError("two buttons with the same callback prefix")

    async def press(self, press: Press, run: Run) -> bool:
        button = self._by_prefix.get(prefix_of(press.data))
        if button is None:
            log.info("chat=%s a button of no known kind: %r", run.chat_id, press.data)
            return True
        try:
            result = await button(press, run)
        except CallbackDataError as exc:  # a keyboard from an older Parley, or a forged tap
            log.info("chat=%s %s", run.chat_id, exc)
            return True
        await run.settle(press.message_id, result)
        return True


async def retry(tap: Retry, press: Press, run: Run) -> str | None:
    """Try again: put the failed job back and run it now, in this chat's turn; only for whoever sent it."""
    failed = await run.services.storage.jobs.get(tap.job_id)
    if failed is not None and _sender(failed.payload) not in (None, press.user_id):
        log.info("chat=%s job=%s retry pressed by someone else: ignored", run.chat_id, tap.job_id)
        return None
    original = await run.services.storage.jobs.requeue(tap.job_id, run.chat_id)
    if original is None:
        await run.settle(press.message_id, texts.RETRY_GONE)
        return None
    await run.settle(press.message_id, texts.RETRYING)
    try:
        await run.edge.jobs.run(tap.job_id)
    finally:
        # The answer (or a fresh failure with its own button) is below: "Trying again…" has said its piece.
        await run.remove(press.message_id, instead=texts.RETRIED)
    return None


def _sender(payload: dict[str, Any]) -> int | None:
    """Who a job answers: the sender of the message it carries, or the user it names; None if neither."""
    message = payload.get("message")
    sender = message.get("from") if isinstance(message, dict) else None
    if isinstance(sender, dict) and isinstance(sender.get("id"), int):
        return int(sender["id"])
    user_id = payload.get("user_id")
    return user_id if isinstance(user_id, int) else None


RETRY = Button(Retry, retry)
