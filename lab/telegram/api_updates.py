"""Getting updates: getMe, getUpdates (long-polling, one poller at a time) and the webhook methods."""

from __future__ import annotations

import copy
import time
from typing import Any

from .errors import TelegramAPIError, bad
from .handler import Methods
from .records import ApiCall
from .state import TelegramState

__all__ = ["METHODS"]

_CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
_WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)


async def true(state: TelegramState, call: ApiCall) -> bool:
    return True


async def get_me(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    return {
        **state.bot.user,
        "can_join_groups": True,
        "can_read_all_group_messages": state.bot.can_read_all_group_messages,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }


async def get_updates(state: TelegramState, call: ApiCall) -> list[dict[str, Any]]:
    """Long-poll: answer as soon as there is something, or at the timeout; a newer poll ends this one with 409."""
    params = call.params
    if state.webhook.get("url"):
        raise TelegramAPIError(409, _WEBHOOK_ACTIVE)
    limit = min(max(int(params.get("limit") or 100), 1), 100)
    timeout = max(float(params.get("timeout") or 0), 0.0)
    queue = state.updates
    queue.set_allowed(params)
    queue.confirm(params.get("offset"))
    queue.poll_seq += 1
    me = queue.poll_seq
    state.signal.notify()  # an earlier long-poll wakes up and sees it has been superseded
    deadline = time.monotonic() + timeout
    while True:
        if me != queue.poll_seq:
            raise TelegramAPIError(409, _CONFLICT)
        batch = queue.pending[:limit]
        remaining = deadline - time.monotonic()
        if batch or remaining <= 0 or state.signal.stopping:
            return copy.deepcopy(batch)
        await state.signal.wait(remaining)


async def set_webhook(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    url = str(params.get("url") or "")
    if url and not url.startswith("https://"):
        raise bad("bad webhook: An HTTPS URL must be provided for webhook")
    state.webhook = {"url": url, **{k: v for k, v in params.items() if k != "url"}}
    if params.get("drop_pending_updates"):
        state.updates.pending.clear()
    state.updates.set_allowed(params)
    return True


async def delete_webhook(state: TelegramState, call: ApiCall) -> bool:
    state.webhook = {"url": ""}
    if call.params.get("drop_pending_updates"):
        state.updates.pending.clear()
    return True


async def get_webhook_info(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    info: dict[str, Any] = {
        "url": state.webhook.get("url", ""),
        "has_custom_certificate": False,
        "pending_update_count": len(state.updates.pending),
    }
    if state.updates.allowed:
        info["allowed_updates"] = state.updates.allowed
    return info


METHODS: Methods = {
    "getme": get_me,
    "logout": true,
    "close": true,
    "getupdates": get_updates,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
}
