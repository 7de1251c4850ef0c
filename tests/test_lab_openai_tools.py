"""The OpenAI stand-in issues tool calls and checks the conversation around them as the real API does,
driven by the real openai SDK, streamed and not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from lab import FakeOpenAI

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "current_time",
            "description": "The current time in a timezone.",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "set_reminder",
            "description": "Schedule a reminder.",
            "parameters": {"type": "object", "properties": {"at": {"type": "string"}, "text": {"type": "string"}}},
        },
    },
]


@pytest.fixture
async def client(openai_api: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=0, timeout=10
    ) as real_client:
        yield real_client


def _request(messages: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    return {
        "model": "gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "tools": TOOLS,
        "messages": messages,
        **overrides,
    }


def _answered(message: Any, results: dict[str, str]) -> list[dict[str, Any]]:
    """The assistant's tool-call message and the tool messages answering it, as the follow-up must carry."""
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in message.tool_calls
    ]
    answers = [{"role": "tool", "tool_call_id": c.id, "content": results[c.function.name]} for c in message.tool_calls]
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *answers]


async def test_tool_calls_over_several_rounds(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    openai_api.queue_tool_calls(("current_time", {"zone": "Europe/Berlin"}))
    openai_api.queue_tool_calls(
        ("set_reminder", {"at": "2026-12-01T09:00", "text": "call mum"}), ("current_time", {"zone": "UTC"})
    )
    openai_api.queue_replies("Done: I will remind you at nine.")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Remind me tomorrow at nine to call mum"}]

    first = await client.chat.completions.create(**_request(messages))
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.audio is None and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "current_time" and json.loads(call.function.arguments) == {"zone": "Europe/Berlin"}
    assert first.usage is not None and first.usage.completion_tokens > 0
    messages += _answered(choice.message, {"current_time": "08:15"})

    second = await client.chat.completions.create(**_request(messages))
    calls = second.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["set_reminder", "current_time"]
    assert len({c.id for c in calls} | {call.id}) == 3
    messages += _answered(second.choices[0].message, {"set_reminder": "scheduled #7", "current_time": "08:15"})

    final = await client.chat.completions.create(**_request(messages))
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.audio is not None
    assert final.choices[0].message.audio.transcript == "Done: I will remind you at nine."
    tool_messages = [m for m in openai_api.chat_requests()[-1].messages if m["role"] == "tool"]
    assert [m["content"] for m in tool_messages] == ["08:15", "scheduled #7", "08:15"]


async def test_streamed_tool_calls_accumulate_in_the_sdk(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    arguments = {"at": "2026-12-01T09:00", "text": "call mum, and ask about the garden"}
    openai_api.queue_tool_calls(("set_reminder", arguments), ("current_time", {"zone": "Asia/Tokyo"}))
    request = _request(
        [{"role": "user", "content": "remind me"}],
        audio={"voice": "alloy", "format": "pcm16"},
        stream_options={"include_usage": True},
    )
    async with client.chat.completions.stream(**request) as stream:
        pieces = [event async for event in stream if event.type == "tool_calls.function.arguments.delta"]
        final = await stream.get_final_completion()
    assert len(pieces) > 2  # the arguments arrived in several pieces
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("set_reminder", arguments),
        ("current_time", {"zone": "Asia/Tokyo"}),
    ]
    assert final.usage is not None and final.usage.completion_tokens > 0

    # The follow-up, streamed, must carry the calls and their answers too.
    follow = _request([{"role": "user", "content": "remind me"}], audio={"voice": "alloy", "format": "pcm16"})
    follow["messages"] += _answered(choice.message, {"set_reminder": "ok", "current_time": "17:00"})[:-1]
    with pytest.raises(openai.BadRequestError, match=calls[1].id):
        await client.chat.completions.create(**follow, stream=True)
    follow["messages"] = follow["messages"][:1] + _answered(choice.message, {"set_reminder": "ok", "current_time": "1"})
    stream2 = await client.chat.completions.create(**follow, stream=True)
    assert [c async for c in stream2][-1].choices[0].delta.audio is not None


async def test_a_tool_argument_string_is_sent_as_is(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    openai_api.queue_tool_calls(("set_reminder", '{"at": "tomorrow'))
    resp = await client.chat.completions.create(**_request([{"role": "user", "content": "remind me"}]))
    [call] = resp.choices[0].message.tool_calls or []
    assert call.function.arguments == '{"at": "tomorrow'


@pytest.mark.parametrize(
    ("case", "param", "message"),
    [
        (
            "unanswered",
            "messages.[3].role",
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            "'tool_call_id'. The following tool_call_ids did not have response messages: call_b",
        ),
        (
            "unanswered_at_end",
            "messages.[2].role",
            "The following tool_call_ids did not have response messages: call_a, call_b",
        ),
        (
            "orphan_tool",
            "messages.[1].role",
            "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            "wrong_id",
            "messages.[3].role",
            "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            "call_without_id",
            "messages[1].tool_calls[0].id",
            "Missing required parameter: 'messages[1].tool_calls[0].id'.",
        ),
        ("no_tool_call_id", "messages[2].tool_call_id", "Missing required parameter: 'messages[2].tool_call_id'."),
        ("tool_choice_alone", "tool_choice", "'tool_choice' is only allowed when 'tools' are specified."),
        ("bad_name", "tools[0].function.name", "string does not match pattern"),
    ],
)
async def test_tool_conversation_rejections(client: openai.AsyncOpenAI, case: str, param: str, message: str) -> None:
    calls = [
        {"id": "call_a", "type": "function", "function": {"name": "current_time", "arguments": "{}"}},
        {"id": "call_b", "type": "function", "function": {"name": "current_time", "arguments": "{}"}},
    ]
    user = {"role": "user", "content": "what time is it?"}
    assistant = {"role": "assistant", "content": None, "tool_calls": calls}
    answer_a = {"role": "tool", "tool_call_id": "call_a", "content": "08:15"}
    messages: list[dict[str, Any]] = [user]
    overrides: dict[str, Any] = {}
    if case == "unanswered":
        messages = [user, assistant, answer_a, user]
    elif case == "unanswered_at_end":
        messages = [user, user, assistant]
    elif case == "orphan_tool":
        messages = [user, answer_a]
    elif case == "wrong_id":
        wrong = {"role": "tool", "tool_call_id": "call_zzz", "content": "?"}
        messages = [user, assistant, answer_a, wrong]
    elif case == "call_without_id":
        messages = [user, {"role": "assistant", "tool_calls": [{"type": "function", "function": calls[0]["function"]}]}]
    elif case == "no_tool_call_id":
        messages = [user, {**assistant, "tool_calls": calls[:1]}, {"role": "tool", "content": "08:15"}]
    elif case == "tool_choice_alone":
        overrides = {"tools": None, "tool_choice": "auto"}
    elif case == "bad_name":
        overrides = {"tools": [{"type": "function", "function": {"name": "what time?"}}]}
    request = {k: v for k, v in _request(messages, **overrides).items() if v is not None}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**request)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param and body["type"] == "invalid_request_error"
    assert message in body["message"]


async def test_a_scripted_call_of_a_tool_not_offered_fails_the_lab_loudly() -> None:
    async with FakeOpenAI() as fake, openai.AsyncOpenAI(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0, timeout=10
    ) as client:
        fake.queue_tool_calls(("launch_rockets", {}))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(**_request([{"role": "user", "content": "hi"}]))
        [error] = fake.internal_errors
        assert "launch_rockets" in error and "current_time" in error


@pytest.mark.parametrize(
    ("overrides", "script", "expected"),
    [
        ({"tool_choice": "none"}, [("current_time", {})], "tool_choice 'none'"),
        (
            {"tool_choice": {"type": "function", "function": {"name": "set_reminder"}}},
            [("current_time", {})],
            "forces 'set_reminder'",
        ),
        ({"parallel_tool_calls": False}, [("current_time", {}), ("current_time", {})], "parallel_tool_calls"),
        ({"tool_choice": "required"}, [], "requires a tool call"),
    ],
)
async def test_a_script_no_model_could_follow_fails_the_lab_loudly(
    overrides: dict[str, Any], script: list[tuple[str, dict[str, Any]]], expected: str
) -> None:
    async with FakeOpenAI() as fake, openai.AsyncOpenAI(
        api_key=fake.api_key, base_url=fake.base_url, max_retries=0, timeout=10
    ) as client:
        if script:
            fake.queue_tool_calls(*script)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(**_request([{"role": "user", "content": "hi"}], **overrides))
        [error] = fake.internal_errors
        assert expected in error
