"""Telegram's side of a webhook: POSTing pending updates to the bot, as the real server does.

JSON, one update per request, setWebhook's secret_token in X-Telegram-Bot-Api-Secret-Token; an update
answered 2xx is confirmed, any other answer leaves it pending (Telegram would retry it later).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .state import TelegramState

__all__ = ["Delivery", "deliver", "deliver_concurrently"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass(frozen=True)
class Delivery:
    """One POST of one update: where it went and how it was answered (0: the connection failed)."""

    update_id: int
    address: str
    status: int


def _target(state: TelegramState, address: str) -> tuple[str, dict[str, str]]:
    """The URL to POST to and the headers: `address` stands in for the HTTPS front end the webhook URL
    names (e.g. http://127.0.0.1:8080); the URL's path is kept."""
    url = str(state.webhook.get("url", ""))
    if not url:
        raise AssertionError("no webhook is set (setWebhook was not called)")
    headers = {"Content-Type": "application/json"}
    if state.webhook.get("secret_token"):
        headers[SECRET_HEADER] = str(state.webhook["secret_token"])
    return address.rstrip("/") + (urlsplit(url).path or "/"), headers


async def _post(session: aiohttp.ClientSession, target: str, headers: dict[str, str], update: dict[str, Any]) -> int:
    async with session.post(target, data=json.dumps(update), headers=headers) as response:
        return response.status


async def deliver(state: TelegramState, address: str) -> list[int]:
    """POST every pending update, one after the other; returns the HTTP statuses, in order."""
    target, headers = _target(state, address)
    statuses: list[int] = []
    async with aiohttp.ClientSession() as session:
        for update in list(state.updates.pending):
            status = await _post(session, target, headers, update)
            statuses.append(status)
            if 200 <= status < 300:
                state.updates.confirm_one(update)
    state.signal.notify()
    return statuses


async def deliver_concurrently(
    state: TelegramState, addresses: list[str], *, copies: int = 1, secret: str | None = None
) -> list[Delivery]:
    """POST every pending update at once, each `copies` times (Telegram redelivers an update whose answer
    was slow or lost, so one update can arrive twice, even at two processes behind a balancer). Update i's
    copy k goes to addresses[(i + k) % len(addresses)]. `secret` replaces setWebhook's secret_token (to
    play a forger). An update is confirmed when any copy is answered 2xx."""
    if not addresses:
        raise ValueError("at least one address")
    updates = list(state.updates.pending)
    jobs: list[tuple[dict[str, Any], str]] = [
        (update, addresses[(i + k) % len(addresses)]) for i, update in enumerate(updates) for k in range(copies)
    ]
    async with aiohttp.ClientSession() as session:

        async def post(update: dict[str, Any], address: str) -> Delivery:
            target, headers = _target(state, address)
            if secret is not None:
                headers[SECRET_HEADER] = secret
            try:
                status = await _post(session, target, headers, update)
            except aiohttp.ClientError:
                status = 0
            return Delivery(int(update["update_id"]), address, status)

        deliveries = await asyncio.gather(*(post(update, address) for update, address in jobs))
    for update in updates:
        if any(d.update_id == update["update_id"] and 200 <= d.status < 300 for d in deliveries):
            state.updates.confirm_one(update)
    state.signal.notify()
    return list(deliveries)
