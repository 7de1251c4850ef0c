"""What the Telegram stand-in records: the bot's calls, the messages it sent, and its view of messages and files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ApiCall", "SentMessage", "StoredFile", "StoredMessage"]


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
