"""FakeTelegram: the scenario façade tests and the benchmark drive.

People act (push_text, push_voice, push_callback …), the bot's traffic is recorded (calls, sent), and
waits fail with a summary of recent traffic. The state lives in state.py, the Bot API methods in api_*.py,
the HTTP side in server.py.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from ..audio import InvalidOgg, ogg_opus_duration
from . import people, webhook
from .api_profile import commands_key, visible_commands
from .records import ApiCall, SentMessage, StoredFile, StoredMessage
from .server import TelegramServer
from .state import BotIdentity
from .text import bot_command_entities
from .webhook import Delivery

__all__ = ["FakeTelegram"]


class FakeTelegram(TelegramServer):
    """Loopback Bot API. Point the app at `url` (base_url f"{url}/bot", base_file_url f"{url}/file/bot")."""

    def __init__(
        self,
        token: str = BotIdentity.token,
        bot_username: str = BotIdentity.username,
        bot_id: int = BotIdentity.id,
        can_read_all_group_messages: bool = False,
        bot_first_name: str = BotIdentity.first_name,
        local_dir: str | None = None,
    ) -> None:
        super().__init__(
            BotIdentity(token, bot_username, bot_id, bot_first_name, can_read_all_group_messages, local_dir)
        )

    # -- the bot and the addresses -----------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self.state.bot.token

    @property
    def bot_username(self) -> str:
        return self.state.bot.username

    @property
    def bot_id(self) -> int:
        return self.state.bot.id

    @property
    def bot_user(self) -> dict[str, Any]:
        return self.state.bot.user

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

    # -- the world: people, chats, files -----------------------------------------------------------------
    def user(
        self, user_id: int, first_name: str = "Ann", username: str | None = None, language_code: str | None = "en"
    ) -> dict[str, Any]:
        """A Telegram User dict for a human (remembered, so getChatMember knows them)."""
        return self.state.chats.user(user_id, first_name, username, language_code)

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
        return self.state.chats.add(
            chat_id,
            chat_type=chat_type,
            title=title,
            first_name=first_name,
            username=username,
            is_forum=is_forum,
            bot_is_admin=bot_is_admin,
        )

    def block(self, chat_id: int, blocked: bool = True) -> None:
        """Simulate the user blocking the bot: sends then fail with 403 like the real API."""
        self.state.chats.meta(chat_id)["blocked"] = blocked

    def forbid_voice(self, chat_id: int, forbidden: bool = True) -> None:
        """The user disallowed voice messages (a privacy setting): sendVoice gets VOICE_MESSAGES_FORBIDDEN."""
        self.state.chats.meta(chat_id)["no_voice"] = forbidden

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        """Make a user a group's 'creator', 'administrator' or plain 'member' (what getChatMember reports)."""
        self.state.chats.set_member_status(chat_id, user_id, status)

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
        stored = self.state.files.add(data, file_size=file_size, kind=kind, mime_type=mime_type, file_name=file_name)
        return stored.file_id, stored.file_unique_id

    def file(self, file_id: str) -> StoredFile | None:
        return self.state.files.get(file_id)

    # -- what people do -----------------------------------------------------------------------------------
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
        return people.user_message(
            self.state, chat_id, user, fields,
            chat_type=chat_type,
            reply_to=reply_to,
            message_thread_id=message_thread_id,
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
        stored = self.state.files.add(ogg, file_size=file_size, kind="voice", mime_type="audio/ogg")
        voice = {
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        fields: dict[str, Any] = {"voice": voice}
        if caption:
            fields["caption"] = caption
        return people.user_message(
            self.state, chat_id, user, fields,
            chat_type=chat_type,
            reply_to=reply_to,
            message_thread_id=message_thread_id,
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
        return people.user_message(self.state, chat_id, user, dict(fields), chat_type=chat_type, reply_to=reply_to)

    def push_callback(self, chat_id: int, user: dict[str, Any] | int, message_id: int, data: str) -> str:
        """A user presses an inline button under the bot's message `message_id`; returns the query id."""
        return people.callback_query(self.state, chat_id, user, message_id, data)

    def push_edit(self, chat_id: int, message_id: int, new_text: str) -> None:
        """A user edits one of their text messages (an edited_message update)."""
        people.edit_text(self.state, chat_id, message_id, new_text)

    def push_bot_added(
        self,
        chat_id: int,
        by: dict[str, Any] | int,
        *,
        chat_type: str = "group",
        title: str | None = None,
        as_admin: bool = False,
    ) -> int:
        """A person adds the bot to a group: the my_chat_member update (left -> member or administrator)
        and the service message naming the bot in new_chat_members, as Telegram sends both. Returns the
        service message's id."""
        self.state.chats.add(chat_id, chat_type=chat_type, title=title, bot_is_admin=as_admin)
        people.bot_membership(self.state, chat_id, by, "left", "administrator" if as_admin else "member")
        fields = {"new_chat_members": [self.state.bot.user]}
        return people.user_message(self.state, chat_id, by, fields, chat_type=chat_type, reply_to=None)

    def push_bot_status(self, chat_id: int, by: dict[str, Any] | int, old: str, new: str) -> int:
        """Any other change of the bot's own status in a known chat (made administrator, removed: "left",
        blocked in a private chat: "kicked", unblocked: "member"): a my_chat_member update. Sends to a
        chat the bot left or was kicked from then fail with 403, as they do in Telegram."""
        return people.bot_membership(self.state, chat_id, by, old, new)

    def open_link(self, user: dict[str, Any] | int, url: str, *, group_id: int | None = None) -> int:
        """A person opens a t.me deep link to the bot: ?start=X sends "/start X" in their private chat;
        ?startgroup=X (with the group they pick) adds the bot there and sends "/start@bot X". Returns the
        message id."""
        kind, payload = people.start_payload(self.state, url)
        person = self.state.chats.as_user(user)
        if kind == "start":
            return self.push_text(int(person["id"]), person, f"/start {payload}")
        if group_id is None:
            raise AssertionError("a startgroup link needs the group the person picks (group_id)")
        if group_id not in self.state.chats.chats:
            self.push_bot_added(group_id, person)
        return self.push_text(group_id, person, f"/start@{self.state.bot.username} {payload}", chat_type="group")

    def push_raw_update(self, update: dict[str, Any]) -> int:
        """Queue an arbitrary update (update_id assigned if missing); returns its update_id."""
        return self.state.updates.enqueue(copy.deepcopy(update))

    # -- what the bot did ---------------------------------------------------------------------------------
    @property
    def sent(self) -> list[SentMessage]:
        return self.state.messages.sent

    @property
    def downloads(self) -> list[str]:
        return self.state.files.downloads

    @property
    def dropped_updates(self) -> list[tuple[dict[str, Any], str]]:
        """Updates Telegram would not deliver (privacy mode, allowed_updates), with the reason."""
        return self.state.updates.dropped

    @property
    def callback_answers(self) -> dict[str, dict[str, Any]]:
        return self.state.callback_answers

    @property
    def reactions(self) -> dict[tuple[int, int], list[dict[str, Any]]]:
        return self.state.reactions

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def calls_of(self, method: str) -> list[ApiCall]:
        wanted = method.lower()
        return [c for c in self.calls if c.method.lower() == wanted]

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        """Current state of a message (edits applied, deleted flag), whoever sent it."""
        return self.state.messages.get(chat_id, message_id)

    def commands(self, scope: dict[str, Any] | None = None, language_code: str = "") -> list[dict[str, str]]:
        """The bot's command list as set with setMyCommands for exactly that scope and language."""
        return list(self.state.profile.commands.get(commands_key(scope, language_code), []))

    def menu(self, chat_id: int, user: dict[str, Any] | int, language_code: str | None = None) -> list[str]:
        """The commands the person sees in the chat's menu, resolved as Telegram resolves scopes and
        languages (language: the person's own unless given)."""
        person = self.state.chats.as_user(user)
        language = person.get("language_code", "") if language_code is None else language_code
        found = visible_commands(self.state, chat_id, int(person["id"]), str(language or "")[:2])
        return [c["command"] for c in found]

    def profile_text(self, key: str, language_code: str = "") -> str | None:
        """The bot's "name", "description" or "short_description" as set for exactly that language."""
        return self.state.profile.texts.get((key, language_code))

    # -- updates and the webhook --------------------------------------------------------------------------
    @property
    def pending_updates(self) -> int:
        """Updates not yet confirmed by the bot (getWebhookInfo's pending_update_count)."""
        return len(self.state.updates.pending)

    @property
    def updates_confirmed(self) -> int:
        """How many updates the bot confirmed with a later getUpdates offset."""
        return self.state.updates.confirmed

    @property
    def webhook_url(self) -> str:
        return str(self.state.webhook.get("url", ""))

    @property
    def webhook(self) -> dict[str, Any]:
        """The webhook as set with setWebhook (url, secret_token, allowed_updates …); url is "" when none."""
        return dict(self.state.webhook)

    async def post_updates(
        self, *addresses: str, copies: int = 1, secret: str | None = None
    ) -> list[Delivery]:
        """POST every pending update to the webhook at once, each `copies` times, spread over `addresses`
        (processes behind one balancer), as Telegram's redeliveries do; see webhook.deliver_concurrently."""
        return await webhook.deliver_concurrently(self.state, list(addresses), copies=copies, secret=secret)

    async def deliver_to_webhook(self, address: str) -> list[int]:
        """POST every pending update to the webhook, as Telegram does (see webhook.py). `address` (e.g.
        http://127.0.0.1:8080) stands in for the HTTPS front end the webhook URL names. Returns the HTTP
        statuses, in order."""
        return await webhook.deliver(self.state, address)

    # -- waiting ------------------------------------------------------------------------------------------
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
        await self.wait_for(lambda: not self.state.updates.pending, timeout, what="all updates to be confirmed")

    def describe(self, last: int = 20) -> str:
        """A readable summary of recent traffic, for assertion messages."""
        pending = len(self.state.updates.pending)
        lines = [f"FakeTelegram: {len(self.calls)} calls, {len(self.sent)} sent, {pending} pending updates"]
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
