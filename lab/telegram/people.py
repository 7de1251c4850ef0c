"""What people do in Telegram, turned into the updates the bot receives.

Updates carry what real ones carry (a leading /command gets its bot_command entity, a reply embeds the
replied-to message one level deep), and a group message that a bot in privacy mode would never see is
dropped, with the reason, instead of delivered.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from typing import Any

from .compose import shallow
from .records import StoredMessage
from .state import TelegramState
from .text import bot_command_entities

__all__ = ["bot_membership", "callback_query", "edit_text", "start_payload", "user_message"]

# Service messages reach a bot in privacy mode like messages addressed to it.
_SERVICE_FIELDS = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
    }
)


def user_message(
    state: TelegramState,
    chat_id: int,
    user: dict[str, Any] | int,
    fields: dict[str, Any],
    *,
    chat_type: str,
    reply_to: int | None,
    message_thread_id: int | None = None,
) -> int:
    """A person sends a message with `fields` (text, voice …) in chat_id; returns its message_id."""
    sender = state.chats.as_user(user)
    chat = state.chats.chats.get(chat_id) or state.chats.add(
        chat_id, chat_type=chat_type, first_name=sender["first_name"], username=sender.get("username")
    )
    message: dict[str, Any] = {
        "message_id": state.messages.next_id(chat_id),
        "from": sender,
        "chat": dict(chat),
        "date": int(time.time()),
    }
    if message_thread_id is not None:
        message["message_thread_id"] = message_thread_id
        if chat.get("is_forum"):
            message["is_topic_message"] = True
    replied: StoredMessage | None = None
    if reply_to is not None:
        replied = state.messages.get(chat_id, reply_to)
        if replied is None:
            raise AssertionError(f"push: chat {chat_id} has no message {reply_to} to reply to")
        message["reply_to_message"] = shallow(replied.payload)
    message.update(fields)
    state.messages.store(message, from_bot=False)
    reason = _privacy_blocks(state, chat, message, replied)
    if reason:
        state.updates.drop({"message": message}, reason)
    else:
        state.updates.enqueue({"message": copy.deepcopy(message)})
    return int(message["message_id"])


def _privacy_blocks(
    state: TelegramState, chat: dict[str, Any], message: dict[str, Any], replied: StoredMessage | None
) -> str | None:
    """Why a bot in privacy mode would not receive this group message (None: it would)."""
    if chat["type"] not in ("group", "supergroup") or state.bot.can_read_all_group_messages:
        return None
    if state.chats.bot_is_admin(chat["id"]):
        return None
    if _SERVICE_FIELDS & message.keys():
        return None
    if replied is not None and replied.from_bot:
        return None
    text = message.get("text") or message.get("caption") or ""
    for entity in message.get("entities") or message.get("caption_entities") or []:
        if entity.get("type") == "bot_command" and entity.get("offset") == 0:
            command = text[: entity["length"]]
            target = command.partition("@")[2]
            if not target or target.lower() == state.bot.username.lower():
                return None
    return "privacy mode: group message not addressed to the bot"


def callback_query(state: TelegramState, chat_id: int, user: dict[str, Any] | int, message_id: int, data: str) -> str:
    """A person presses an inline button under the bot's message; returns the query id."""
    stored = state.messages.get(chat_id, message_id)
    if stored is None or not stored.from_bot:
        raise AssertionError(f"push_callback: chat {chat_id} has no bot message {message_id}")
    query_id = str(secrets.randbits(62))
    state.callbacks[query_id] = {"answered": False, "at": time.monotonic()}
    query = {
        "id": query_id,
        "from": state.chats.as_user(user),
        "message": copy.deepcopy(stored.payload),
        "chat_instance": str((chat_id * 7919 + 104729) % 10**18),
        "data": data,
    }
    state.updates.enqueue({"callback_query": query})
    return query_id


def edit_text(state: TelegramState, chat_id: int, message_id: int, new_text: str) -> None:
    """A person edits one of their text messages (an edited_message update)."""
    stored = state.messages.get(chat_id, message_id)
    if stored is None or stored.from_bot or "text" not in stored.payload:
        raise AssertionError(f"push_edit: chat {chat_id} has no user text message {message_id}")
    stored.payload["text"] = new_text
    ents = bot_command_entities(new_text)
    if ents:
        stored.payload["entities"] = ents
    else:
        stored.payload.pop("entities", None)
    stored.payload["edit_date"] = int(time.time())
    stored.edits.append(new_text)
    state.updates.enqueue({"edited_message": copy.deepcopy(stored.payload)})


def bot_membership(state: TelegramState, chat_id: int, by: dict[str, Any] | int, old: str, new: str) -> int:
    """The bot's own status in a chat changed (added to a group, made admin, removed, blocked in a private
    chat): a my_chat_member update, which Telegram sends without being asked for. Returns its update_id."""
    actor = state.chats.as_user(by)
    chat = state.chats.chats[chat_id]
    if new == "administrator":
        state.chats.meta(chat_id)["bot_is_admin"] = True
    elif old == "administrator":
        state.chats.meta(chat_id)["bot_is_admin"] = False
    state.chats.meta(chat_id)["blocked"] = new in ("left", "kicked")
    change = {
        "chat": dict(chat),
        "from": actor,
        "date": int(time.time()),
        "old_chat_member": state.chats.member(chat_id, state.bot.user, old),
        "new_chat_member": state.chats.member(chat_id, state.bot.user, new),
    }
    return state.updates.enqueue({"my_chat_member": change})


_START_LINK = re.compile(r"^https://t\.me/(?P<bot>[A-Za-z0-9_]+)\?(?P<kind>start|startgroup)=(?P<payload>[^&#]*)$")


def start_payload(state: TelegramState, url: str) -> tuple[str, str]:
    """What opening a t.me deep link to the bot sends: ("start" or "startgroup", the payload). Fails the test
    for a link Telegram would not honour (another bot, or a payload beyond 64 characters of A-Z a-z 0-9 _ -)."""
    match = _START_LINK.match(url)
    if match is None or match["bot"].lower() != state.bot.username.lower():
        raise AssertionError(f"{url!r} is not a deep link to @{state.bot.username}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", match["payload"]):
        raise AssertionError(f"{url!r}: Telegram passes on only 1-64 characters of A-Z, a-z, 0-9, _ and -")
    return match["kind"], match["payload"]
