"""Updates are taken in side by side across chats and one at a time, in order, within a chat; chat actions
do not spend the rate limiter's budget for answers."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram import Update

from bot.observe import ObservedRateLimiter
from bot.order import ChatOrderedUpdates
from parley.metrics import Metrics


def _update(update_id: int, chat_id: int) -> Update:
    chat = {"id": chat_id, "type": "private", "first_name": "P"}
    user = {"id": chat_id, "is_bot": False, "first_name": "P"}
    message = {"message_id": update_id, "date": 0, "chat": chat, "from": user, "text": "hi"}
    return Update.de_json({"update_id": update_id, "message": message}, None)


async def test_a_chats_updates_pass_in_order_while_other_chats_run_alongside() -> None:
    processor = ChatOrderedUpdates()
    log: list[tuple[str, int, int]] = []
    running = {1: 0, 2: 0}
    most = {1: 0, 2: 0}
    both = asyncio.Event()

    async def take(update_id: int, chat_id: int) -> None:
        running[chat_id] += 1
        most[chat_id] = max(most[chat_id], running[chat_id])
        log.append(("start", chat_id, update_id))
        if running[1] and running[2]:
            both.set()
        await asyncio.sleep(0.01 * (update_id % 3))  # later updates of a chat may be quicker than earlier ones
        log.append(("end", chat_id, update_id))
        running[chat_id] -= 1

    updates = [(n, 1 if n % 2 else 2) for n in range(1, 13)]
    # As python-telegram-bot does with concurrent updates: one task per update, created in arrival order.
    tasks = [asyncio.create_task(processor.process_update(_update(n, chat), take(n, chat))) for n, chat in updates]
    await asyncio.gather(*tasks)
    for chat in (1, 2):
        started = [n for kind, c, n in log if kind == "start" and c == chat]
        assert started == [n for n, c in updates if c == chat]
        assert most[chat] == 1  # never two of one chat at once
    assert both.is_set()  # the two chats did run side by side


async def test_chat_actions_go_past_the_rate_limit_that_answers_wait_for() -> None:
    limiter = ObservedRateLimiter(Metrics(), max_retries=0)
    await limiter.initialize()
    done = {"sendChatAction": 0, "sendMessage": 0}

    def call(endpoint: str) -> Any:
        async def post(*_args: Any, **_kwargs: Any) -> bool:
            done[endpoint] += 1
            return True

        data = {"chat_id": 5}
        return limiter.process_request(post, (endpoint, data), {}, endpoint, data, None)

    for endpoint in done:
        tasks = [asyncio.create_task(call(endpoint)) for _ in range(100)]
        await asyncio.sleep(0.05)
        if endpoint == "sendChatAction":
            assert done[endpoint] == 100
        else:  # Telegram's 30 messages a second: the rest wait their turn
            assert done[endpoint] < 100
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await limiter.shutdown()
