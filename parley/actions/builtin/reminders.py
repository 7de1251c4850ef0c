"""Reminders: create, list and cancel the caller's own, in their timezone.

The tool's result states exactly what was scheduled, so the spoken confirmation repeats it instead of
promising what the model assumed. Without a known timezone nothing is scheduled and the result says
so: the model asks, it never guesses. There is no argument naming whom a reminder is for: it is
always the person who asked, in the chat they asked in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from parley.actions.base import ReminderBook, ReminderView, Tool, ToolContext, ToolError, tool
from parley.actions.builtin.clock import NO_TIMEZONE
from parley.actions.recurrence import REPEATS, describe, next_due, spoken_time

MAX_PENDING = 50
"""Pending reminders a person may have in one chat."""
TEXT_MAX_CHARS = 300
LIST_MAX = 20


def _book(context: ToolContext) -> ReminderBook:
    if context.reminders is None:
        raise ToolError("reminders are not available here")
    return context.reminders


def _summary(reminder: ReminderView) -> dict[str, object]:
    first = datetime.fromisoformat(reminder.first)
    return {
        "id": reminder.id,
        "text": reminder.text,
        "next": spoken_time(reminder.local()),
        "repeats": describe(first, reminder.repeat),
        "timezone": reminder.zone,
    }


@tool(
    name="create_reminder",
    parameters={
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": TEXT_MAX_CHARS,
                "description": "What to remind the person of, in their words (e.g. 'call mum').",
            },
            "date": {
                "type": "string",
                "pattern": r"^\d{4}-\d{2}-\d{2}$",
                "description": "Local date YYYY-MM-DD in the person's timezone (the first one, if it repeats).",
            },
            "time": {
                "type": "string",
                "pattern": r"^([01]\d|2[0-3]):[0-5]\d$",
                "description": "Local time HH:MM, 24-hour clock, in the person's timezone.",
            },
            "in_minutes": {
                "type": "integer",
                "minimum": 1,
                "maximum": 525600,
                "description": "Instead of date and time: this many minutes from now ('in twenty minutes').",
            },
            "repeat": {
                "type": "string",
                "enum": list(REPEATS),
                "description": "none (default), daily, weekdays (Monday to Friday), weekly (same weekday as "
                "the first date) or monthly (same day of the month).",
            },
        },
        "required": ["text"],
        "additionalProperties": False,
    },
)
async def create_reminder(
    context: ToolContext,
    text: str,
    date: str | None = None,
    time: str | None = None,
    in_minutes: int | None = None,
    repeat: str = "none",
) -> dict[str, object]:
    """Schedule a reminder for the person who is speaking, sent to them as a voice message at that time.
    Give either date and time (their local time; call current_time first if you do not know today's date)
    or in_minutes. Tell the person exactly what the result says was scheduled."""
    zone = context.zone()
    if zone is None:
        raise ToolError(NO_TIMEZONE)
    if (in_minutes is None) == (date is None or time is None):
        raise ToolError("give either both date and time, or in_minutes")
    if in_minutes is not None:
        first = datetime.fromtimestamp(context.now, zone).replace(second=0, microsecond=0, tzinfo=None)
        first += timedelta(minutes=in_minutes)
    else:
        try:
            first = datetime.fromisoformat(f"{date}T{time}")
        except ValueError as exc:
            raise ToolError(f"{date} {time} is not a real date and time") from exc
    due = next_due(first, zone, repeat, context.now)
    if due is None:
        raise ToolError(
            f"{spoken_time(first)} has already passed in {context.timezone}; nothing was scheduled. "
            "Ask the person for a time in the future."
        )
    book = _book(context)
    if len(await book.pending(MAX_PENDING)) >= MAX_PENDING:
        raise ToolError(f"the person already has {MAX_PENDING} reminders here; nothing was scheduled")
    created = await book.create(
        " ".join(text.split()), first=first.isoformat(timespec="minutes"), zone=str(context.timezone),
        repeat=repeat, due_at=due,
    )  # fmt: skip
    return {"scheduled": True, **_summary(created)}


@tool(name="list_reminders", parameters={"type": "object", "properties": {}, "additionalProperties": False})
async def list_reminders(context: ToolContext) -> dict[str, object]:
    """The person's pending reminders in this chat, soonest first, with their ids."""
    pending = await _book(context).pending(LIST_MAX)
    return {"reminders": [_summary(r) for r in pending], "count": len(pending)}


@tool(
    name="cancel_reminder",
    parameters={
        "type": "object",
        "properties": {"id": {"type": "integer", "minimum": 1, "description": "The id from list_reminders."}},
        "required": ["id"],
        "additionalProperties": False,
    },
)
async def cancel_reminder(context: ToolContext, id: int) -> dict[str, object]:
    """Cancel one of the person's reminders (a repeating one stops for good). List them first for the id."""
    cancelled = await _book(context).cancel(id)
    if cancelled is None:
        raise ToolError(f"the person has no pending reminder {id} in this chat; nothing was cancelled")
    return {"cancelled": True, **_summary(cancelled)}


TOOLS: list[Tool] = [create_reminder, list_reminders, cancel_reminder]
