"""The bot's profile: command menus per scope and language, name and descriptions per language, menu button.

Checked as the real server checks them: scopes of the seven documented types (a chat scope names a chat
the bot can reach: a user who never started the bot is "chat not found"; a chat_member scope names a
user), language codes of two letters (ISO 639-1; "zh-hans" is refused), commands of 1-32 lower-case
letters, digits and underscores with descriptions of 1-256 characters, name/description/short
description within 64/512/120 characters.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import bad
from .handler import Handler, Methods
from .records import ApiCall
from .state import TelegramState
from .text import utf16_len

__all__ = ["METHODS", "SCOPE_TYPES", "commands_key", "visible_commands"]

SCOPE_TYPES = (
    "default",
    "all_private_chats",
    "all_group_chats",
    "all_chat_administrators",
    "chat",
    "chat_administrators",
    "chat_member",
)
TEXT_LIMITS = {"name": 64, "description": 512, "short_description": 120}


def commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
    """Where a command list is kept: its scope (default when none) and language ("" for all)."""
    scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")


def _language(params: dict[str, Any]) -> str:
    code = str(params.get("language_code") or "")
    if code and not re.fullmatch(r"[a-z]{2}", code):
        raise bad("invalid language code specified")
    return code


def _scope(state: TelegramState, params: dict[str, Any]) -> dict[str, Any]:
    """The scope, normalised (chat_id as the chat's numeric id) so equal scopes share one key."""
    scope = params.get("scope")
    if scope is None or scope == "":
        return {"type": "default"}
    if not isinstance(scope, dict):
        raise bad("can't parse BotCommandScope: BotCommandScope must be an Object")
    kind = scope.get("type")
    if not isinstance(kind, str):
        raise bad('can\'t parse BotCommandScope: Field "type" must be of type String')
    if kind not in SCOPE_TYPES:
        raise bad("can't parse BotCommandScope: Unsupported type specified")
    if kind in SCOPE_TYPES[:4]:
        return {"type": kind}
    if scope.get("chat_id") in (None, ""):
        raise bad("can't parse BotCommandScope: Empty chat_id specified")
    chat = state.chats.find({"chat_id": scope["chat_id"]})
    if kind != "chat_member":
        return {"type": kind, "chat_id": chat["id"]}
    user_id = scope.get("user_id")
    if not isinstance(user_id, int) or user_id <= 0:
        raise bad("can't parse BotCommandScope: Invalid user_id specified")
    return {"type": kind, "chat_id": chat["id"], "user_id": user_id}


async def set_my_commands(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    commands = params.get("commands") or []
    if not isinstance(commands, list):
        raise bad("can't parse commands JSON object")
    if len(commands) > 100:
        raise bad("BOT_COMMANDS_TOO_MUCH")
    clean: list[dict[str, str]] = []
    for item in commands:
        if not isinstance(item, dict) or "command" not in item:
            raise bad("can't parse BotCommand: Can't find field \"command\"")
        if "description" not in item:
            raise bad("can't parse BotCommand: Can't find field \"description\"")
        command, description = str(item["command"]), str(item["description"])
        if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
            raise bad("BOT_COMMAND_INVALID")
        if not description.strip():
            raise bad("command description must be non-empty")
        if utf16_len(description) > 256:
            raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        clean.append({"command": command, "description": description})
    key = commands_key(_scope(state, params), _language(params))
    if clean:
        state.profile.commands[key] = clean
    else:  # an empty list is how the real API deletes a list
        state.profile.commands.pop(key, None)
    return True


async def get_my_commands(state: TelegramState, call: ApiCall) -> list[dict[str, str]]:
    key = commands_key(_scope(state, call.params), _language(call.params))
    return list(state.profile.commands.get(key, []))


async def delete_my_commands(state: TelegramState, call: ApiCall) -> bool:
    state.profile.commands.pop(commands_key(_scope(state, call.params), _language(call.params)), None)
    return True


def visible_commands(
    state: TelegramState, chat_id: int, user_id: int, language_code: str = ""
) -> list[dict[str, str]]:
    """The menu a user sees in a chat: Telegram's documented order of scopes, each with the user's
    language first, the first non-empty list winning."""
    chat = state.chats.chats.get(chat_id) or {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
    if chat["type"] == "private":
        scopes: list[dict[str, Any]] = [{"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}]
    else:
        admin = state.chats.member_status(chat_id, user_id) in ("creator", "administrator")
        scopes = [{"type": "chat_member", "chat_id": chat_id, "user_id": user_id}]
        if admin:
            scopes.append({"type": "chat_administrators", "chat_id": chat_id})
        scopes.append({"type": "chat", "chat_id": chat_id})
        if admin:
            scopes.append({"type": "all_chat_administrators"})
        scopes.append({"type": "all_group_chats"})
    scopes.append({"type": "default"})
    for scope in scopes:
        for language in dict.fromkeys([language_code, ""]):
            found = state.profile.commands.get(commands_key(scope, language))
            if found:
                return list(found)
    return []


def _text_setter(key: str) -> Handler:
    async def handler(state: TelegramState, call: ApiCall) -> bool:
        params = call.params
        language = _language(params)
        value = str(params.get(key) or "")
        if utf16_len(value) > TEXT_LIMITS[key]:
            raise bad(f"{key.upper()}_TOO_LONG" if key != "name" else "BOT_TITLE_INVALID")
        if value:
            state.profile.texts[(key, language)] = value
        else:  # an empty text removes the one for that language
            state.profile.texts.pop((key, language), None)
        return True

    return handler


def _text_getter(key: str) -> Handler:
    async def handler(state: TelegramState, call: ApiCall) -> dict[str, str]:
        language = _language(call.params)
        texts = state.profile.texts
        value = texts.get((key, language)) or texts.get((key, ""), "")
        if key == "name" and not value:
            value = state.bot.first_name
        return {key: value}

    return handler


async def set_chat_menu_button(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    chat_id = params.get("chat_id")
    if chat_id is not None:
        chat_id = state.chats.find(params)["id"]
    state.profile.menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
    return True


async def get_chat_menu_button(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    chat_id = state.chats.find(params)["id"] if params.get("chat_id") is not None else None
    buttons = state.profile.menu_buttons
    return buttons.get(chat_id) or buttons.get(None) or {"type": "commands"}


METHODS: Methods = {
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
    "setmyname": _text_setter("name"),
    "getmyname": _text_getter("name"),
    "setmydescription": _text_setter("description"),
    "getmydescription": _text_getter("description"),
    "setmyshortdescription": _text_setter("short_description"),
    "getmyshortdescription": _text_getter("short_description"),
    "setchatmenubutton": set_chat_menu_button,
    "getchatmenubutton": get_chat_menu_button,
}
