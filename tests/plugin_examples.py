"""Tool packages as third parties write them, loaded in tests through real entry points."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from parley.actions import Tool, ToolContext, ToolError, tool

calls: list[tuple[str, dict[str, Any]]] = []
"""What the tools below were run with: a call refused before running never appears here."""

ECHO_SCHEMA = {
    "type": "object",
    "properties": {
        "word": {"type": "string", "minLength": 1, "maxLength": 20},
        "times": {"type": "integer", "minimum": 1, "maximum": 3},
    },
    "required": ["word"],
    "additionalProperties": False,
}


@tool(parameters=ECHO_SCHEMA)
async def echo(context: ToolContext, word: str, times: int = 1) -> dict[str, Any]:
    """Repeat a word."""
    calls.append(("echo", {"word": word, "times": times}))
    return {"said": " ".join([word] * times), "for_user": context.user_id}


class Shout:
    """A small class instead of a function."""

    name = "shout"
    description = "Say a word loudly."
    parameters: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"word": {"type": "string"}},
        "required": ["word"],
    }

    async def __call__(self, context: ToolContext, word: str) -> str:
        calls.append(("shout", {"word": word}))
        return word.upper()


def factory() -> list[Tool]:
    """A plugin that builds its tools at load (for example from its own settings)."""
    return [echo, Shout()]  # type: ignore[list-item]


@tool(parameters={"type": "object", "properties": {}}, admin_only=True)
async def wipe(context: ToolContext) -> str:
    """An admin's tool."""
    calls.append(("wipe", {}))
    return "wiped"


@tool(parameters={"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]})
async def slow(context: ToolContext, seconds: float) -> str:
    """Take a while."""
    calls.append(("slow", {"seconds": seconds}))
    await asyncio.sleep(seconds)
    return "done"


@tool(parameters={"type": "object", "properties": {}}, timeout=0.2)
async def hasty(context: ToolContext) -> str:
    """Declares a short timeout of its own."""
    calls.append(("hasty", {}))
    await asyncio.sleep(5)
    return "done"


@tool(parameters={"type": "object", "properties": {"size": {"type": "integer", "maximum": 1_000_000}}})
async def big(context: ToolContext, size: int = 100_000) -> str:
    """Return a lot."""
    return "x" * size


@tool(parameters={"type": "object", "properties": {"text": {"type": "string"}}})
async def parrot(context: ToolContext, text: str = "") -> str:
    """Return what it was given."""
    calls.append(("parrot", {"text": text}))
    return text


@tool(parameters={"type": "object", "properties": {}})
async def leaky(context: ToolContext) -> str:
    """Returns its own key, read from its environment: a bug the runner must catch."""
    return "key: " + os.environ.get("EXAMPLE_PLUGIN_KEY", "")


@tool(parameters={"type": "object", "properties": {}})
async def broken(context: ToolContext) -> str:
    """Fails as code does."""
    raise RuntimeError("/srv/parley/secret/path.py line 12")


@tool(parameters={"type": "object", "properties": {}})
async def refuses(context: ToolContext) -> str:
    """Refuses with a sentence for the model."""
    raise ToolError("the moon is not available today")


@tool(parameters={"type": "object", "properties": {}}, where="group")
async def group_only(context: ToolContext) -> str:
    """Only in groups."""
    return "group"


async def _sync_function(context: ToolContext) -> str:
    return ""


def not_async(context: ToolContext) -> str:
    return ""


sync_tool = Tool(name="sync_tool", description="Not async.", parameters={"type": "object"}, function=not_async)  # type: ignore[arg-type]
bad_schema = Tool(
    name="bad_schema",
    description="Uses oneOf, which the validator would not enforce.",
    parameters={"type": "object", "properties": {"x": {"type": "string", "oneOf": [{"maxLength": 3}]}}},
    function=_sync_function,
)
