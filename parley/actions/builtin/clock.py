"""The current date and time where the person is."""

from __future__ import annotations

from datetime import datetime

from parley.actions.base import ToolContext, ToolError, tool

NO_TIMEZONE = (
    "The person's timezone is not known. Ask them which city or timezone they are in (they can also set it "
    "with /timezone); do not guess."
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
