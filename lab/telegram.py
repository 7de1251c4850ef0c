"""FakeTelegram: a loopback stand-in for the Telegram Bot API, driven by the unmodified python-telegram-bot.

It behaves like the real server where the application can get it wrong (unknown chats, empty or over-long
text, broken HTML/MarkdownV2, replies to missing messages, voice notes that are not OGG/Opus, files over the
20 MB download limit, callback data over 64 bytes, concurrent getUpdates ...) and answers with the real
error descriptions, so a test that passes here does not fail against api.telegram.org for a reason the lab
could have caught. Everything the bot does is recorded (`calls`, `sent`) for precise assertions.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import os
import re
import secrets
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from ._server import LabServer
from .audio import InvalidOgg, decode_duration, ogg_opus_duration, sniff_audio_format
from .telegram_text import EntityParseError, bot_command_entities, parse_text, utf16_len

__all__ = [
    "DOWNLOAD_LIMIT",
    "UPLOAD_LIMIT",
    "ApiCall",
    "FakeTelegram",
    "SentMessage",
    "StoredFile",
    "StoredMessage",
    "TelegramAPIError",
]

LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files ("file is too big")
UPLOAD_LIMIT = 50 * 1024 * 1024  # multipart uploads beyond this get HTTP 413
MAX_TEXT = 4096
MAX_CAPTION = 1024
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
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
# Update types Telegram leaves out unless they are asked for explicitly in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
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
_REACTION_EMOJI = frozenset(
    (
        "❤ 👍 👎 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤‍🔥 🌚 🌭 "
        "💯 🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨‍💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 "
        "🫡 🎅 🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷‍♂ 🤷 🤷‍♀ 😡"
    ).split()
)

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
_MEDIA_KEYS = ("voice", "audio", "document", "photo", "video", "animation", "video_note")


class TelegramAPIError(Exception):
    """An error answer exactly as the Bot API shapes it: error_code, description, optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def _bad(description: str) -> TelegramAPIError:
    return TelegramAPIError(400, f"Bad Request: {description}")


@dataclass
class ApiCall:
    """One HTTP request the bot made (recorded on arrival; ok/error filled in when answered)."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    at: float
    ok: bool = False
    error: str | None = None
    status: int | None = None
    finished: float | None = None
    file_names: dict[str, str] = field(default_factory=dict)
    result: Any = None
    abandoned: bool = False  # the client had disconnected before the answer was written


@dataclass
class SentMessage:
    """A message the bot successfully sent: what the user sees (text after markup parsing)."""

    message_id: int
    chat_id: int
    kind: str
    text: str | None = None
    caption: str | None = None
    reply_to_message_id: int | None = None
    reply_markup: dict[str, Any] | None = None
    parse_mode: str | None = None
    data: bytes | None = None
    duration: int | None = None
    message_thread_id: int | None = None
    edits: list[str] = field(default_factory=list)
    deleted: bool = False
    file_id: str | None = None
    entities: list[dict[str, Any]] = field(default_factory=list)
    at: float = 0.0

    @property
    def current_text(self) -> str | None:
        """Text (or caption) as it reads now, after any edits."""
        if self.edits:
            return self.edits[-1]
        return self.text if self.text is not None else self.caption


@dataclass
class StoredMessage:
    """The fake's current view of one message in a chat (users' and the bot's alike)."""

    chat_id: int
    message_id: int
    payload: dict[str, Any]
    from_bot: bool
    deleted: bool = False
    edits: list[str] = field(default_factory=list)

    @property
    def text(self) -> str | None:
        return self.payload.get("text")

    @property
    def caption(self) -> str | None:
        return self.payload.get("caption")

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.payload.get("reply_markup")

    # Mapping-style access to the Telegram message dict (plus "deleted" and "edits"), for terse tests.
    def __getitem__(self, key: str) -> Any:
        if key == "deleted":
            return self.deleted
        if key == "edits":
            return self.edits
        return self.payload[key]

    def __contains__(self, key: object) -> bool:
        return key in ("deleted", "edits") or key in self.payload

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


@dataclass
class StoredFile:
    """A file known to the fake, reachable by file_id and (after getFile) by file_path."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_size: int
    kind: str
    mime_type: str | None = None
    file_name: str | None = None
    file_path: str | None = None


@dataclass
class _Fault:
    error_code: int
    description: str
    retry_after: int | None
    times: int


Handler = Callable[[dict[str, Any], dict[str, bytes], ApiCall], Awaitable[Any]]


class FakeTelegram(LabServer):
    """Loopback Bot API. Point the app at `url` (base_url f"{url}/bot", base_file_url f"{url}/file/bot")."""

    def __init__(
        self,
        token: str = "123456:TEST-lab-token-abcdefghijklmnopqrstuvw",
        bot_username: str = "parley_test_bot",
        bot_id: int = 7000001,
        can_read_all_group_messages: bool = False,
        bot_first_name: str = "Parley Test",
        local_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.local_dir = local_dir
        """Like a Bot API server run with --local: files up to 2 GB, handed over as absolute paths in this
        folder (the bot reads them from disk) instead of by download."""
        self.token = token
        self.bot_username = bot_username
        self.bot_id = bot_id
        self.bot_first_name = bot_first_name
        self.can_read_all_group_messages = can_read_all_group_messages
        # records
        self.calls: list[ApiCall] = []
        self.sent: list[SentMessage] = []
        self.downloads: list[str] = []
        self.dropped_updates: list[tuple[dict[str, Any], str]] = []
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.reactions: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.internal_errors: list[str] = []
        self._member_status: dict[tuple[int, int], str] = {}
        self.unauthorized: list[str] = []  # paths requested with a wrong token (never reach `calls`)
        self.unknown_methods: list[str] = []  # methods the fake does not implement (answered 404 as Telegram)
        # state
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = 500_000_001
        self._confirmed = 0
        self._poll_seq = 0
        self._allowed_updates: list[str] | None = None
        self._chats: dict[int, dict[str, Any]] = {}
        self._chat_meta: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._messages: dict[tuple[int, int], StoredMessage] = {}
        self._next_mid: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._paths: dict[str, str] = {}
        self._file_seq = 0
        self._callbacks: dict[str, dict[str, Any]] = {}
        self._commands: dict[tuple[str, str], list[dict[str, str]]] = {}
        self._profile: dict[str, str] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._webhook: dict[str, Any] = {"url": ""}
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "logout": self._true,
            "close": self._true,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "setmyname": self._profile_setter("name", 64),
            "getmyname": self._profile_getter("name"),
            "setmydescription": self._profile_setter("description", 512),
            "getmydescription": self._profile_getter("description"),
            "setmyshortdescription": self._profile_setter("short_description", 120),
            "getmyshortdescription": self._profile_getter("short_description"),
            "setchatmenubutton": self._set_chat_menu_button,
            "getchatmenubutton": self._get_chat_menu_button,
            "getfile": self._get_file,
            "sendmessage": self._send_message,
            "sendvoice": self._send_voice,
            "sendaudio": self._send_audio,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "sendchataction": self._send_chat_action,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "answercallbackquery": self._answer_callback_query,
            "setmessagereaction": self._set_message_reaction,
            "getchat": self._get_chat,
            "getchatmember": self._get_chat_member,
        }

    # =====================================================================================================
    # test-facing API
    # =====================================================================================================
    @property
    def url(self) -> str:
        """Root URL, the app's TELEGRAM_API_URL (PTB: base_url=url+"/bot", base_file_url=url+"/file/bot")."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    @property
    def bot_user(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def user(
        self,
        user_id: int,
        first_name: str = "Ann",
        username: str | None = None,
        language_code: str | None = "en",
    ) -> dict[str, Any]:
        """A Telegram User dict for a human (remembered, so getChatMember knows them)."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self._users[user_id] = user
        return user

    def add_chat(
        self,
        chat_id: int,
        *,
        chat_type: str = "private",
        title: str | None = None,
        first_name: str = "Ann",
        username: str | None = None,
        is_forum: bool = False,
        bot_is_admin: bool = False,
    ) -> dict[str, Any]:
        """Make a chat known (the bot may then send to it) without any update being pushed."""
        if chat_id in self._chats:
            return self._chats[chat_id]
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or f"Lab {chat_type} {chat_id}"
        if username:
            chat["username"] = username
        if is_forum and chat_type == "supergroup":
            chat["is_forum"] = True
        self._chats[chat_id] = chat
        # Keep settings made before the chat was known (block(), forbid_voice()).
        self._chat_meta.setdefault(chat_id, {"blocked": False})["bot_is_admin"] = bot_is_admin
        return chat

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """Simulate the user blocking the bot: sends then fail with 403 like the real API."""
        self._chat_meta.setdefault(chat_id, {"blocked": False, "bot_is_admin": False})["blocked"] = blocked

    def forbid_voice(self, chat_id: int, forbidden: bool = True) -> None:
        """The user disallowed voice messages (a privacy setting): sendVoice gets VOICE_MESSAGES_FORBIDDEN."""
        self._chat_meta.setdefault(chat_id, {"blocked": False, "bot_is_admin": False})["no_voice"] = forbidden

    def add_file(
        self,
        data: bytes,
        *,
        file_size: int | None = None,
        kind: str = "voice",
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> tuple[str, str]:
        """Register a file (as if a user uploaded it); file_size may claim more than len(data)."""
        self._file_seq += 1
        prefix = {"voice": "AwACAgIAAxkBAAI", "audio": "CQACAgIAAxkBAAI", "photo": "AgACAgIAAxkBAAI"}.get(
            kind, "BQACAgIAAxkBAAI"
        )
        file_id = f"{prefix}{self._file_seq:05d}{secrets.token_urlsafe(24)}"
        unique = f"AgAD{secrets.token_urlsafe(8)}"
        self._files[file_id] = StoredFile(
            file_id=file_id,
            file_unique_id=unique,
            data=data,
            file_size=len(data) if file_size is None else file_size,
            kind=kind,
            mime_type=mime_type,
            file_name=file_name,
        )
        return file_id, unique

    def file(self, file_id: str) -> StoredFile | None:
        return self._files.get(file_id)

    def push_text(
        self,
        chat_id: int,
        user: dict[str, Any] | int,
        text: str,
        *,
        chat_type: str = "private",
        reply_to: int | None = None,
        entities: list[dict[str, Any]] | None = None,
        message_thread_id: int | None = None,
    ) -> int:
        """A user writes `text`; a leading /command gets its bot_command entity as in real updates."""
        fields: dict[str, Any] = {"text": text}
        ents = entities if entities is not None else bot_command_entities(text)
        if ents:
            fields["entities"] = ents
        return self._push_user_message(
            chat_id, user, fields, chat_type=chat_type, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def push_voice(
        self,
        chat_id: int,
        user: dict[str, Any] | int,
        ogg: bytes,
        *,
        duration: int | None = None,
        file_size: int | None = None,
        caption: str | None = None,
        chat_type: str = "private",
        reply_to: int | None = None,
        message_thread_id: int | None = None,
    ) -> int:
        """A user records a voice note; duration defaults to the real length of `ogg`, rounded up."""
        if duration is None:
            try:
                duration = max(1, math.ceil(ogg_opus_duration(ogg) - 1e-6))
            except InvalidOgg:
                duration = 0  # a broken upload: Telegram would still relay what the client claimed
        file_id, unique = self.add_file(ogg, file_size=file_size, kind="voice", mime_type="audio/ogg")
        voice = {
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_id": file_id,
            "file_unique_id": unique,
            "file_size": self._files[file_id].file_size,
        }
        fields: dict[str, Any] = {"voice": voice}
        if caption:
            fields["caption"] = caption
        return self._push_user_message(
            chat_id, user, fields, chat_type=chat_type, reply_to=reply_to, message_thread_id=message_thread_id
        )

    def push_message(
        self,
        chat_id: int,
        user: dict[str, Any] | int,
        fields: dict[str, Any],
        *,
        chat_type: str = "private",
        reply_to: int | None = None,
    ) -> int:
        """Any other user message (sticker, photo, document, audio, video_note ...): fields are merged in."""
        return self._push_user_message(chat_id, user, dict(fields), chat_type=chat_type, reply_to=reply_to)

    def push_callback(self, chat_id: int, user: dict[str, Any] | int, message_id: int, data: str) -> str:
        """A user presses an inline button under the bot's message `message_id`; returns the query id."""
        stored = self._messages.get((chat_id, message_id))
        if stored is None or not stored.from_bot:
            raise AssertionError(f"push_callback: chat {chat_id} has no bot message {message_id}")
        query_id = str(secrets.randbits(62))
        self._callbacks[query_id] = {"answered": False, "at": time.monotonic()}
        query = {
            "id": query_id,
            "from": self._as_user(user),
            "message": copy.deepcopy(stored.payload),
            "chat_instance": str((chat_id * 7919 + 104729) % 10**18),
            "data": data,
        }
        self._enqueue({"callback_query": query})
        return query_id

    def push_edit(self, chat_id: int, message_id: int, new_text: str) -> None:
        """A user edits one of their text messages (an edited_message update)."""
        stored = self._messages.get((chat_id, message_id))
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
        self._enqueue({"edited_message": copy.deepcopy(stored.payload)})

    def push_raw_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update (update_id assigned if missing); returns its update_id."""
        return self._enqueue(copy.deepcopy(update))

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def calls_of(self, method: str) -> list[ApiCall]:
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """Current state of a message (edits applied, deleted flag), whoever sent it."""
        return self._messages.get((chat_id, message_id))

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The bot's command list as set with setMyCommands for that scope/language."""
        return list(self._commands.get(self._commands_key(scope, language_code), []))

    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot (getWebhookInfo's pending_update_count)."""
        return len(self._updates)

    @property
    def updates_confirmed(self) -> int:
        """How many updates the bot confirmed with a later getUpdates offset."""
        return self._confirmed

    @property
    def webhook_url(self) -> str:
        return str(self._webhook.get("url", ""))

    @property
    def webhook(self) -> dict[str, Any]:
        """The webhook as set with setWebhook (url, secret_token, allowed_updates …); url is "" when none."""
        return dict(self._webhook)

    async def deliver_to_webhook(self, address: str) -> list[int]:
        """POST every pending update to the webhook, as Telegram does: JSON, one update per request, with
        setWebhook's secret_token in X-Telegram-Bot-Api-Secret-Token. `address` (e.g. http://127.0.0.1:8080)
        stands in for the HTTPS front end the webhook URL names; the URL's path is kept. An update answered
        2xx is confirmed (Telegram would retry the others later). Returns the HTTP statuses, in order."""
        url = self.webhook_url
        if not url:
            raise AssertionError("deliver_to_webhook: no webhook is set (setWebhook was not called)")
        headers = {"Content-Type": "application/json"}
        if self._webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(self._webhook["secret_token"])
        statuses: list[int] = []
        async with aiohttp.ClientSession() as session:
            for update in list(self._updates):
                target = address.rstrip("/") + (urlsplit(url).path or "/")
                async with session.post(target, data=json.dumps(update), headers=headers) as response:
                    statuses.append(response.status)
                if 200 <= response.status < 300:
                    self._updates.remove(update)
                    self._confirmed += 1
        self._notify()
        return statuses

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail like the real API would (429 carries retry_after)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = {
                400: "Bad Request: injected failure",
                403: "Forbidden: bot was blocked by the user",
                409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
                "is running",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, "Internal Server Error")
        self._faults.setdefault(method.lower(), []).append(_Fault(error_code, description, retry_after, times))

    def delay(self, method: str, seconds: float) -> None:
        """Add latency to every call of `method` (0 removes it)."""
        self._delays[method.lower()] = seconds

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 15.0,  # noqa: ASYNC109 - a plain test deadline
        what: str = "condition",
    ) -> None:
        """Wait until predicate() holds; fail with the recent API traffic if it never does."""
        await self._poll_until(predicate, timeout, self.describe, what)

    async def wait_sent(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 15.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until the bot has sent at least `count` messages to `chat_id`; return them all."""
        await self.wait_for(
            lambda: len(self.sent_to(chat_id)) >= count,
            timeout,
            what=f"{count} message(s) sent to chat {chat_id}",
        )
        return self.sent_to(chat_id)

    async def wait_calls(
        self,
        method: str,
        count: int = 1,
        timeout: float = 15.0,  # noqa: ASYNC109
    ) -> list[ApiCall]:
        """Wait until `method` has been answered at least `count` times."""
        await self.wait_for(
            lambda: sum(1 for c in self.calls_of(method) if c.finished) >= count,
            timeout,
            what=f"{count} answered {method} call(s)",
        )
        return self.calls_of(method)

    async def wait_consumed(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - plain test deadline
        """Wait until the bot has confirmed every pushed update."""
        await self.wait_for(lambda: not self._updates, timeout, what="all updates to be confirmed")

    def describe(self, last: int = 20) -> str:
        """A readable summary of recent traffic, for assertion messages."""
        lines = [f"FakeTelegram: {len(self.calls)} calls, {len(self.sent)} sent, {len(self._updates)} pending updates"]
        for call in self.calls[-last:]:
            shown = {k: (v if len(repr(v)) < 120 else repr(v)[:117] + "...") for k, v in call.params.items()}
            state = "…" if call.finished is None else ("ok" if call.ok else f"ERR {call.status} {call.error}")
            if call.abandoned:
                state += " (client gone)"
            files = f" files={ {k: len(v) for k, v in call.files.items()} }" if call.files else ""
            lines.append(f"  {call.method} {shown}{files} -> {state}")
        if self.unknown_methods:
            lines.append(f"methods FakeTelegram does not implement (answered 404): {self.unknown_methods}")
        if self.unauthorized:
            lines.append(f"requests with a wrong token: {self.unauthorized[-5:]}")
        if self.internal_errors:
            lines.append("LAB INTERNAL ERRORS:\n" + "\n".join(self.internal_errors))
        return "\n".join(lines)

    # =====================================================================================================
    # HTTP plumbing
    # =====================================================================================================
    @staticmethod
    def _reply(status: int, body: dict[str, Any]) -> web.Response:
        return web.json_response(body, status=status)

    def _error(self, err: TelegramAPIError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": err.code, "description": err.description}
        if err.parameters:
            body["parameters"] = err.parameters
        return self._reply(err.code, body)

    def _token_error(self, token: str) -> TelegramAPIError:
        # The real server answers 404 to a malformed token and 401 to a well-formed but wrong one.
        if re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            return TelegramAPIError(401, "Unauthorized")
        return TelegramAPIError(404, "Not Found")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return await self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot"):
            return self._error(TelegramAPIError(404, "Not Found"))
        token, _, method = path[len("/bot") :].partition("/")
        if token != self.token:
            self.unauthorized.append(path.replace(token, "<token>", 1) if token else path)
            self._notify()
            return self._error(self._token_error(token))
        if not method or "/" in method:
            return self._error(TelegramAPIError(404, "Not Found"))
        call = ApiCall(method=method, params={}, files={}, at=time.monotonic())
        self.calls.append(call)
        try:
            call.params, call.files, call.file_names = await self._read_params(request)
            self._notify()
            if delay := self._delays.get(method.lower()):
                await asyncio.sleep(delay)
            self._maybe_fault(method)
            handler = self._methods.get(method.lower())
            if handler is None:
                self.unknown_methods.append(method)
                raise TelegramAPIError(404, "Not Found")
            result = await handler(call.params, call.files, call)
        except TelegramAPIError as err:
            call.ok, call.error, call.status = False, err.description, err.code
            return self._error(err)
        except ConnectionResetError:
            # The client hung up while its request was being read: not a lab failure (marked abandoned below).
            call.ok, call.error = False, "client disconnected"
            raise
        except Exception as exc:  # a bug in the lab itself: make it loud
            self.internal_errors.append(f"{method}: {''.join(traceback.format_exception(exc))}")
            call.ok, call.error, call.status = False, f"lab crashed: {exc!r}", 500
            return self._error(TelegramAPIError(500, "Internal Server Error"))
        finally:
            call.finished = time.monotonic()
            transport = request.transport
            # The client hung up before the answer (e.g. PTB cancelling its long-poll on shutdown): the
            # answer reaches nobody, so tests can tell this apart from an error the bot actually saw.
            call.abandoned = transport is None or transport.is_closing()
            self._notify()
        call.ok, call.status, call.result = True, 200, result
        return self._reply(200, {"ok": True, "result": result})

    def _maybe_fault(self, method: str) -> None:
        queue = self._faults.get(method.lower())
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        params = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
        raise TelegramAPIError(fault.error_code, fault.description, params)

    async def _read_params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes], dict[str, str]]:
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
                        raise _bad("can't parse JSON object") from exc
                    if not isinstance(data, dict):
                        raise _bad("can't parse JSON object")
                    raw.update(data)
            elif ctype == "application/x-www-form-urlencoded":
                form = await request.post()
                raw.update({k: v for k, v in form.items() if isinstance(v, str)})
            elif ctype == "multipart/form-data":
                reader = await request.multipart()
                total = 0
                async for part in reader:
                    if not hasattr(part, "filename") or part.name is None:
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
        return {k: self._coerce(k, v) for k, v in raw.items()}, files, names

    @staticmethod
    def _coerce(name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if name in _JSON_PARAMS:
            try:
                return json.loads(value)
            except ValueError as exc:
                if name == "reply_markup":
                    raise _bad("can't parse reply keyboard markup JSON object") from exc
                raise _bad(f"can't parse {name} JSON object") from exc
        if name in _INT_PARAMS or (name in _CHAT_ID_PARAMS and re.fullmatch(r"-?\d+", value.strip())):
            try:
                return int(value.strip())
            except ValueError as exc:
                raise _bad(f"invalid {name} specified") from exc
        if name in _BOOL_PARAMS:
            return value.strip().lower() in ("true", "1")
        return value

    async def _serve_file(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        if token != self.token:
            return self._error(self._token_error(token))
        file_id = self._paths.get(file_path)
        self.downloads.append(file_path)
        self._notify()
        if file_id is None:
            return self._error(TelegramAPIError(404, "Not Found"))
        return web.Response(body=self._files[file_id].data, content_type="application/octet-stream")

    # =====================================================================================================
    # state helpers
    # =====================================================================================================
    def _as_user(self, user: dict[str, Any] | int) -> dict[str, Any]:
        if isinstance(user, int):
            return self._users.get(user) or self.user(user)
        self._users[int(user["id"])] = user
        return user

    def _next_message_id(self, chat_id: int) -> int:
        mid = self._next_mid.get(chat_id, 0) + 1
        self._next_mid[chat_id] = mid
        return mid

    def _enqueue(self, update: dict[str, Any]) -> int:
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
        else:
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        kinds = [k for k in update if k != "update_id"]
        kind = kinds[0] if kinds else ""
        allowed = self._allowed_updates
        if (allowed and kind not in allowed) or (not allowed and kind in _OPT_IN_UPDATES):
            self.dropped_updates.append((update, f"{kind} not in allowed_updates {allowed}"))
        else:
            self._updates.append(update)
        self._notify()
        return int(update["update_id"])

    def _push_user_message(
        self,
        chat_id: int,
        user: dict[str, Any] | int,
        fields: dict[str, Any],
        *,
        chat_type: str,
        reply_to: int | None,
        message_thread_id: int | None = None,
    ) -> int:
        sender = self._as_user(user)
        chat = self._chats.get(chat_id) or self.add_chat(
            chat_id, chat_type=chat_type, first_name=sender["first_name"], username=sender.get("username")
        )
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat_id),
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
            replied = self._messages.get((chat_id, reply_to))
            if replied is None:
                raise AssertionError(f"push: chat {chat_id} has no message {reply_to} to reply to")
            message["reply_to_message"] = self._shallow(replied.payload)
        message.update(fields)
        self._messages[(chat_id, message["message_id"])] = StoredMessage(
            chat_id, message["message_id"], message, from_bot=False
        )
        reason = self._privacy_blocks(chat, message, replied)
        if reason:
            self.dropped_updates.append(({"message": message}, reason))
            self._notify()
        else:
            self._enqueue({"message": copy.deepcopy(message)})
        return int(message["message_id"])

    def _privacy_blocks(
        self, chat: dict[str, Any], message: dict[str, Any], replied: StoredMessage | None
    ) -> str | None:
        """Why a bot in privacy mode would not receive this group message (None: it would)."""
        if chat["type"] not in ("group", "supergroup") or self.can_read_all_group_messages:
            return None
        if self._chat_meta.get(chat["id"], {}).get("bot_is_admin"):
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
                if not target or target.lower() == self.bot_username.lower():
                    return None
        return "privacy mode: group message not addressed to the bot"

    @staticmethod
    def _shallow(payload: dict[str, Any]) -> dict[str, Any]:
        """A message as embedded in reply_to_message: one level only, like Telegram does."""
        inner = copy.deepcopy(payload)
        inner.pop("reply_to_message", None)
        return inner

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty")
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for chat in self._chats.values():
                if str(chat.get("username", "")).lower() == name and chat["type"] != "private":
                    return chat
            raise _bad("chat not found")
        chat = self._chats.get(int(chat_id))
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _check_can_send(self, chat: dict[str, Any]) -> None:
        if self._chat_meta.get(chat["id"], {}).get("blocked"):
            if chat["type"] == "private":
                raise TelegramAPIError(403, "Forbidden: bot was blocked by the user")
            raise TelegramAPIError(403, "Forbidden: bot was kicked from the group chat")

    def _reply_target(self, chat: dict[str, Any], params: dict[str, Any]) -> StoredMessage | None:
        reply_id = params.get("reply_to_message_id")
        allow = bool(params.get("allow_sending_without_reply", False))
        target_chat = chat["id"]
        rp = params.get("reply_parameters")
        if rp is not None:
            if not isinstance(rp, dict) or "message_id" not in rp:
                raise _bad("can't parse reply parameters JSON object")
            reply_id = rp["message_id"]
            allow = bool(rp.get("allow_sending_without_reply", allow))
            if rp.get("chat_id") not in (None, ""):
                target_chat = self._chat({"chat_id": rp["chat_id"]})["id"]
        if reply_id is None:
            return None
        stored = self._messages.get((target_chat, int(reply_id)))
        if stored is None or stored.deleted:
            if allow:
                return None
            raise _bad("message to be replied not found")
        return stored

    @staticmethod
    def _check_markup(markup: Any) -> dict[str, Any] | None:
        """Validate reply_markup; return it when it is an inline keyboard (the only kind echoed back)."""
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays')
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                        raise _bad("can't parse inline keyboard button: Can't find field \"text\"")
                    if not _INLINE_BUTTON_ACTIONS & button.keys():
                        raise _bad("text buttons are unallowed in the inline keyboard")
                    if "callback_data" in button:
                        data = str(button["callback_data"])
                        if not 1 <= len(data.encode("utf-8")) <= 64:
                            raise _bad("BUTTON_DATA_INVALID")
                    if "url" in button and not re.match(r"^(https?|tg)://[^\s]+$", str(button["url"])):
                        raise _bad("BUTTON_URL_INVALID")
            return markup
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad('field "keyboard" of the ReplyKeyboardMarkup must be an Array of Arrays')
            return None
        if "remove_keyboard" in markup or "force_reply" in markup:
            return None
        raise _bad("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _parse(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[dict[str, Any]]]:
        if parse_mode:
            try:
                return parse_text(text, str(parse_mode))
            except EntityParseError as exc:
                if str(exc).startswith("Unsupported parse_mode"):
                    raise _bad("unsupported parse_mode") from exc
                raise _bad(f"can't parse entities: {exc}") from exc
        if entities:
            if not isinstance(entities, list):
                raise _bad("can't parse entities JSON object")
            size = utf16_len(text)
            for ent in entities:
                if not isinstance(ent, dict) or "type" not in ent:
                    raise _bad("can't parse MessageEntity: Can't find field \"type\"")
                offset, length = int(ent.get("offset", -1)), int(ent.get("length", 0))
                if offset < 0 or length <= 0 or offset + length > size:
                    raise _bad("can't parse entities: entity beyond the end of text")
            return text, list(entities)
        return text, []

    def _caption(self, params: dict[str, Any]) -> dict[str, Any]:
        caption = params.get("caption")
        if not caption:
            return {}
        plain, entities = self._parse(str(caption), params.get("parse_mode"), params.get("caption_entities"))
        if utf16_len(plain) > MAX_CAPTION:
            raise _bad("message caption is too long")
        if not plain.strip():
            return {}
        fields: dict[str, Any] = {"caption": plain}
        if entities:
            fields["caption_entities"] = entities
        return fields

    def _store_bot_message(
        self,
        chat: dict[str, Any],
        params: dict[str, Any],
        fields: dict[str, Any],
        reply: StoredMessage | None,
        markup: dict[str, Any] | None,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": self._next_message_id(chat["id"]),
            "from": self.bot_user,
            "chat": dict(chat),
            "date": int(time.time()),
        }
        thread = params.get("message_thread_id")
        if thread is not None:
            message["message_thread_id"] = thread
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        if reply is not None:
            message["reply_to_message"] = self._shallow(reply.payload)
        message.update(fields)
        if markup is not None:
            message["reply_markup"] = markup
        self._messages[(chat["id"], message["message_id"])] = StoredMessage(
            chat["id"], message["message_id"], message, from_bot=True
        )
        return message

    def _record_sent(
        self,
        message: dict[str, Any],
        params: dict[str, Any],
        kind: str,
        *,
        data: bytes | None = None,
        duration: int | None = None,
        file_id: str | None = None,
    ) -> None:
        reply = message.get("reply_to_message")
        self.sent.append(
            SentMessage(
                message_id=message["message_id"],
                chat_id=message["chat"]["id"],
                kind=kind,
                text=message.get("text"),
                caption=message.get("caption"),
                reply_to_message_id=reply["message_id"] if reply else None,
                reply_markup=params.get("reply_markup") if isinstance(params.get("reply_markup"), dict) else None,
                parse_mode=params.get("parse_mode"),
                data=data,
                duration=duration,
                message_thread_id=params.get("message_thread_id"),
                file_id=file_id,
                entities=list(message.get("entities") or message.get("caption_entities") or []),
                at=time.monotonic(),
            )
        )

    def _input_file(
        self, params: dict[str, Any], files: dict[str, bytes], names: dict[str, str], name: str
    ) -> tuple[bytes, StoredFile | None, str | None]:
        """The bytes for a file parameter: a multipart upload, attach://part, or a known file_id."""
        value = params.get(name)
        if name in files:
            return files[name], None, names.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://") :]
            if part not in files:
                raise _bad(f'wrong HTTP URL specified: can\'t find attached file "{part}"')
            return files[part], None, names.get(part)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise _bad("failed to get HTTP URL content")
        if isinstance(value, str) and value:
            stored = self._files.get(value)
            if stored is None:
                raise _bad("wrong file identifier/HTTP URL specified")
            return stored.data, stored, stored.file_name
        raise _bad(f"there is no {name} in the request")

    def _register_upload(self, data: bytes, kind: str, mime: str | None, name: str | None) -> StoredFile:
        file_id, _ = self.add_file(data, kind=kind, mime_type=mime, file_name=name)
        return self._files[file_id]

    # =====================================================================================================
    # methods
    # =====================================================================================================
    async def _true(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        return True

    async def _get_me(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _conflict(self) -> TelegramAPIError:
        return TelegramAPIError(
            409,
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        )

    def _confirm(self, offset: int | None) -> None:
        if offset is None:
            return
        before = len(self._updates)
        if offset < 0:
            self._updates = self._updates[offset:] if -offset < before else self._updates
        else:
            self._updates = [u for u in self._updates if int(u["update_id"]) >= offset]
        self._confirmed += before - len(self._updates)

    async def _get_updates(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> list[dict[str, Any]]:
        if self._webhook.get("url"):
            raise TelegramAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
                "the webhook first",
            )
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = [str(x) for x in params["allowed_updates"]]
        self._confirm(params.get("offset"))
        self._poll_seq += 1
        me = self._poll_seq
        self._notify()  # an earlier long-poll wakes up and sees it has been superseded
        deadline = time.monotonic() + timeout
        while True:
            if me != self._poll_seq:
                raise self._conflict()
            batch = self._updates[:limit]
            remaining = deadline - time.monotonic()
            if batch or remaining <= 0 or self.stopping:
                return copy.deepcopy(batch)
            await self._wait_change(remaining)

    async def _set_webhook(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        url = str(params.get("url") or "")
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self._webhook = {"url": url, **{k: v for k, v in params.items() if k != "url"}}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self._allowed_updates = [str(x) for x in params["allowed_updates"]]
        return True

    async def _delete_webhook(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        self._webhook = {"url": ""}
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._allowed_updates:
            info["allowed_updates"] = self._allowed_updates
        return info

    @staticmethod
    def _commands_key(scope: Any, language_code: Any) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(language_code or "")

    async def _set_my_commands(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        commands = params.get("commands") or []
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("BOT_COMMANDS_TOO_MUCH")
        clean: list[dict[str, str]] = []
        for item in commands:
            if not isinstance(item, dict) or "command" not in item:
                raise _bad("can't parse BotCommand: Can't find field \"command\"")
            if "description" not in item:
                raise _bad("can't parse BotCommand: Can't find field \"description\"")
            command, description = str(item["command"]), str(item["description"])
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command):
                raise _bad("BOT_COMMAND_INVALID")
            if not description.strip():
                raise _bad("command description must be non-empty")
            if utf16_len(description) > 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": command, "description": description})
        self._commands[self._commands_key(params.get("scope"), params.get("language_code"))] = clean
        return True

    async def _get_my_commands(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> list[dict[str, str]]:
        return list(self._commands.get(self._commands_key(params.get("scope"), params.get("language_code")), []))

    async def _delete_my_commands(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        self._commands.pop(self._commands_key(params.get("scope"), params.get("language_code")), None)
        return True

    def _profile_setter(self, key: str, limit: int) -> Handler:
        async def handler(params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
            value = str(params.get(key) or "")
            if utf16_len(value) > limit:
                raise _bad(f"{key.upper()}_TOO_LONG" if key != "name" else "BOT_TITLE_INVALID")
            self._profile[f"{key}:{params.get('language_code') or ''}"] = value
            return True

        return handler

    def _profile_getter(self, key: str) -> Handler:
        async def handler(params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, str]:
            lang = params.get("language_code") or ""
            value = self._profile.get(f"{key}:{lang}") or self._profile.get(f"{key}:", "")
            if key == "name" and not value:
                value = self.bot_first_name
            return {key: value}

        return handler

    async def _set_chat_menu_button(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        chat_id = params.get("chat_id")
        if chat_id is not None:
            chat_id = self._chat(params)["id"]
        self._menu_buttons[chat_id] = params.get("menu_button") or {"type": "default"}
        return True

    async def _get_chat_menu_button(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> dict[str, Any]:
        chat_id = self._chat(params)["id"] if params.get("chat_id") is not None else None
        return self._menu_buttons.get(chat_id) or self._menu_buttons.get(None) or {"type": "commands"}

    async def _get_file(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        if stored.file_size > (LOCAL_DOWNLOAD_LIMIT if self.local_dir else DOWNLOAD_LIMIT):
            raise _bad("file is too big")
        if self.local_dir is not None:
            path = os.path.join(self.local_dir, f"{stored.file_unique_id}.bin")
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
            stored.file_path = f"{folder}/file_{len(self._paths)}.{ext}"
            self._paths[stored.file_path] = stored.file_id
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
            "file_path": stored.file_path,
        }

    async def _send_message(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        chat = self._chat(params)
        self._check_can_send(chat)
        text = params.get("text")
        if text is None or not str(text).strip():
            raise _bad("message text is empty")
        plain, entities = self._parse(str(text), params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise _bad("message is too long")
        markup = self._check_markup(params.get("reply_markup"))
        reply = self._reply_target(chat, params)
        fields: dict[str, Any] = {"text": plain}
        if entities:
            fields["entities"] = entities
        lpo = params.get("link_preview_options")
        if isinstance(lpo, dict):
            fields["link_preview_options"] = lpo
        message = self._store_bot_message(chat, params, fields, reply, markup)
        self._record_sent(message, params, "text")
        return message

    async def _media_message(
        self,
        params: dict[str, Any],
        files: dict[str, bytes],
        call: ApiCall,
        name: str,
        build: Callable[[bytes, StoredFile | None, str | None], Awaitable[tuple[str, dict[str, Any], int | None]]],
    ) -> dict[str, Any]:
        chat = self._chat(params)
        self._check_can_send(chat)
        data, existing, filename = self._input_file(params, files, call.file_names, name)
        if not data and existing is None:
            raise _bad("file must be non-empty")
        caption = self._caption(params)
        markup = self._check_markup(params.get("reply_markup"))
        reply = self._reply_target(chat, params)
        kind, media, duration = await build(data, existing, filename)
        message = self._store_bot_message(chat, params, {**media, **caption}, reply, markup)
        file_id = next(iter(media.values()))
        file_id = file_id[-1]["file_id"] if isinstance(file_id, list) else file_id["file_id"]
        self._record_sent(message, params, kind, data=data, duration=duration, file_id=file_id)
        return message

    @staticmethod
    async def _duration_of(data: bytes, fmt: str | None) -> int:
        try:
            if fmt == "opus":
                seconds = await asyncio.to_thread(ogg_opus_duration, data)
            else:
                seconds = await asyncio.to_thread(decode_duration, data)
        except ValueError:
            return 0
        return max(1, math.ceil(seconds - 1e-6)) if seconds > 0 else 0

    def _reuse_check(self, existing: StoredFile | None, kind: str) -> None:
        if existing is not None and existing.kind != kind and {existing.kind, kind} & {"voice", "photo", "audio"}:
            raise _bad(f"can't use file of type {existing.kind.capitalize()} as {kind.capitalize()}")

    async def _send_voice(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        async def build(
            data: bytes, existing: StoredFile | None, filename: str | None
        ) -> tuple[str, dict[str, Any], int | None]:
            if self._chat_meta.get(self._chat(params)["id"], {}).get("no_voice"):
                raise _bad("VOICE_MESSAGES_FORBIDDEN")
            self._reuse_check(existing, "voice")
            fmt = sniff_audio_format(data)
            if fmt not in ("opus", "mp3", "m4a"):
                raise _bad("wrong file type")
            mime = {"opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4"}[fmt]
            stored = existing or self._register_upload(data, "voice", mime, filename)
            duration = params.get("duration")
            if duration is None:
                duration = await self._duration_of(data, fmt)
            voice = {
                "duration": int(duration),
                "mime_type": mime,
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size,
            }
            return "voice", {"voice": voice}, int(duration)

        return await self._media_message(params, files, call, "voice", build)

    async def _send_audio(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        async def build(
            data: bytes, existing: StoredFile | None, filename: str | None
        ) -> tuple[str, dict[str, Any], int | None]:
            self._reuse_check(existing, "audio")
            fmt = sniff_audio_format(data)
            if fmt not in ("mp3", "m4a", "opus"):
                # Telegram only plays MP3/M4A (and Opus) as music; anything else arrives as a document.
                stored = existing or self._register_upload(data, "document", "application/octet-stream", filename)
                doc = {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size,
                }
                if filename:
                    doc["file_name"] = filename
                return "document", {"document": doc}, None
            mime = {"opus": "audio/ogg", "mp3": "audio/mpeg", "m4a": "audio/mp4"}[fmt]
            stored = existing or self._register_upload(data, "audio", mime, filename)
            duration = params.get("duration")
            if duration is None:
                duration = await self._duration_of(data, fmt)
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

        return await self._media_message(params, files, call, "audio", build)

    async def _send_document(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        async def build(
            data: bytes, existing: StoredFile | None, filename: str | None
        ) -> tuple[str, dict[str, Any], int | None]:
            self._reuse_check(existing, "document")
            stored = existing or self._register_upload(data, "document", None, filename)
            doc: dict[str, Any] = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size,
            }
            if stored.file_name:
                doc["file_name"] = stored.file_name
            return "document", {"document": doc}, None

        return await self._media_message(params, files, call, "document", build)

    async def _send_photo(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        async def build(
            data: bytes, existing: StoredFile | None, filename: str | None
        ) -> tuple[str, dict[str, Any], int | None]:
            self._reuse_check(existing, "photo")
            width = height = 0
            if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
                width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
            elif data.startswith((b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or data[8:12] == b"WEBP":
                width = height = 320
            if not (width and height):
                raise _bad("IMAGE_PROCESS_FAILED")
            stored = existing or self._register_upload(data, "photo", "image/jpeg", filename)
            size = {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size,
                "width": width,
                "height": height,
            }
            return "photo", {"photo": [size]}, None

        return await self._media_message(params, files, call, "photo", build)

    async def _send_chat_action(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        chat = self._chat(params)
        if params.get("action") not in CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        self._check_can_send(chat)
        return True

    def _editable(self, params: dict[str, Any], missing: str) -> StoredMessage:
        if params.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        if params.get("message_id") is None:
            raise _bad("message identifier is not specified")
        stored = self._messages.get((chat["id"], int(params["message_id"])))
        if stored is None or stored.deleted:
            raise _bad(missing)
        if not stored.from_bot:
            raise _bad("message can't be edited")
        return stored

    def _sent_record(self, stored: StoredMessage) -> SentMessage | None:
        for sent in self.sent:
            if sent.chat_id == stored.chat_id and sent.message_id == stored.message_id:
                return sent
        return None

    def _apply_markup(self, stored: StoredMessage, markup: dict[str, Any] | None) -> None:
        if markup is None:
            stored.payload.pop("reply_markup", None)
        else:
            stored.payload["reply_markup"] = markup

    async def _edit_message_text(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> dict[str, Any]:
        stored = self._editable(params, "message to edit not found")
        if "text" not in stored.payload:
            raise _bad("there is no text in the message to edit")
        text = params.get("text")
        if text is None or not str(text).strip():
            raise _bad("message text is empty")
        plain, entities = self._parse(str(text), params.get("parse_mode"), params.get("entities"))
        if not plain.strip():
            raise _bad("message text is empty")
        if utf16_len(plain) > MAX_TEXT:
            raise _bad("MESSAGE_TOO_LONG")
        markup = self._check_markup(params.get("reply_markup"))
        if (
            plain == stored.payload.get("text")
            and entities == stored.payload.get("entities", [])
            and markup == stored.payload.get("reply_markup")
        ):
            raise _bad(NOT_MODIFIED)
        stored.payload["text"] = plain
        if entities:
            stored.payload["entities"] = entities
        else:
            stored.payload.pop("entities", None)
        self._apply_markup(stored, markup)
        stored.payload["edit_date"] = int(time.time())
        stored.edits.append(plain)
        if (sent := self._sent_record(stored)) is not None:
            sent.edits.append(plain)
        return copy.deepcopy(stored.payload)

    async def _edit_message_caption(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> dict[str, Any]:
        stored = self._editable(params, "message to edit not found")
        if not any(key in stored.payload for key in _MEDIA_KEYS):
            raise _bad("there is no caption in the message to edit")
        caption = self._caption(params)
        markup = self._check_markup(params.get("reply_markup"))
        if (
            caption.get("caption") == stored.payload.get("caption")
            and caption.get("caption_entities") == stored.payload.get("caption_entities")
            and markup == stored.payload.get("reply_markup")
        ):
            raise _bad(NOT_MODIFIED)
        stored.payload.pop("caption", None)
        stored.payload.pop("caption_entities", None)
        stored.payload.update(caption)
        self._apply_markup(stored, markup)
        stored.payload["edit_date"] = int(time.time())
        new_caption = str(caption.get("caption", ""))
        stored.edits.append(new_caption)
        if (sent := self._sent_record(stored)) is not None:
            sent.edits.append(new_caption)
        return copy.deepcopy(stored.payload)

    async def _edit_message_reply_markup(
        self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall
    ) -> dict[str, Any]:
        stored = self._editable(params, "message to edit not found")
        markup = self._check_markup(params.get("reply_markup"))
        if markup == stored.payload.get("reply_markup"):
            raise _bad(NOT_MODIFIED)
        self._apply_markup(stored, markup)
        stored.payload["edit_date"] = int(time.time())
        return copy.deepcopy(stored.payload)

    async def _delete_message(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        chat = self._chat(params)
        if params.get("message_id") is None:
            raise _bad("message identifier is not specified")
        stored = self._messages.get((chat["id"], int(params["message_id"])))
        if stored is None or stored.deleted:
            raise _bad("message to delete not found")
        admin = self._chat_meta.get(chat["id"], {}).get("bot_is_admin")
        if not stored.from_bot and chat["type"] != "private" and not admin:
            raise _bad("message can't be deleted")
        stored.deleted = True
        if (sent := self._sent_record(stored)) is not None:
            sent.deleted = True
        return True

    async def _answer_callback_query(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        state = self._callbacks.get(query_id)
        if state is None or state["answered"]:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if utf16_len(str(params.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        state["answered"] = True
        self.callback_answers[query_id] = dict(params)
        return True

    async def _set_message_reaction(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> bool:
        chat = self._chat(params)
        stored = self._messages.get((chat["id"], int(params.get("message_id") or 0)))
        if stored is None or stored.deleted:
            raise _bad("message to react not found")
        reaction = params.get("reaction") or []
        if not isinstance(reaction, list):
            raise _bad("can't parse reaction JSON object")
        for item in reaction:
            if not isinstance(item, dict) or item.get("type") not in ("emoji", "custom_emoji", "paid"):
                raise _bad("REACTION_INVALID")
            if item["type"] == "emoji" and item.get("emoji") not in _REACTION_EMOJI:
                raise _bad("REACTION_INVALID")
        self.reactions[(chat["id"], stored.message_id)] = reaction
        return True

    async def _get_chat(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        chat = self._chat(params)
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

    async def _get_chat_member(self, params: dict[str, Any], files: dict[str, bytes], call: ApiCall) -> dict[str, Any]:
        chat = self._chat(params)
        user_id = params.get("user_id")
        if user_id is None:
            raise _bad("user_id is empty")
        if int(user_id) == self.bot_id:
            admin = self._chat_meta.get(chat["id"], {}).get("bot_is_admin")
            return {"status": "administrator" if admin else "member", "user": self.bot_user}
        user = self._users.get(int(user_id))
        if user is None or (chat["type"] == "private" and chat["id"] != user["id"]):
            raise _bad("member not found")
        status = self._member_status.get((chat["id"], int(user_id)), "member")
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = (
                "can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats "
                "can_restrict_members can_promote_members can_change_info can_invite_users can_post_stories "
                "can_edit_stories can_delete_stories"
            ).split()
            return {"status": "administrator", "user": user, **dict.fromkeys(rights, False), "can_manage_chat": True}
        return {"status": status, "user": user}

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Make a user a group's 'creator', 'administrator' or plain 'member' (what getChatMember reports)."""
        self._member_status[(chat_id, user_id)] = status
