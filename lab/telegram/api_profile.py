"""The bot's profile: command menus (setMyCommands and friends), name and descriptions, the menu button."""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import bad
from .handler import Handler, Methods
from .records import ApiCall
from .state import TelegramState
from .text import utf16_len

__all__ = ["METHODS", "commands_key"]


def commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
    """Where a command list is kept: its scope (default when none) and language ("" for all)."""
    scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(language_code or "")


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
    state.profile.commands[commands_key(params.get("scope"), params.get("language_code"))] = clean
    return True


async def get_my_commands(state: TelegramState, call: ApiCall) -> list[dict[str, str]]:
    key = commands_key(call.params.get("scope"), call.params.get("language_code"))
    return list(state.profile.commands.get(key, []))


async def delete_my_commands(state: TelegramState, call: ApiCall) -> bool:
    state.profile.commands.pop(commands_key(call.params.get("scope"), call.params.get("language_code")), None)
    return True


def _text_setter(key: str, limit: int) -> Handler:
    async def handler(state: TelegramState, call: ApiCall) -> bool:
        params = call.params
        value = str(params.get(key) or "")
        if utf16_len(value) > limit:
            raise bad(f"{key.upper()}_TOO_LONG" if key != "name" else "BOT_TITLE_INVALID")
        state.profile.texts[(key, str(params.get("language_code") or ""))] = value
        return True

    return handler


def _text_getter(key: str) -> Handler:
    async def handler(state: TelegramState, call: ApiCall) -> dict[str, str]:
        lang = str(call.params.get("language_code") or "")
        texts = state.profile.texts
        value = texts.get((key, lang)) or texts.get((key, ""), "")
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
    "setmyname": _text_setter("name", 64),
    "getmyname": _text_getter("name"),
    "setmydescription": _text_setter("description", 512),
    "getmydescription": _text_getter("description"),
    "setmyshortdescription": _text_setter("short_description", 120),
    "getmyshortdescription": _text_getter("short_description"),
    "setchatmenubutton": set_chat_menu_button,
    "getchatmenubutton": get_chat_menu_button,
}
