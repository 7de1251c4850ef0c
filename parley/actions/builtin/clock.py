"""The current date and time where the person is, and setting where that is."""

from __future__ import annotations

from datetime import datetime

from parley.actions.base import Tool, ToolContext, ToolError, tool
from parley.actions.zones import find_zone, local_now

NO_TIMEZONE = (
    "The person's timezone is not known. Ask them which city or timezone they are in (then call set_timezone, "
    "or they can use /timezone); do not guess."
)


@tool(parameters={"type": "object", "properties": {}, "additionalProperties": False}, name="current_time")
async def current_time(context: ToolContext) -> dict[str, str]:
    """The current date, time and weekday in the person's own timezone."""
    zone = context.zone()
    if zone is None:
        raise ToolError(NO_TIMEZONE)
    now = datetime.fromtimestamp(context.now, zone)
    return {
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M"),
        "weekday": now.strftime("%A"),
        "timezone": context.timezone or "",
        "utc_offset": now.strftime("%z"),
    }


@tool(
    name="set_timezone",
    parameters={
        "type": "object",
        "properties": {
            "zone": {
                "type": "string",
                "minLength": 1,
                "maxLength": 64,
                "description": "An IANA timezone such as Europe/Berlin or America/New_York (or a city in its name).",
            }
        },
        "required": ["zone"],
        "additionalProperties": False,
    },
)
async def set_timezone(context: ToolContext, zone: str) -> dict[str, str]:
    """Remember the person's timezone, once they have said where they are. Only when they said it: never
    from a guess (language, names or anything else)."""
    found = find_zone(zone)
    if found is None:
        raise ToolError(f"{zone!r} is not a timezone; ask for their city, or a name like Europe/Berlin")
    if context.set_timezone is None:
        raise ToolError("the timezone cannot be set here")
    await context.set_timezone(found)
    return {"timezone": found, "local_time": local_now(found, context.now)}


TOOLS: list[Tool] = [current_time, set_timezone]
