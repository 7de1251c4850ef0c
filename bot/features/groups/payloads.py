"""The groups feature's jobs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.jobs import Payload


@dataclass(frozen=True, slots=True)
class Summarize(Payload, kind="summary"):
    span: str = ""  # as typed after /summary: '', '3h', '200', 'today'…
    user_id: int | None = None  # who pays; None: a scheduled digest, the bot's own spending
    message_id: int | None = None
    thread_id: int | None = None
    digest: bool = False
    timezone: str | None = None  # None: PARLEY_TIMEZONE


@dataclass(frozen=True, slots=True)
class SetDigest(Payload, kind="digest"):
    user_id: int
    args: list[str] = field(default_factory=list)  # HH:MM [timezone], or off
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class TranscribeLog(Payload, kind="transcribe_log"):
    message: dict[str, Any]  # the group's voice note, audio or video note, as it came


@dataclass(frozen=True, slots=True)
class Find(Payload, kind="find"):
    words: str  # as typed after /find
    message_id: int | None = None
    thread_id: int | None = None


@dataclass(frozen=True, slots=True)
class ImportHistory(Payload, kind="import_history"):
    user_id: int  # who asked: must be an admin of the group
    file_id: str = ""  # empty: no export came with the command
    file_size: int | None = None
    file_name: str | None = None
    group_id: int = 0  # asked in the group: that group (the job runs where it was asked)
    group: str = ""  # asked in private: the group as named, -100… or @username
    message_id: int | None = None


@dataclass(frozen=True, slots=True)
class AskSummary(Payload, kind="ask_summary"):
    summary_message_id: int  # the summary (or digest) message the question replies to
    user_id: int
    text: str | None = None  # a typed question
    voice: dict[str, Any] | None = None  # a spoken one: the message, transcribed by the job
    message_id: int | None = None
    thread_id: int | None = None
