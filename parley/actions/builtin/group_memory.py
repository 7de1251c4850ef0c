"""The group's memory: search what was said in this group, and read a stretch of it.

Offered only in a group, and only that group's log is reachable. Each line carries its message id and,
where the chat has them, a link, so an answer can point at the messages it rests on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from parley.actions.base import GroupLog, LogLine, Tool, ToolContext, ToolError, tool

SEARCH_MAX = 20
SPAN_MAX = 30
LINE_MAX_CHARS = 400


def _log(context: ToolContext) -> GroupLog:
    if context.group_log is None:
        raise ToolError("the group's log is only available in a group")
    return context.group_log


def _line(line: LogLine, context: ToolContext) -> dict[str, object]:
    zone = context.zone()
    sent = datetime.fromtimestamp(line.sent_at, zone or UTC)
    text = line.text if len(line.text) <= LINE_MAX_CHARS else line.text[: LINE_MAX_CHARS - 1] + "…"
    found: dict[str, object] = {
        "message_id": line.message_id,
        "author": line.author,
        "sent": sent.strftime("%Y-%m-%d %H:%M") + ("" if zone else " UTC"),
        "text": text,
    }
    if line.link:
        found["link"] = line.link
    return found


@tool(
    name="search_group_log",
    where="group",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 2, "maxLength": 200, "description": "Words to look for."},
            "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_MAX},
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)
async def search_group_log(context: ToolContext, query: str, limit: int = 10) -> dict[str, object]:
    """Search this group's messages (what the bot has seen here) for words; newest matches first. Cite
    the links of the messages your answer rests on."""
    lines = await _log(context).search(query, limit)
    return {"matches": [_line(line, context) for line in lines], "count": len(lines)}


@tool(
    name="read_group_log",
    where="group",
    parameters={
        "type": "object",
        "properties": {
            "message_id": {"type": "integer", "minimum": 1, "description": "A message id from a search."},
            "before": {"type": "integer", "minimum": 0, "maximum": SPAN_MAX},
            "after": {"type": "integer", "minimum": 0, "maximum": SPAN_MAX},
        },
        "required": ["message_id"],
        "additionalProperties": False,
    },
)
async def read_group_log(context: ToolContext, message_id: int, before: int = 5, after: int = 10) -> dict[str, object]:
    """Read the messages around one message of this group, in order: the discussion a search hit sits in."""
    lines = await _log(context).read(message_id, before, after)
    return {"messages": [_line(line, context) for line in lines]}


TOOLS: list[Tool] = [search_group_log, read_group_log]
