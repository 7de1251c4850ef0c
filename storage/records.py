"""The records the rest of Parley hands to storage or gets back, shared by several table modules.

Records only one table module deals in (a job row, a group message, a ledger total) live in that module.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one model call, as the API reports it."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_audio_tokens: int = 0
    completion_audio_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class NewTurn:
    chat_id: int
    user_id: int
    role: str  # "user" | "assistant"
    kind: str  # "text" | "voice"
    text: str
    message_id: int | None = None
    audio_seconds: float | None = None
    usage: Usage | None = None
    thread_id: int = 0  # a forum topic has its own conversation
    tool_calls: str | None = None  # JSON: the tools a reply called, with their arguments and results


@dataclass(frozen=True, slots=True)
class StoredTurn:
    id: int
    conversation_id: int
    role: str
    kind: str
    text: str
    message_id: int | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Preferences:
    """A user's persisted choices, each None until chosen (the caller applies its defaults and checks that a
    stored choice is still offered). A new preference is a field here plus a column in a migration."""

    voice: str | None = None
    model: str | None = None
    reply_mode: str | None = None
    language: str | None = None  # the locale chosen with /language (e.g. 'pt_BR')
    timezone: str | None = None  # an IANA name, set by the person (/timezone, or told in conversation)
    persona: str | None = None  # a built-in persona's key, or 'custom' (then persona_text applies)
    persona_text: str | None = None  # the person's own instructions (kept when they pick a built-in)


PREFERENCE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Preferences))


@dataclass(frozen=True, slots=True)
class ForgetReport:
    turns: int
    conversations: int
    user_rows: int
