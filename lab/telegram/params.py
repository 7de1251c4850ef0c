"""Bot API parameters read the four ways the real server accepts them: query string, urlencoded, multipart, JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import BodyPartReader, web

from .errors import UPLOAD_LIMIT, TelegramAPIError, bad

__all__ = ["coerce", "read_params"]

# How python-telegram-bot (and curl users) encode parameters: in form and multipart bodies every value is a
# string, nested objects are JSON text, ints are decimal text and bools are "true"/"false".
_JSON_PARAMS = frozenset(
    {
        "reply_parameters",
        "reply_markup",
        "commands",
        "allowed_updates",
        "entities",
        "caption_entities",
        "scope",
        "link_preview_options",
        "media",
        "reaction",
        "menu_button",
        "results",
        "permissions",
        "rights",
    }
)
_INT_PARAMS = frozenset(
    {
        "offset",
        "limit",
        "timeout",
        "message_id",
        "reply_to_message_id",
        "message_thread_id",
        "duration",
        "user_id",
        "cache_time",
        "max_connections",
        "width",
        "height",
        "length",
        "direct_messages_topic_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "has_spoiler",
        "show_caption_above_media",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "is_big",
        "supports_streaming",
    }
)
_CHAT_ID_PARAMS = frozenset({"chat_id", "from_chat_id"})


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
    """Parse a request the four ways the Bot API accepts: query string, urlencoded, multipart, JSON."""
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, bytes] = {}
    names: dict[str, str] = {}
    ctype = request.content_type
    if request.can_read_body:
        if ctype == "application/json":
            body = await request.read()
            if body.strip():
                try:
                    data = json.loads(body)
                except ValueError as exc:
                    raise bad("can't parse JSON object") from exc
                if not isinstance(data, dict):
                    raise bad("can't parse JSON object")
                raw.update(data)
        elif ctype == "application/x-www-form-urlencoded":
            form = await request.post()
            raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        elif ctype == "multipart/form-data":
            reader = await request.multipart()
            total = 0
            async for part in reader:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    content = await part.read(decode=False)
                    total += len(content)
                    files[part.name] = bytes(content)
                    names[part.name] = part.filename
                else:
                    raw[part.name] = await part.text()
            if total > UPLOAD_LIMIT:
                raise TelegramAPIError(413, "Request Entity Too Large")
    return {k: coerce(k, v) for k, v in raw.items()}, files, names


def coerce(name: str, value: Any) -> Any:
    """One parameter as its type: in form and multipart bodies every value arrives as text."""
    if not isinstance(value, str):
        return value
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError as exc:
            if name == "reply_markup":
                raise bad("can't parse reply keyboard markup JSON object") from exc
            raise bad(f"can't parse {name} JSON object") from exc
    if name in _INT_PARAMS or (name in _CHAT_ID_PARAMS and re.fullmatch(r"-?\d+", value.strip())):
        try:
            return int(value.strip())
        except ValueError as exc:
            raise bad(f"invalid {name} specified") from exc
    if name in _BOOL_PARAMS:
        return value.strip().lower() in ("true", "1")
    return value
