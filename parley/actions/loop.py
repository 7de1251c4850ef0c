"""The conversation with tools: the model may call tools for a few rounds before it answers.

Each round is one Chat Completions call, priced and put in the ledger like any reply, and held against
the budgets before it is made: a turn that runs out of budget between rounds stops there, with nothing
called that was not paid for. The model sees every result, errors included (a tool that fails returns a
sentence saying so), and is told to say plainly when something did not work. After the last round it is
asked to answer without calling anything more.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley import tokens
from parley.actions.base import ToolContext
from parley.actions.runner import Toolbox, ToolOutcome
from parley.errors import ModelError
from parley.model import ModelClient, ModelReply
from parley.spend import Reservation, Spend
from storage import Usage

log = logging.getLogger(__name__)

CALLS_PER_ROUND = 8
"""The model may ask for several calls at once; more than this in one round are answered with an error."""
TOOL_RULES = (
    "You can use tools. Only say that something was done (a reminder set, a reminder cancelled) when a tool's "
    "result says it was, and repeat what the result says: the exact day, time and text. If a tool reports an "
    "error, say plainly and briefly that it did not work and why, and what the person can do."
)


class Meter(Protocol):
    """Budgets and the ledger for each round: the first round's hold is the caller's, taken before."""

    async def before(self, round_number: int, messages: list[dict[str, Any]]) -> None:
        """Before rounds after the first: hold the round's estimate (raise BudgetExceeded to stop)."""

    async def after(self, round_number: int, usage: Usage) -> None:
        """A round's call is made: into the ledger, and its hold released."""


class SpendMeter:
    """The budgets and ledger of one person's turn: the caller holds the first round's estimate (and hands
    its release here); each later round is estimated from the request as it has grown, audio included."""

    def __init__(
        self,
        spend: Spend,
        *,
        user_id: int,
        chat_id: int,
        model: str,
        audio_seconds: float,
        release_first: Callable[[], Awaitable[None]],
    ) -> None:
        self.spend = spend
        self.user_id = user_id
        self.chat_id = chat_id
        self.model = model
        self.audio_seconds = audio_seconds
        self._release_first = release_first
        self._held: Reservation | None = None

    async def before(self, round_number: int, messages: list[dict[str, Any]]) -> None:
        estimate = self.spend.prices.estimate_reply(
            self.model, text_tokens=tokens.rough_count(messages), audio_seconds=self.audio_seconds
        )
        self._held = await self.spend.reserve(self.user_id, estimate)

    async def after(self, round_number: int, usage: Usage) -> None:
        try:
            await self.spend.record(user_id=self.user_id, chat_id=self.chat_id, purpose="reply", usage=usage)
        except Exception:  # a ledger failure is loud in the log but never costs the person their answer
            log.exception("chat=%s could not record a reply round in the usage ledger", self.chat_id)
        await self.release()

    async def release(self) -> None:
        await self._release_first()
        if self._held is not None:
            held, self._held = self._held, None
            await self.spend.release(held)


Ask = Callable[..., Awaitable[ModelReply]]
"""One round's model call, taking ModelClient.reply's arguments: whole by default, or streamed by the engine."""


class ToolScope(Protocol):
    """Makes the ToolContext of a turn: the caller's own data, nothing wider (parley.actions.scope)."""

    async def context(self, *, chat_id: int, user_id: int, thread_id: int = 0) -> ToolContext: ...


@dataclass(slots=True)
class ToolTurn:
    reply: ModelReply
    """The final answer (text and audio)."""
    outcomes: list[ToolOutcome] = field(default_factory=list)
    rounds: int = 1
    usage: Usage | None = None
    """Every round's tokens together."""

    def record(self) -> list[dict[str, Any]]:
        return [outcome.record() for outcome in self.outcomes]


def add_usage(total: Usage | None, usage: Usage) -> Usage:
    if total is None:
        return usage
    return Usage(
        model=usage.model,
        prompt_tokens=total.prompt_tokens + usage.prompt_tokens,
        completion_tokens=total.completion_tokens + usage.completion_tokens,
        prompt_audio_tokens=total.prompt_audio_tokens + usage.prompt_audio_tokens,
        completion_audio_tokens=total.completion_audio_tokens + usage.completion_audio_tokens,
        cached_tokens=total.cached_tokens + usage.cached_tokens,
    )


def with_rules(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request with the tool rules appended to its system message (the first message)."""
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{TOOL_RULES}"}, *messages[1:]]
    return [{"role": "system", "content": TOOL_RULES}, *messages]


def assistant_message(reply: ModelReply) -> dict[str, Any]:
    """The model's tool-calling message, as the next request must repeat it."""
    return {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
            for call in reply.tool_calls
        ],
    }


async def converse(
    model: ModelClient,
    messages: list[dict[str, Any]],
    *,
    toolbox: Toolbox,
    context: ToolContext,
    meter: Meter,
    max_rounds: int,
    voice: str,
    model_name: str | None = None,
    speak: bool = True,
    ask: Ask | None = None,
) -> ToolTurn:
    """Ask, run what the model calls, hand the results back; at most `max_rounds` rounds of tools.

    `messages` grows with the calls and results (the caller may clear it afterwards to free the audio).
    `ask` makes each round's call (`model.reply` when None)."""
    ask = ask or model.reply
    offered = toolbox.offer(context)
    if offered:
        messages[:] = with_rules(messages)
    turn = ToolTurn(reply=ModelReply(text="", audio=None, usage=Usage(model=model_name or model.model)))
    for round_number in range(max_rounds + 1):
        last = round_number == max_rounds
        if round_number:
            await meter.before(round_number, messages)
        reply = await ask(
            messages,
            voice=voice,
            model=model_name,
            speak=speak,
            tools=offered or None,
            tool_choice="none" if last and offered else None,
        )
        await meter.after(round_number, reply.usage)
        turn.usage = add_usage(turn.usage, reply.usage)
        turn.rounds = round_number + 1
        if not reply.tool_calls or last:
            if not reply.text and reply.audio is None:  # still calling tools when told to answer
                raise ModelError("reply: the model kept calling tools instead of answering")
            turn.reply = reply
            return turn
        messages.append(assistant_message(reply))
        for index, call in enumerate(reply.tool_calls):
            if index < CALLS_PER_ROUND:
                outcome = await toolbox.run(call, context)
                turn.outcomes.append(outcome)
                content = outcome.content
            else:
                content = '{"error": "too many calls at once; nothing was done for this one"}'
            messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
    raise AssertionError("unreachable: the last round returns")
