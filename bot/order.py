"""Updates taken in concurrently across chats, one at a time and in order within each chat.

Taking an update in (the access gate, the rate limits, writing its job row) waits on the database a few
times. One update at a time, a burst of a hundred people queues behind those waits, and with the event loop
busy answering earlier notes each wait is long: the last person's note would start seconds late. Different
chats are independent, so their updates are taken in side by side; a chat's own updates still pass one at
a time, in the order Telegram sent them, so its jobs enter its queue in that order.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

CONCURRENT_UPDATES = 256
"""Updates being taken in at once; more wait for a place, in order."""


class ChatOrderedUpdates(BaseUpdateProcessor):
    """python-telegram-bot's update processor: starts each update in arrival order (its semaphore is first
    come, first served), and holds it until the previous update of the same chat is through."""

    def __init__(self, max_concurrent_updates: int = CONCURRENT_UPDATES) -> None:
        super().__init__(max_concurrent_updates)
        self._last: dict[int | None, asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        key = chat.id if chat is not None else None
        before = self._last.get(key)
        done = asyncio.get_running_loop().create_future()
        self._last[key] = done  # before any await: the chat's next update waits for this one
        started = False
        try:
            if before is not None:
                await asyncio.shield(before)  # (it only ever gets a result)
            started = True
            await coroutine
        finally:
            if not started and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting its turn (a shutdown)
            done.set_result(None)
            if self._last.get(key) is done:
                del self._last[key]

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass
