"""A group's memory as the edge shows it: links to logged messages (t.me/c/… in supergroups, with the topic
in forums) and the group log as the model's tools read it (parley.actions.GroupLog), searched with the same
full-text index as /find. Shared by the features that point at a group's messages."""

from __future__ import annotations

from parley.actions import LogLine
from storage.groups import GroupMessage, GroupStore


def internal_id(chat_id: int) -> int | None:
    """The id in t.me/c/ links: a supergroup's -100… id without the prefix. Basic groups have no links."""
    return -chat_id - 10**12 if chat_id < -(10**12) else None


def message_link(chat_id: int, message_id: int, thread_id: int | None = None) -> str | None:
    internal = internal_id(chat_id)
    if internal is None:
        return None
    if thread_id:
        return f"https://t.me/c/{internal}/{thread_id}/{message_id}"
    return f"https://t.me/c/{internal}/{message_id}"


class GroupMemory:
    """One group's log for the model's tools: search it, read around a message."""

    def __init__(self, groups: GroupStore, chat_id: int) -> None:
        self.groups = groups
        self.chat_id = chat_id

    async def search(self, query: str, limit: int) -> list[LogLine]:
        found, _ = await self.groups.find(self.chat_id, query, limit=limit)
        return [self._line(m) for m in found]

    async def read(self, around_message_id: int, before: int, after: int) -> list[LogLine]:
        return [self._line(m) for m in await self.groups.around(self.chat_id, around_message_id, before, after)]

    def _line(self, message: GroupMessage) -> LogLine:
        text = message.text or f"[{message.kind.replace('_', ' ')}]"
        link = message_link(self.chat_id, message.message_id, message.thread_id)
        return LogLine(message.message_id, message.author, text, message.sent_at, link)
