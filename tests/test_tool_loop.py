"""The conversation with tools, against the OpenAI stand-in as the real API behaves: calls over several rounds,
results handed back by tool_call_id, every round priced and held against the budgets."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from openai import AsyncOpenAI

from lab import FakeOpenAI
from parley import tokens
from parley.actions import Toolbox, ToolContext, load
from parley.actions.loop import TOOL_RULES, SpendMeter, ToolTurn, converse
from parley.model import ModelClient
from parley.prices import PriceTable
from parley.spend import BudgetExceeded, Limits, Spend
from storage import Storage
from tests import plugin_examples

USER = 31
MODEL = "gpt-audio"


@pytest.fixture
async def model(openai_api: FakeOpenAI) -> AsyncIterator[ModelClient]:
    client = ModelClient(
        AsyncOpenAI(base_url=openai_api.base_url, api_key=openai_api.api_key, max_retries=0),
        model=MODEL,
        transcribe_model="gpt-4o-mini-transcribe",
    )
    yield client
    await client.close()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    opened = await Storage.open(tmp_path / "parley.db")
    yield opened
    await opened.close()


def request(text: str) -> list[dict[str, Any]]:
    return [{"role": "system", "content": "You are Parley."}, {"role": "user", "content": text}]


async def ask(
    model: ModelClient, spend: Spend, toolbox: Toolbox, text: str, *, rounds: int = 3, timezone: str | None = "UTC"
) -> tuple[ToolTurn, list[dict[str, Any]]]:
    """What the engine does: hold the first round's estimate, then converse with a meter for the rest."""
    messages = request(text)
    estimate = spend.prices.estimate_reply(MODEL, text_tokens=tokens.rough_count(messages), audio_seconds=0)
    first = await spend.reserve(USER, estimate)
    meter = SpendMeter(
        spend, user_id=USER, chat_id=USER, model=MODEL, audio_seconds=0, release_first=spend.once(first)
    )
    context = ToolContext(user_id=USER, chat_id=USER, now=time.time(), timezone=timezone)
    try:
        turn = await converse(
            model, messages, toolbox=toolbox, context=context, meter=meter, max_rounds=rounds, voice="alloy",
            model_name=MODEL,
        )  # fmt: skip
    finally:
        await meter.release()
    return turn, messages


async def test_the_model_calls_a_tool_gets_its_result_and_answers_with_every_round_in_the_ledger(
    openai_api: FakeOpenAI, model: ModelClient, storage: Storage
) -> None:
    spend = Spend(storage.usage, PriceTable.shipped())
    openai_api.queue_tool_calls(("current_time", {}))
    openai_api.queue_replies("It is half past eight.")
    turn, _ = await ask(model, spend, Toolbox(load(["datetime"])), "What time is it?", timezone="Asia/Tokyo")

    assert turn.reply.text == "It is half past eight." and turn.reply.audio is not None
    assert turn.rounds == 2
    [outcome] = turn.outcomes
    assert outcome.ok and json.loads(outcome.content)["timezone"] == "Asia/Tokyo"
    first, second = (r.json for r in openai_api.chat_requests())
    assert [t["function"]["name"] for t in first["tools"]] == ["current_time", "set_timezone"]
    assert TOOL_RULES in first["messages"][0]["content"]
    call_message, tool_message = second["messages"][-2:]
    [call] = call_message["tool_calls"]
    assert call["function"]["name"] == "current_time"
    assert tool_message == {"role": "tool", "tool_call_id": call["id"], "content": outcome.content}
    [totals] = await storage.usage.by_model(user_id=USER)
    assert totals.calls == 2  # both rounds are in the ledger
    assert turn.usage is not None and turn.usage.prompt_tokens == totals.text_in + totals.audio_in
    assert second["messages"][:-2] == first["messages"]  # the second round repeats the conversation, then the call
    assert await spend.held() == 0


async def test_after_the_last_round_the_model_must_answer_without_tools(
    openai_api: FakeOpenAI, model: ModelClient, storage: Storage
) -> None:
    spend = Spend(storage.usage, PriceTable.shipped())
    toolbox = Toolbox([plugin_examples.echo, plugin_examples.refuses])
    openai_api.queue_tool_calls(("echo", {"word": "hi"}), ("refuses", {}))
    openai_api.queue_replies("I said hi, but the moon is not available.")
    turn, _ = await ask(model, spend, toolbox, "Say hi and fetch the moon", rounds=1)
    assert [o.ok for o in turn.outcomes] == [True, False]
    second = openai_api.chat_requests()[1].json
    assert second["tool_choice"] == "none"
    results = [m["content"] for m in second["messages"] if m["role"] == "tool"]
    assert json.loads(results[1]) == {"error": "the moon is not available today"}


async def test_a_round_that_would_cross_the_budget_is_never_made(
    openai_api: FakeOpenAI, model: ModelClient, storage: Storage
) -> None:
    prices = PriceTable.shipped()
    first_estimate = prices.estimate_reply(MODEL, text_tokens=tokens.rough_count(request("Time?")), audio_seconds=0)
    spend = Spend(storage.usage, prices, limits=Limits(user_daily=first_estimate))  # room for one round only
    openai_api.queue_tool_calls(("current_time", {}))
    with pytest.raises(BudgetExceeded):
        await ask(model, spend, Toolbox(load(["datetime"])), "Time?")
    assert len(openai_api.chat_requests()) == 1
    assert await storage.usage.spent(0.0, user_id=USER) > 0  # the round that was made is paid for
    assert await spend.held() == 0
