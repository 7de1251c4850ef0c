"""What a tool is, and what it may reach when it runs.

A tool is a name, a description, a JSON schema for its arguments and an async function. The model sees the
first three; the function runs with the arguments the model chose (validated against the schema first)
and a `ToolContext`. The context is the tool's only door to Parley's data, and it is cut to the person and
chat the call was made for: a tool can read and change that person's reminders and, in a group, that
group's log, and nothing else. Settings and secrets are not in it; a plugin that needs a key of its own
reads it from its own environment variable, never from the arguments the model writes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What the Chat Completions API accepts as a function name."""

DESCRIPTION_MAX_CHARS = 1024


class ToolError(Exception):
    """A tool's own refusal, in a sentence the model can pass on ("I don't know your timezone yet").

    Raise it for anything the person can act on; any other exception is a bug, logged, and the model is
    told only that the tool failed."""


@dataclass(frozen=True, slots=True)
class ReminderView:
    """A reminder as a tool sees it: local wall time in the person's zone, never a bare timestamp."""

    id: int
    text: str
    due_at: float
    """The next time it fires (epoch seconds)."""
    zone: str
    repeat: str  # "none" | "daily" | "weekdays" | "weekly" | "monthly"
    first: str
    """The first occurrence as local wall time, ISO `YYYY-MM-DDTHH:MM`: what repeats keep to."""

    def local(self) -> datetime:
        return datetime.fromtimestamp(self.due_at, ZoneInfo(self.zone))


class ReminderBook(Protocol):
    """The caller's reminders (created in, and fired into, the chat the call came from). Built for one
    person: there is no way to name anyone else."""

    async def create(self, text: str, *, first: str, zone: str, repeat: str, due_at: float) -> ReminderView: ...

    async def pending(self, limit: int) -> list[ReminderView]: ...

    async def cancel(self, reminder_id: int) -> ReminderView | None: ...


@dataclass(frozen=True, slots=True)
class LogLine:
    """One message of a group's log, with what a link to it needs."""

    message_id: int
    author: str
    text: str
    sent_at: float
    link: str | None = None


class GroupLog(Protocol):
    """One group's log, as the bot recorded it (bots cannot fetch a chat's history)."""

    async def search(self, query: str, limit: int) -> list[LogLine]: ...

    async def read(self, around_message_id: int, before: int, after: int) -> list[LogLine]: ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a call is for, and the data it may reach: that person's, in that chat."""

    user_id: int
    chat_id: int
    now: float
    timezone: str | None
    """The person's IANA zone (/timezone), None when they have not said: never guessed."""
    is_admin: bool = False
    in_group: bool = False
    language: str | None = None
    reminders: ReminderBook | None = None
    group_log: GroupLog | None = None
    """Only when the call was made in a group: that group's log."""
    set_timezone: Callable[[str], Awaitable[None]] | None = None
    """Records the caller's own timezone (an IANA name already checked)."""

    def zone(self) -> ZoneInfo | None:
        return ZoneInfo(self.timezone) if self.timezone else None


ToolFunction = Callable[..., Awaitable[Any]]
"""`async def f(context: ToolContext, **arguments) -> str | dict | list`."""


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]
    function: ToolFunction = field(repr=False)
    admin_only: bool = False
    timeout: float | None = None
    """Seconds; may only shorten PARLEY_TOOL_TIMEOUT_SECONDS, never lengthen it."""
    where: str = "any"
    """"any", "group" (needs a group's log) or "private"."""

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise ValueError(f"tool name {self.name!r}: letters, digits, _ and - only, at most 64")
        if not self.description.strip() or len(self.description) > DESCRIPTION_MAX_CHARS:
            raise ValueError(f"tool {self.name}: a description of 1 to {DESCRIPTION_MAX_CHARS} characters is required")
        if self.where not in ("any", "group", "private"):
            raise ValueError(f"tool {self.name}: where must be any, group or private")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"tool {self.name}: timeout must be positive")

    def offered_to(self, context: ToolContext) -> bool:
        if self.admin_only and not context.is_admin:
            return False
        return self.where == "any" or (self.where == "group") == context.in_group

    def declaration(self) -> dict[str, Any]:
        """The tool as the Chat Completions API takes it in `tools`."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)},
        }


def tool(
    *,
    parameters: Mapping[str, Any],
    name: str | None = None,
    description: str | None = None,
    admin_only: bool = False,
    timeout: float | None = None,
    where: str = "any",
) -> Callable[[ToolFunction], Tool]:
    """Make an async function a Tool; its name and docstring are the defaults for name and description."""

    def wrap(function: ToolFunction) -> Tool:
        return Tool(
            name=name or function.__name__,
            description=description or " ".join((function.__doc__ or "").split()),
            parameters=parameters,
            function=function,
            admin_only=admin_only,
            timeout=timeout,
            where=where,
        )

    return wrap
