"""Changing what was sent: editMessageText/Caption/ReplyMarkup, deleteMessage, setMessageReaction.

Edits that change nothing fail as Telegram's do ("message is not modified"), which catches needless edits.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from .compose import apply_markup, caption, check_markup, editable, message_text
from .errors import bad
from .handler import Methods
from .records import ApiCall, StoredMessage
from .state import TelegramState

__all__ = ["METHODS"]

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
_REACTION_EMOJI = frozenset(
    (
        "❤ 👍 👎 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 "
        "💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 "
        "🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡"
    ).split()
)

_MEDIA_KEYS = ("voice", "audio", "document", "photo", "video", "animation", "video_note")




def _edited(state: TelegramState, stored: StoredMessage, shown: str) -> dict[str, Any]:
    """Stamp an edit, keep what it showed in the message's history (and the sent record's), answer with it."""
    stored.payload["edit_date"] = int(time.time())
    stored.edits.append(shown)
    if (sent := state.messages.sent_record(stored)) is not None:
        sent.edits.append(shown)
    return copy.deepcopy(stored.payload)


async def edit_message_text(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    stored = editable(state, params, "message to edit not found")
    if "text" not in stored.payload:
        raise bad("there is no text in the message to edit")
    plain, entities = message_text(params, too_long="MESSAGE_TOO_LONG")
    markup = check_markup(params.get("reply_markup"))
    if (
        plain == stored.payload.get("text")
        and entities == stored.payload.get("entities", [])
        and markup == stored.payload.get("reply_markup")
    ):
        raise bad(NOT_MODIFIED)
    stored.payload["text"] = plain
    if entities:
        stored.payload["entities"] = entities
    else:
        stored.payload.pop("entities", None)
    apply_markup(stored, markup)
    return _edited(state, stored, plain)


async def edit_message_caption(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    stored = editable(state, params, "message to edit not found")
    if not any(key in stored.payload for key in _MEDIA_KEYS):
        raise bad("there is no caption in the message to edit")
    fields = caption(params)
    markup = check_markup(params.get("reply_markup"))
    if (
        fields.get("caption") == stored.payload.get("caption")
        and fields.get("caption_entities") == stored.payload.get("caption_entities")
        and markup == stored.payload.get("reply_markup")
    ):
        raise bad(NOT_MODIFIED)
    stored.payload.pop("caption", None)
    stored.payload.pop("caption_entities", None)
    stored.payload.update(fields)
    apply_markup(stored, markup)
    return _edited(state, stored, str(fields.get("caption", "")))


async def edit_message_reply_markup(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    stored = editable(state, params, "message to edit not found")
    markup = check_markup(params.get("reply_markup"))
    if markup == stored.payload.get("reply_markup"):
        raise bad(NOT_MODIFIED)
    apply_markup(stored, markup)
    stored.payload["edit_date"] = int(time.time())
    return copy.deepcopy(stored.payload)


async def delete_message(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    chat = state.chats.find(params)
    if params.get("message_id") is None:
        raise bad("message identifier is not specified")
    stored = state.messages.stored.get((chat["id"], int(params["message_id"])))
    if stored is None or stored.deleted:
        raise bad("message to delete not found")
    admin = state.chats.bot_is_admin(chat["id"])
    if not stored.from_bot and chat["type"] != "private" and not admin:
        raise bad("message can't be deleted")
    stored.deleted = True
    if (sent := state.messages.sent_record(stored)) is not None:
        sent.deleted = True
    return True


async def set_message_reaction(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    chat = state.chats.find(params)
    stored = state.messages.stored.get((chat["id"], int(params.get("message_id") or 0)))
    if stored is None or stored.deleted:
        raise bad("message to react not found")
    reaction = params.get("reaction") or []
    if not isinstance(reaction, list):
        raise bad("can't parse reaction JSON object")
    for item in reaction:
        if not isinstance(item, dict) or item.get("type") not in ("emoji", "custom_emoji", "paid"):
            raise bad("REACTION_INVALID")
        if item["type"] == "emoji" and item.get("emoji") not in _REACTION_EMOJI:
            raise bad("REACTION_INVALID")
    state.reactions[(chat["id"], stored.message_id)] = reaction
    return True


METHODS: Methods = {
    "editmessagetext": edit_message_text,
    "editmessagecaption": edit_message_caption,
    "editmessagereplymarkup": edit_message_reply_markup,
    "deletemessage": delete_message,
    "setmessagereaction": set_message_reaction,
}
