"""The ToolContext of one turn: the caller's own reminders and timezone and, in a group, that group's log.

Every door here is bound to the (person, chat) the turn belongs to when it is made, so a tool cannot name
anyone else: a message in a group schedules, lists and cancels only its sender's reminders in that group.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from parley.actions.base import LogLine, ReminderView, ToolContext
from storage import Storage
from storage.groups import GroupMessage
from storage.reminders import Reminder, ReminderStore

Link = Callable[[int, int, int | None], str | None]
"""A link to a message of a chat (chat id, message id, forum topic), where the chat has them."""


def view(reminder: Reminder) -> ReminderView:
    return ReminderView(
        id=reminder.id, text=reminder.text, due_at=reminder.due_at, zone=reminder.zone, repeat=reminder.repeat,
        first=reminder.first,
    )  # fmt: skip


class OwnReminders:
    """One person's reminders in one chat."""

    def __init__(
        self, store: ReminderStore, *, user_id: int, chat_id: int, thread_id: int, changed: Callable[[], None]
    ) -> None:
        self._store = store
        self._user_id, self._chat_id, self._thread_id = user_id, chat_id, thread_id
        self._changed = changed

    async def create(self, text: str, *, first: str, zone: str, repeat: str, due_at: float) -> ReminderView:
        created = await self._store.add(
            user_id=self._user_id, chat_id=self._chat_id, thread_id=self._thread_id, text=text, first=first,
            zone=zone, repeat=repeat, due_at=due_at,
        )  # fmt: skip
        self._changed()
        return view(created)

    async def pending(self, limit: int) -> list[ReminderView]:
        return [view(r) for r in await self._store.pending(self._user_id, self._chat_id, limit)]

    async def cancel(self, reminder_id: int) -> ReminderView | None:
        cancelled = await self._store.cancel(reminder_id, user_id=self._user_id, chat_id=self._chat_id)
        if cancelled is not None:
            self._changed()
        return view(cancelled) if cancelled else None


class OwnGroupLog:
    """One group's log, as recorded, searched with the full-text index /find uses (case and accents folded,
    Chinese and Japanese by their characters; SQLite FTS5 or PostgreSQL's tsvector)."""

    def __init__(self, storage: Storage, chat_id: int, link: Link) -> None:
        self._storage = storage
        self._chat_id = chat_id
        self._link = link

    def _line(self, message: GroupMessage) -> LogLine:
        return LogLine(
            message_id=message.message_id, author=message.author,
            text=message.text or f"[{message.kind.replace('_', ' ')}]", sent_at=message.sent_at,
            link=self._link(self._chat_id, message.message_id, message.thread_id),
        )  # fmt: skip

    async def search(self, query: str, limit: int) -> list[LogLine]:
        found, _ = await self._storage.groups.find(self._chat_id, query, limit=limit)
        return [self._line(m) for m in found]

    async def read(self, around_message_id: int, before: int, after: int) -> list[LogLine]:
        found = await self._storage.groups.around(self._chat_id, around_message_id, before=before, after=after)
        return [self._line(m) for m in found]


class CallerScope:
    def __init__(
        self,
        storage: Storage,
        *,
        is_admin: Callable[[int], bool],
        link: Link = lambda _chat, _message, _thread: None,
        reminders_changed: Callable[[], None] = lambda: None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.is_admin = is_admin
        self.link = link
        self.reminders_changed = reminders_changed
        self.now = now

    async def context(self, *, chat_id: int, user_id: int, thread_id: int = 0) -> ToolContext:
        preferences = await self.storage.users.preferences(user_id)
        in_group = chat_id < 0  # Telegram's group and supergroup ids are negative; a private chat's is the user's
        return ToolContext(
            user_id=user_id,
            chat_id=chat_id,
            now=self.now(),
            timezone=preferences.timezone,
            is_admin=self.is_admin(user_id),
            in_group=in_group,
            reminders=OwnReminders(
                self.storage.reminders,
                user_id=user_id,
                chat_id=chat_id,
                thread_id=thread_id,
                changed=lambda: self.reminders_changed(),  # looked up when called: the scheduler sets it later
            ),
            group_log=OwnGroupLog(self.storage, chat_id, self.link) if in_group else None,
            set_timezone=partial(self._set_timezone, user_id),
        )

    async def _set_timezone(self, user_id: int, zone: str) -> None:
        await self.storage.users.update_preferences(user_id, timezone=zone)
