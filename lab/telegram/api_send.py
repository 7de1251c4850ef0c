"""Sending: sendMessage, the media messages (voice, audio, document, photo) and sendChatAction.

Media are checked as Telegram checks them: a voice note must be OGG/Opus (or MP3/M4A), a file_id cannot be
reused as another kind, durations come from the audio itself when the bot does not say.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import Any

from ..audio import decode_duration, ogg_opus_duration, sniff_audio_format
from .compose import caption, check_markup, message_text, reply_target, store_bot_message
from .errors import bad
from .handler import Methods
from .records import ApiCall, StoredFile
from .state import TelegramState

__all__ = ["METHODS"]

CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)

Builder = Callable[[bytes, StoredFile | None, str | None], Awaitable[tuple[str, dict[str, Any], int | None]]]
"""Turns the file's bytes (and the stored file, when sent by file_id) into the message's media fields."""


async def send_message(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params
    chat = state.chats.find(params)
    state.chats.check_can_send(chat)
    plain, entities = message_text(params, too_long="message is too long")
    markup = check_markup(params.get("reply_markup"))
    reply = reply_target(state, chat, params)
    fields: dict[str, Any] = {"text": plain}
    if entities:
        fields["entities"] = entities
    lpo = params.get("link_preview_options")
    if isinstance(lpo, dict):
        fields["link_preview_options"] = lpo
    message = store_bot_message(state, chat, params, fields, reply, markup)
    state.messages.record_sent(message, params, "text")
    return message


async def media_message(state: TelegramState, call: ApiCall, name: str, build: Builder) -> dict[str, Any]:
    """What every send<Media> shares: the chat, the file (upload or file_id), caption, keyboard, reply."""
    params = call.params
    chat = state.chats.find(params)
    state.chats.check_can_send(chat)
    data, existing, filename = state.files.input_file(params, call.files, call.file_names, name)
    if not data and existing is None:
        raise bad("file must be non-empty")
    caption_fields = caption(params)
    markup = check_markup(params.get("reply_markup"))
    reply = reply_target(state, chat, params)
    kind, media, duration = await build(data, existing, filename)
    message = store_bot_message(state, chat, params, {**media, **caption_fields}, reply, markup)
    file_id = next(iter(media.values()))
    file_id = file_id[-1]["file_id"] if isinstance(file_id, list) else file_id["file_id"]
    state.messages.record_sent(message, params, kind, data=data, duration=duration, file_id=file_id)
    return message


async def duration_of(data: bytes, fmt: str | None) -> int:
    try:
        if fmt == "opus":
            seconds = await asyncio.to_thread(ogg_opus_duration, data)
        else:
            seconds = await asyncio.to_thread(decode_duration, data)
    except ValueError:
        return 0
    return max(1, math.ceil(seconds - 1e-6)) if seconds > 0 else 0


def reuse_check(existing: StoredFile | None, kind: str) -> None:
    if existing is not None and existing.kind != kind and {existing.kind, kind} & {"voice", "photo", "audio"}:
        raise bad(f"can't use file of type {existing.kind.capitalize()} as {kind.capitalize()}")


def register_upload(state: TelegramState, data: bytes, kind: str, mime: str | None, name: str | None) -> StoredFile:
    return state.files.add(data, kind=kind, mime_type=mime, file_name=name)


async def send_voice(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params

    async def build(
        data: bytes, existing: StoredFile | None, filename: str | None
    ) -> tuple[str, dict[str, Any], int | None]:
        if state.chats.meta(state.chats.find(params)["id"]).get("no_voice"):
            raise bad("VOICE_MESSAGES_FORBIDDEN")
        reuse_check(existing, "voice")
        fmt = sniff_audio_format(data)
        if fmt not in ("opus", "mp3", "m4a"):
            raise bad("wrong file type")
        mime = {"opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4"}[fmt]
        stored = existing or register_upload(state, data, "voice", mime, filename)
        duration = params.get("duration")
        if duration is None:
            duration = await duration_of(data, fmt)
        voice = {
            "duration": int(duration),
            "mime_type": mime,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        return "voice", {"voice": voice}, int(duration)

    return await media_message(state, call, "voice", build)


async def send_audio(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    params = call.params

    async def build(
        data: bytes, existing: StoredFile | None, filename: str | None
    ) -> tuple[str, dict[str, Any], int | None]:
        reuse_check(existing, "audio")
        fmt = sniff_audio_format(data)
        if fmt not in ("mp3", "m4a", "opus"):
            # Telegram only plays MP3/M4A (and Opus) as music; anything else arrives as a document.
            stored = existing or register_upload(state, data, "document", "application/octet-stream", filename)
            doc = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size,
            }
            if filename:
                doc["file_name"] = filename
            return "document", {"document": doc}, None
        mime = {"opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4"}[fmt]
        stored = existing or register_upload(state, data, "audio", mime, filename)
        duration = params.get("duration")
        if duration is None:
            duration = await duration_of(data, fmt)
        audio: dict[str, Any] = {
            "duration": int(duration),
            "mime_type": mime,
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        for key in ("title", "performer"):
            if params.get(key):
                audio[key] = params[key]
        if filename:
            audio["file_name"] = filename
        return "audio", {"audio": audio}, int(duration)

    return await media_message(state, call, "audio", build)


async def send_document(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    async def build(
        data: bytes, existing: StoredFile | None, filename: str | None
    ) -> tuple[str, dict[str, Any], int | None]:
        reuse_check(existing, "document")
        stored = existing or register_upload(state, data, "document", None, filename)
        doc: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        if stored.file_name:
            doc["file_name"] = stored.file_name
        return "document", {"document": doc}, None

    return await media_message(state, call, "document", build)


async def send_photo(state: TelegramState, call: ApiCall) -> dict[str, Any]:
    async def build(
        data: bytes, existing: StoredFile | None, filename: str | None
    ) -> tuple[str, dict[str, Any], int | None]:
        reuse_check(existing, "photo")
        width = height = 0
        if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
            width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        elif data.startswith((b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or data[8:12] == b"WEBP":
            width = height = 320
        if not (width and height):
            raise bad("IMAGE_PROCESS_FAILED")
        stored = existing or register_upload(state, data, "photo", "image/jpeg", filename)
        size = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "width": width,
            "height": height,
        }
        return "photo", {"photo": [size]}, None

    return await media_message(state, call, "photo", build)


async def send_chat_action(state: TelegramState, call: ApiCall) -> bool:
    params = call.params
    chat = state.chats.find(params)
    if params.get("action") not in CHAT_ACTIONS:
        raise bad("wrong parameter action in request")
    state.chats.check_can_send(chat)
    return True


METHODS: Methods = {
    "sendmessage": send_message,
    "sendvoice": send_voice,
    "sendaudio": send_audio,
    "senddocument": send_document,
    "sendphoto": send_photo,
    "sendchataction": send_chat_action,
}
