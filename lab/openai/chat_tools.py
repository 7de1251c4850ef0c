"""Function calling as the real API checks it, and the scripted tool calls the stand-in answers with.

The rules a conversation must keep: every tool offered is a named function; an assistant message's
tool_calls each carry an id, a type and a function with a name and JSON-text arguments; every call is
answered by a `tool` message with its tool_call_id before the conversation goes on; a `tool` message
answers a call of the assistant message just before it.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

from .errors import invalid, supported

__all__ = ["ScriptError", "ToolCall", "check_script", "check_tool_messages", "check_tools", "issue_calls"]

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NOT_ANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
    "'tool_call_id'. The following tool_call_ids did not have response messages: {ids}"
)
# (sic: the real API spells it "preceeding")
_NOT_A_RESPONSE = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
)


@dataclass(frozen=True)
class ToolCall:
    """A call the stand-in is scripted to make: a function name and its arguments (a dict, sent as JSON
    text, or a str sent as is, e.g. to play a model that writes broken JSON)."""

    name: str
    arguments: dict[str, Any] | str

    def as_json_text(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


def check_tools(body: dict[str, Any]) -> None:
    """`tools`, `tool_choice` and `parallel_tool_calls` as the real API validates them."""
    tools = body.get("tools")
    if tools is None:
        for name in ("tool_choice", "parallel_tool_calls"):
            if name in body:
                raise invalid(
                    f"Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified.", name, None
                )
        return
    if not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
        if tool.get("type") != "function":
            raise invalid(
                f"Invalid value: '{tool.get('type')}'. Supported values are: 'function' and 'custom'.", f"{where}.type"
            )
        function = tool.get("function")
        if not isinstance(function, dict) or "name" not in function:
            raise invalid(
                f"Missing required parameter: '{where}.function.name'.",
                f"{where}.function.name",
                "missing_required_parameter",
            )
        if not isinstance(function["name"], str) or not _NAME.match(function["name"]):
            raise invalid(
                f"Invalid '{where}.function.name': string does not match pattern. Expected a string that matches "
                "the pattern '^[a-zA-Z0-9_-]+$'.",
                f"{where}.function.name",
                "invalid_value",
            )
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise invalid(
                f"Invalid type for '{where}.function.parameters': expected an object.",
                f"{where}.function.parameters",
                "invalid_type",
            )


class ScriptError(Exception):
    """The test scripted what no model could do with this request (call a tool it was not offered, or none
    when the request requires one): a failure of the lab's script, not of the application."""


def check_script(body: dict[str, Any], calls: list[ToolCall] | None) -> None:
    """Whether a model could answer this request with the scripted calls (None: with no call at all)."""
    choice = body.get("tool_choice")
    forced = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if calls is None:
        if choice == "required" or forced:
            raise ScriptError(f"tool_choice {choice!r} requires a tool call: script one with queue_tool_calls")
        return
    offered = {t["function"]["name"] for t in body.get("tools") or [] if isinstance(t, dict)}
    missing = [call.name for call in calls if call.name not in offered]
    if missing:
        raise ScriptError(f"scripted tool call(s) {missing} but the request offers only {sorted(offered)}")
    if choice == "none":
        raise ScriptError("scripted tool calls but the request says tool_choice 'none'")
    if forced and any(call.name != forced for call in calls):
        raise ScriptError(f"scripted {[c.name for c in calls]} but tool_choice forces {forced!r}")
    if body.get("parallel_tool_calls") is False and len(calls) > 1:
        raise ScriptError(f"scripted {len(calls)} calls in one round but parallel_tool_calls is false")


def _check_call_shape(call: Any, where: str) -> str:
    """One entry of an assistant message's tool_calls; returns its id."""
    if not isinstance(call, dict):
        raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
    for key in ("id", "type", "function"):
        if key not in call:
            raise invalid(
                f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}", "missing_required_parameter"
            )
    if call["type"] != "function":
        raise invalid(
            f"Invalid value: '{call['type']}'. Supported values are: {supported(['function'])}.", f"{where}.type"
        )
    function = call["function"]
    for key in ("name", "arguments"):
        if not isinstance(function, dict) or key not in function:
            raise invalid(
                f"Missing required parameter: '{where}.function.{key}'.",
                f"{where}.function.{key}",
                "missing_required_parameter",
            )
    if not isinstance(function["arguments"], str):
        raise invalid(
            f"Invalid type for '{where}.function.arguments': expected a string, but got an object instead.",
            f"{where}.function.arguments",
            "invalid_type",
        )
    return str(call["id"])


def check_tool_messages(messages: list[dict[str, Any]]) -> None:
    """The order rules: calls answered before the conversation goes on, answers only to calls just made."""
    pending: list[str] = []  # ids of the last assistant message's calls not answered yet
    asked: set[str] = set()  # every id of the last assistant message's calls
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role == "tool":
            call_id = str(msg.get("tool_call_id"))
            if call_id not in asked:
                raise invalid(_NOT_A_RESPONSE, f"messages.[{i}].role", None)
            if call_id in pending:
                pending.remove(call_id)
            continue
        if pending:
            raise invalid(_NOT_ANSWERED.format(ids=", ".join(pending)), f"messages.[{i}].role", None)
        asked = set()
        if role == "assistant" and msg.get("tool_calls") is not None:
            calls = msg["tool_calls"]
            if not isinstance(calls, list):
                raise invalid(
                    f"Invalid type for 'messages[{i}].tool_calls': expected an array.",
                    f"messages[{i}].tool_calls",
                    "invalid_type",
                )
            ids = [_check_call_shape(call, f"messages[{i}].tool_calls[{j}]") for j, call in enumerate(calls)]
            pending, asked = list(ids), set(ids)
    if pending:
        raise invalid(_NOT_ANSWERED.format(ids=", ".join(pending)), f"messages.[{len(messages) - 1}].role", None)


def issue_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    """The scripted calls as an assistant message's tool_calls, with fresh ids."""
    alphabet = string.ascii_letters + string.digits
    return [
        {
            "id": "call_" + "".join(secrets.choice(alphabet) for _ in range(24)),
            "type": "function",
            "function": {"name": call.name, "arguments": call.as_json_text()},
        }
        for call in calls
    ]
