"""Chats, members, buttons and files: getChat, getChatMember, answerCallbackQuery, getFile."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from .errors import DOWNLOAD_LIMIT, LOCAL_DOWNLOAD_LIMIT, bad
from .handler import Methods
from .records import ApiCall
from .state import TelegramState
from .text import utf16_len

__all__ = ["METHODS"]

_FILE_FOLDERS = {
    "voice": ("voice", "oga"),
    "audio": ("music", "mp3"),
    "document": ("documents", "bin"),
    "photo": ("photos", "jpg"),
    "video": ("videos", "mp4"),
    "video_note": ("video_notes", "mp4"),
    "sticker": ("stickers", "webp"),
    "animation": ("animations", "mp4"),
}


async def get_chat(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    chat = state.chats.find(params)
    return {
        **chat,
        "accent_color_id": 0,
        "max_reaction_count": 11,
        "accepted_gift_types": {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        },
    }


async def get_chat_member(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    chat = state.chats.find(params)
    user_id = params.get("user_id")
    if user_id is None:
        raise bad("user_id is empty")
    if int(user_id) == state.bot.id:
        status = "administrator" if state.chats.bot_is_admin(chat["id"]) else "member"
        return state.chats.member(chat["id"], state.bot.user, status)
    user = state.chats.users.get(int(user_id))
    if user is None or (chat["type"] == "private" and chat["id"] != user["id"]):
        raise bad("member not found")
    return state.chats.member(chat["id"], user)


async def answer_callback_query(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    query_id = str(params.get("callback_query_id") or "")
    pending = state.callbacks.get(query_id)
    if pending is None or pending["answered"]:
        raise bad("query is too old and response timeout expired or query ID is invalid")
    if utf16_len(str(params.get("text") or "")) > 200:
        raise bad("MESSAGE_TOO_LONG")
    pending["answered"] = True
    state.callback_answers[query_id] = dict(params)
    return True


async def get_file(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    stored = state.files.by_id.get(str(params.get("file_id") or ""))
    if stored is None:
        raise bad("invalid file_id")
    if stored.file_size > (LOCAL_DOWNLOAD_LIMIT if state.bot.local_dir else DOWNLOAD_LIMIT):
        raise bad("file is too big")
    if state.bot.local_dir is not None:
        path = os.path.join(state.bot.local_dir, f"{stored.file_unique_id}.bin")
        await asyncio.to_thread(Path(path).write_bytes, stored.data)
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": path,
        }
    if stored.file_path is None:
        folder, ext = _FILE_FOLDERS.get(stored.kind, ("documents", "bin"))
        if stored.file_name and "." in stored.file_name and stored.kind == "document":
            ext = stored.file_name.rsplit(".", 1)[1]
        stored.file_path = f"{folder}/file_{len(state.files.paths)}.{ext}"
        state.files.paths[stored.file_path] = stored.file_id
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": stored.file_size,
        "file_path": stored.file_path,
    }


METHODS: Methods = {
    "getchat": get_chat,
    "getchatmember": get_chat_member,
    "answercallbackquery": answer_callback_query,
    "getfile": get_file,
}
