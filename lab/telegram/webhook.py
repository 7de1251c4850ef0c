"""Telegram's side of a webhook: POSTing pending updates to the bot, as the real server does.

JSON, one update per request, setWebhook's secret_token in X-Telegram-Bot-Api-Secret-Token; an update
answered 2xx is confirmed, any other answer leaves it pending (Telegram would retry it later).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .state import TelegramState

__all__ = ["deliver"]

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


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
