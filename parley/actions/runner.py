"""Running the model's tool calls: look up, parse, validate, run under a timeout, bound the result.

Whatever goes wrong, the model gets a short JSON error it can read out ("the tool took too long"),
never a traceback; the log gets the details. A call whose arguments contain one of the deployment's
secrets is not run at all, and a secret in a result is blanked before the model (or the stored turn)
sees it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from parley.actions.base import Tool, ToolContext, ToolError
from parley.actions.schema import InvalidArguments, validate
from parley.model import ToolCall

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_RESULT_CHARS = 4000
ARGUMENTS_MAX_CHARS = 8000
"""Arguments longer than this are refused unread: no schema here needs more."""
REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    call: ToolCall
    content: str
    """What goes back to the model as the `tool` message (JSON text), bounded and free of secrets."""
    ok: bool
    seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        """The call and its result as stored with the turn."""
        return {"name": self.call.name, "arguments": self.call.arguments, "result": self.content, "ok": self.ok}


class Toolbox:
    """The enabled tools, and the rules every call is held to."""

    def __init__(
        self,
        tools: Iterable[Tool],
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        result_chars: int = DEFAULT_RESULT_CHARS,
        secrets: Iterable[str] = (),
    ) -> None:
        self.tools = {t.name: t for t in tools}
        self.timeout = timeout
        self.result_chars = result_chars
        self._secrets = tuple(s for s in secrets if len(s) >= 8)

    def __bool__(self) -> bool:
        return bool(self.tools)

    def offer(self, context: ToolContext) -> list[dict[str, Any]]:
        """The declarations for this caller: admins' tools only to admins, group tools only in groups."""
        return [t.declaration() for t in self.tools.values() if t.offered_to(context)]

    async def run(self, call: ToolCall, context: ToolContext) -> ToolOutcome:
        started = time.perf_counter()
        try:
            content = await self._run(call, context)
            ok = True
        except ToolError as exc:
            content, ok = _error(str(exc)), False
        outcome = ToolOutcome(call, self._bound(self._blank(content)), ok, time.perf_counter() - started)
        log.info(
            "tool call chat=%s user=%s %s ok=%s in %.2f s",
            context.chat_id, context.user_id, call.name, ok, outcome.seconds,
        )  # fmt: skip
        return outcome

    async def _run(self, call: ToolCall, context: ToolContext) -> str:
        found = self.tools.get(call.name)
        if found is None or not found.offered_to(context):
            raise ToolError(f"there is no tool called {call.name[:64]!r} here")
        if len(call.arguments) > ARGUMENTS_MAX_CHARS:
            raise ToolError(f"the arguments are too long (over {ARGUMENTS_MAX_CHARS} characters)")
        if any(secret in call.arguments for secret in self._secrets):
            log.warning("tool call chat=%s %s refused: its arguments contain a secret", context.chat_id, call.name)
            raise ToolError("the arguments contain a secret of this deployment; the call was not made")
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError as exc:
            raise ToolError(f"the arguments are not valid JSON: {exc}") from exc
        try:
            validate(arguments, found.parameters)
        except InvalidArguments as exc:
            raise ToolError(f"invalid arguments: {exc}") from exc
        timeout = min(found.timeout or self.timeout, self.timeout)
        try:
            async with asyncio.timeout(timeout):
                result = await found.function(context, **arguments)
            return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        except ToolError:
            raise
        except TimeoutError as exc:
            log.warning("tool call chat=%s %s timed out after %.1f s", context.chat_id, call.name, timeout)
            raise ToolError(f"the tool took too long (over {timeout:g} s) and was stopped") from exc
        except Exception as exc:
            log.exception("tool call chat=%s %s failed", context.chat_id, call.name)
            raise ToolError("the tool failed") from exc

    def _blank(self, content: str) -> str:
        for secret in self._secrets:
            content = content.replace(secret, REDACTED)
        return content

    def _bound(self, content: str) -> str:
        if len(content) <= self.result_chars:
            return content
        note = f" [cut: the result had {len(content)} characters, the limit is {self.result_chars}]"
        return content[: max(0, self.result_chars - len(note))] + note


def _error(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)
