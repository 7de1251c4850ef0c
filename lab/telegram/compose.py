"""What every sending and editing method shares: reply targets, keyboards, parse modes, captions, storing."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

from .errors import MAX_CAPTION, MAX_TEXT, bad
from .records import StoredMessage
from .state import TelegramState
from .text import EntityParseError, parse_text, utf16_len

__all__ = [
    "apply_markup",
    "caption",
    "check_markup",
    "editable",
    "parse",
    "reply_target",
    "shallow",
    "store_bot_message",
]

_INLINE_BUTTON_ACTIONS = frozenset(
    {
        "url",
        "callback_data",
        "web_app",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "copy_text",
        "callback_game",
        "pay",
    }
)


def reply_target(state: TelegramState, chat: dict[str, Any], params: dict[str, Any]) -> StoredMessage | None:
    """The message a send replies to (reply_parameters or the older reply_to_message_id), if any."""
    reply_id = params.get("reply_to_message_id")
    allow = bool(params.get("allow_sending_without_reply", False))
    target_chat = chat["id"]
    rp = params.get("reply_parameters")
    if rp is not None:
        if not isinstance(rp, dict) or "message_id" not in rp:
            raise bad("can't parse reply parameters JSON object")
        reply_id = rp["message_id"]
        allow = bool(rp.get("allow_sending_without_reply", allow))
        if rp.get("chat_id") not in (None, ""):
            target_chat = state.chats.find({"chat_id": rp["chat_id"]})["id"]
    if reply_id is None:
        return None
    stored = state.messages.stored.get((target_chat, int(reply_id)))
    if stored is None or stored.deleted:
        if allow:
            return None
        raise bad("message to be replied not found")
    return stored


def check_markup(markup: Any) -> dict[str, Any] | None:
    """Validate reply_markup; return it when it is an inline keyboard (the only kind echoed back)."""
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                    raise bad("can't parse inline keyboard button: Can't find field \"text\"")
                if not _INLINE_BUTTON_ACTIONS & button.keys():
                    raise bad("text buttons are unallowed in the inline keyboard")
                if "callback_data" in button:
                    data = str(button["callback_data"])
                    if not 1 <= len(data.encode("utf-8")) <= 64:
                        raise bad("BUTTON_DATA_INVALID")
                if "url" in button and not re.match(r"^(https?|tg)://[^\s]+$", str(button["url"])):
                    raise bad("BUTTON_URL_INVALID")
        return markup
    if "keyboard" in markup:
        rows = markup["keyboard"]
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
        return None
    if "remove_keyboard" in markup or "force_reply" in markup:
        return None
    raise bad("can't parse reply keyboard markup JSON object")


def parse(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    if parse_mode:
        try:
            return parse_text(text, str(parse_mode))
        except EntityParseError as exc:
            if str(exc).startswith("Unsupported parse_mode"):
                raise bad("unsupported parse_mode") from exc
            raise bad(f"can't parse entities: {exc}") from exc
    if entities:
        if not isinstance(entities, list):
            raise bad("can't parse entities JSON object")
        size = utf16_len(text)
        for ent in entities:
            if not isinstance(ent, dict) or "type" not in ent:
                raise bad("can't parse MessageEntity: Can't find field \"type\"")
            offset, length = int(ent.get("offset", -1)), int(ent.get("length", 0))
            if offset < 0 or length <= 0 or offset + length > size:
                raise bad("can't parse entities: entity beyond the end of text")
        return text, list(entities)
    return text, []


def message_text(params: dict[str, Any], *, too_long: str) -> tuple[str, list[dict[str, Any]]]:
    """A message's text as shown, and its entities; refused as Telegram refuses an empty or an overlong one
    (sendMessage and editMessageText word "too long" differently: `too_long`)."""
    text = params.get("text")
    if text is None or not str(text).strip():
        raise bad("message text is empty")
    plain, entities = parse(str(text), params.get("parse_mode"), params.get("entities"))
    if not plain.strip():
        raise bad("message text is empty")
    if utf16_len(plain) > MAX_TEXT:
        raise bad(too_long)
    return plain, entities


def caption(params: dict[str, Any]) -> dict[str, Any]:
    """The caption fields of a media message (none for an empty or blank caption, as Telegram drops it)."""
    text = params.get("caption")
    if not text:
        return {}
    plain, entities = parse(str(text), params.get("parse_mode"), params.get("caption_entities"))
    if utf16_len(plain) > MAX_CAPTION:
        raise bad("message caption is too long")
    if not plain.strip():
        return {}
    fields: dict[str, Any] = {"caption": plain}
    if entities:
        fields["caption_entities"] = entities
    return fields


def store_bot_message(
    state: TelegramState,
    chat: dict[str, Any],
    params: dict[str, Any],
    fields: dict[str, Any],
    reply: StoredMessage | None,
    markup: dict[str, Any] | None,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": state.messages.next_id(chat["id"]),
        "from": state.bot.user,
        "chat": dict(chat),
        "date": int(time.time()),
    }
    thread = params.get("message_thread_id")
    if thread is not None:
        message["message_thread_id"] = thread
        if chat.get("is_forum"):
            message["is_topic_message"] = True
    if reply is not None:
        message["reply_to_message"] = shallow(reply.payload)
    message.update(fields)
    if markup is not None:
        message["reply_markup"] = markup
    state.messages.store(message, from_bot=True)
    return message


def shallow(payload: dict[str, Any]) -> dict[str, Any]:
    """A message as embedded in reply_to_message: one level only, like Telegram does."""
    inner = copy.deepcopy(payload)
    inner.pop("reply_to_message", None)
    return inner


def editable(state: TelegramState, params: dict[str, Any], missing: str) -> StoredMessage:
    if params.get("inline_message_id"):
        raise bad("MESSAGE_ID_INVALID")
    chat = state.chats.find(params)
    if params.get("message_id") is None:
        raise bad("message identifier is not specified")
    stored = state.messages.stored.get((chat["id"], int(params["message_id"])))
    if stored is None or stored.deleted:
        raise bad(missing)
    if not stored.from_bot:
        raise bad("message can't be edited")
    return stored


def apply_markup(stored: StoredMessage, markup: dict[str, Any] | None) -> None:
    if markup is None:
        stored.payload.pop("reply_markup", None)
    else:
        stored.payload["reply_markup"] = markup
