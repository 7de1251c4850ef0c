"""What the Telegram stand-in knows: the bot, chats and users, messages, files, the update queue, the profile.

Each part is a small store with the operations the Bot API methods and the scenario façade share; the
methods (api_*.py) and the façade (fake.py) hold no state of their own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..server import ChangeSignal
from .errors import TelegramAPIError, bad
from .records import SentMessage, StoredFile, StoredMessage

__all__ = ["BotIdentity", "BotProfile", "Chats", "Files", "Messages", "TelegramState", "UpdateQueue"]

_ADMIN_RIGHTS = (
    "can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats can_restrict_members "
    "can_promote_members can_change_info can_invite_users can_post_stories can_edit_stories can_delete_stories"
).split()
# Update types Telegram leaves out unless they are asked for explicitly in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass(frozen=True)
class BotIdentity:
    """The bot as getMe describes it, plus how the server was started."""

    token: str = "123456:TEST-lab-token-abcdefghijklmnopqrstuvw"
    username: str = "parley_test_bot"
    id: int = 7000001
    first_name: str = "Parley Test"
    can_read_all_group_messages: bool = False
    local_dir: str | None = None
    """Like a Bot API server run with --local: files up to 2 GB, handed over as absolute paths in this folder
    (the bot reads them from disk) instead of by download."""

    @property
    def user(self) -> dict[str, Any]:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


class UpdateQueue:
    """Updates waiting for the bot, in order, filtered by allowed_updates as Telegram filters them."""

    def __init__(self, signal: ChangeSignal) -> None:
        self._signal = signal
        self.pending: list[dict[str, Any]] = []
        self.dropped: list[tuple[dict[str, Any], str]] = []
        self.allowed: list[str] | None = None
        self.confirmed = 0
        self.poll_seq = 0
        self._next_id = 500_000_001

    def enqueue(self, update: dict[str, Any]) -> int:
        """Queue an update (update_id assigned when missing); returns its update_id."""
        if "update_id" not in update:
            update["update_id"] = self._next_id
            self._next_id += 1
        else:
            self._next_id = max(self._next_id, int(update["update_id"]) + 1)
        kinds = [k for k in update if k != "update_id"]
        kind = kinds[0] if kinds else ""
        allowed = self.allowed
        if (allowed and kind not in allowed) or (not allowed and kind in OPT_IN_UPDATES):
            self.dropped.append((update, f"{kind} not in allowed_updates {allowed}"))
        else:
            self.pending.append(update)
        self._signal.notify()
        return int(update["update_id"])

    def drop(self, update: dict[str, Any], reason: str) -> None:
        """An update Telegram would never deliver (privacy mode, say), kept for assertions."""
        self.dropped.append((update, reason))
        self._signal.notify()

    def confirm(self, offset: int | None) -> None:
        """getUpdates' offset: forget everything before it (negative: keep only the last -offset)."""
        if offset is None:
            return
        before = len(self.pending)
        if offset < 0:
            self.pending = self.pending[offset:] if -offset < before else self.pending
        else:
            self.pending = [u for u in self.pending if int(u["update_id"]) >= offset]
        self.confirmed += before - len(self.pending)

    def confirm_one(self, update: dict[str, Any]) -> None:
        """A webhook answered 2xx for this update."""
        if update in self.pending:
            self.pending.remove(update)
            self.confirmed += 1

    def set_allowed(self, params: dict[str, Any]) -> None:
        if "allowed_updates" in params and isinstance(params["allowed_updates"], list):
            self.allowed = [str(x) for x in params["allowed_updates"]]


class Chats:
    """Chats and users the server knows, with per-chat settings (blocked, voice forbidden, bot is admin)."""

    def __init__(self) -> None:
        self.chats: dict[int, dict[str, Any]] = {}
        self.users: dict[int, dict[str, Any]] = {}
        self._meta: dict[int, dict[str, Any]] = {}
        self._member_status: dict[tuple[int, int], str] = {}

    def user(
        self, user_id: int, first_name: str = "Ann", username: str | None = None, language_code: str | None = "en"
    ) -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        return user

    def as_user(self, user: dict[str, Any] | int) -> dict[str, Any]:
        if isinstance(user, int):
            return self.users.get(user) or self.user(user)
        self.users[int(user["id"])] = user
        return user

    def add(
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
        if chat_id in self.chats:
            return self.chats[chat_id]
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or f"Lab {chat_type} {chat_id}"
        if username:
            chat["username"] = username
        if is_forum and chat_type == "supergroup":
            chat["is_forum"] = True
        self.chats[chat_id] = chat
        # Keep settings made before the chat was known (block(), forbid_voice()).
        self.meta(chat_id)["bot_is_admin"] = bot_is_admin
        return chat

    def meta(self, chat_id: int) -> dict[str, Any]:
        return self._meta.setdefault(chat_id, {"blocked": False, "bot_is_admin": False})

    def bot_is_admin(self, chat_id: int) -> bool:
        return bool(self._meta.get(chat_id, {}).get("bot_is_admin"))

    def find(self, params: dict[str, Any]) -> dict[str, Any]:
        """The chat a request names by chat_id (a number, or @username for public groups and channels)."""
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad("chat_id is empty")
        if isinstance(chat_id, str):
            name = chat_id.lstrip("@").lower()
            for chat in self.chats.values():
                if str(chat.get("username", "")).lower() == name and chat["type"] != "private":
                    return chat
            raise bad("chat not found")
        found = self.chats.get(int(chat_id))
        if found is None:
            raise bad("chat not found")
        return found

    def check_can_send(self, chat: dict[str, Any]) -> None:
        if self._meta.get(chat["id"], {}).get("blocked"):
            if chat["type"] == "private":
                raise TelegramAPIError(403, "Forbidden: bot was blocked by the user")
            raise TelegramAPIError(403, "Forbidden: bot was kicked from the group chat")

    def member(self, chat_id: int, user: dict[str, Any], status: str | None = None) -> dict[str, Any]:
        """A ChatMember object as Telegram shapes it for each status (administrators list their rights)."""
        status = status or self.member_status(chat_id, int(user["id"]))
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = dict.fromkeys(_ADMIN_RIGHTS, False)
            return {"status": "administrator", "user": user, **rights, "can_manage_chat": True}
        if status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        return {"status": status, "user": user}

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        self._member_status[(chat_id, user_id)] = status

    def member_status(self, chat_id: int, user_id: int) -> str:
        return self._member_status.get((chat_id, user_id), "member")


class Files:
    """Files by file_id, and by file_path once getFile handed one out."""

    def __init__(self) -> None:
        self.by_id: dict[str, StoredFile] = {}
        self.paths: dict[str, str] = {}
        self.downloads: list[str] = []
        self._seq = 0

    def add(
        self,
        data: bytes,
        *,
        file_size: int | None = None,
        kind: str = "voice",
        mime_type: str | None = None,
        file_name: str | None = None,
    ) -> StoredFile:
        self._seq += 1
        prefix = {"voice": "AwACAgIAAxkBAAI", "audio": "CQACAgIAAxkBAAI", "photo": "AgACAgIAAxkBAAI"}.get(
            kind, "BQACAgIAAxkBAAI"
        )
        file_id = f"{prefix}{self._seq:05d}{secrets.token_urlsafe(24)}"
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=f"AgAD{secrets.token_urlsafe(8)}",
            data=data,
            file_size=len(data) if file_size is None else file_size,
            kind=kind,
            mime_type=mime_type,
            file_name=file_name,
        )
        self.by_id[file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        return self.by_id.get(file_id)

    def input_file(
        self, params: dict[str, Any], files: dict[str, bytes], names: dict[str, str], name: str
    ) -> tuple[bytes, StoredFile | None, str | None]:
        """The bytes for a file parameter: a multipart upload, attach://part, or a known file_id."""
        value = params.get(name)
        if name in files:
            return files[name], None, names.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://") :]
            if part not in files:
                raise bad(f'wrong HTTP URL specified: can\'t find attached file "{part}"')
            return files[part], None, names.get(part)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            raise bad("failed to get HTTP URL content")
        if isinstance(value, str) and value:
            stored = self.by_id.get(value)
            if stored is None:
                raise bad("wrong file identifier/HTTP URL specified")
            return stored.data, stored, stored.file_name
        raise bad(f"there is no {name} in the request")


class Messages:
    """Every message in every chat (users' and the bot's), and what the bot sent, for assertions."""

    def __init__(self) -> None:
        self.stored: dict[tuple[int, int], StoredMessage] = {}
        self.sent: list[SentMessage] = []
        self._next_mid: dict[int, int] = {}

    def next_id(self, chat_id: int) -> int:
        mid = self._next_mid.get(chat_id, 0) + 1
        self._next_mid[chat_id] = mid
        return mid

    def get(self, chat_id: int, message_id: int) -> StoredMessage | None:
        return self.stored.get((chat_id, message_id))

    def store(self, message: dict[str, Any], from_bot: bool) -> StoredMessage:
        chat_id, message_id = int(message["chat"]["id"]), int(message["message_id"])
        stored = StoredMessage(chat_id, message_id, message, from_bot=from_bot)
        self.stored[(chat_id, message_id)] = stored
        return stored

    def sent_record(self, stored: StoredMessage) -> SentMessage | None:
        for sent in self.sent:
            if sent.chat_id == stored.chat_id and sent.message_id == stored.message_id:
                return sent
        return None

    def record_sent(
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
        markup = params.get("reply_markup")
        self.sent.append(
            SentMessage(
                message_id=message["message_id"],
                chat_id=message["chat"]["id"],
                kind=kind,
                text=message.get("text"),
                caption=message.get("caption"),
                reply_to_message_id=reply["message_id"] if reply else None,
                reply_markup=markup if isinstance(markup, dict) else None,
                parse_mode=params.get("parse_mode"),
                data=data,
                duration=duration,
                message_thread_id=params.get("message_thread_id"),
                file_id=file_id,
                entities=list(message.get("entities") or message.get("caption_entities") or []),
                at=time.monotonic(),
            )
        )


@dataclass
class BotProfile:
    """setMyCommands / setMyName / setMyDescription / setChatMenuButton, per scope and language."""

    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)
    texts: dict[tuple[str, str], str] = field(default_factory=dict)
    menu_buttons: dict[int | None, dict[str, Any]] = field(default_factory=dict)


class TelegramState:
    """Everything the stand-in knows, shared by the Bot API methods and the scenario façade."""

    def __init__(self, bot: BotIdentity, signal: ChangeSignal) -> None:
        self.bot = bot
        self.signal = signal
        self.updates = UpdateQueue(signal)
        self.chats = Chats()
        self.files = Files()
        self.messages = Messages()
        self.profile = BotProfile()
        self.webhook: dict[str, Any] = {"url": ""}
        self.callbacks: dict[str, dict[str, Any]] = {}
        """Pending callback queries by id: answered or not, and when they were pushed."""
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self.reactions: dict[tuple[int, int], list[dict[str, Any]]] = {}
