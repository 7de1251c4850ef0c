"""Links to a group's messages (t.me/c/… in supergroups, with the topic in forums): shared by the features that
point at them (citations, /find, reminders) and handed to the model's group-memory tools."""

from __future__ import annotations


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
