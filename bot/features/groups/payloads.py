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
