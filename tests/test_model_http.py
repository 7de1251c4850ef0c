"""The model's HTTP client: a recording's base64 goes into the request body past the SDK's JSON encoder, and
reaches the API exactly as given, in every kind of call, on a retry too; nothing else is touched."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import socket
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from lab import FakeOpenAI, make_wav
from parley.errors import ModelRejected
from parley.model import ModelClient
from parley.model_http import http_client

REPLY = "Heard you, and here is the answer."


@pytest.fixture
async def model(openai_api: FakeOpenAI) -> AsyncIterator[ModelClient]:
    client = openai.AsyncOpenAI(
        api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=1, timeout=10, http_client=http_client()
    )
    yield ModelClient(client, model="gpt-audio-1.5", transcribe_model="gpt-4o-mini-transcribe", lift_audio=True)
    await client.close()


def _audio(seconds: float) -> str:
    return base64.b64encode(make_wav(seconds, rate=16_000)).decode("ascii")


def _note(*datas: str, text: str = "What do you make of this?") -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}} for data in datas]
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": parts}]


def _sent_audio(body: dict[str, Any]) -> list[str]:
    content = body["messages"][-1]["content"]
    return [part["input_audio"]["data"] for part in content if part["type"] == "input_audio"]


async def _ignore(pcm: bytes) -> None:
    pass


async def test_a_streamed_call_carries_each_recording_exactly_and_leaves_the_messages_as_they_were(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    first, second = _audio(2.0), _audio(1.0)
    messages = _note(first, second)
    before = copy.deepcopy(messages)
    openai_api.queue_replies(REPLY)
    reply = await model.reply_stream(messages, voice="coral", on_audio=_ignore)
    assert reply.text == REPLY
    [request] = openai_api.chat_requests()
    assert _sent_audio(request.json) == [first, second]
    assert [round(seconds, 1) for seconds in request.audio_input_seconds] == [2.0, 1.0]
    assert request.json["messages"][:-1] == before[:-1]
    assert messages == before


async def test_a_whole_reply_and_a_listening_call_carry_the_recording_too(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    data = _audio(1.5)
    openai_api.queue_replies(REPLY, "a calm voice")
    await model.reply(_note(data), voice="coral")
    await model.listen("Describe the tone.", base64.b64decode(data), "wav")
    assert [_sent_audio(request.json) for request in openai_api.chat_requests()] == [[data], [data]]


async def test_a_retry_carries_the_whole_recording_again(model: ModelClient, openai_api: FakeOpenAI) -> None:
    data = _audio(3.0)
    openai_api.fail_next(500, times=1)
    openai_api.queue_replies(REPLY)
    await model.reply_stream(_note(data), voice="coral", on_audio=_ignore)
    first, second = openai_api.chat_requests()
    assert first.status == 500 and second.status == 200
    assert _sent_audio(first.json) == _sent_audio(second.json) == [data]


async def test_a_mark_written_by_someone_is_sent_as_written(model: ModelClient, openai_api: FakeOpenAI) -> None:
    """Only recordings of the call in progress are put in: a person's text that looks like a mark is text."""
    words = "@parley-audio-0123456789abcdef@ is what I typed"
    openai_api.queue_replies(REPLY)
    await model.reply_stream(_note(_audio(1.0), text=words), voice="coral", on_audio=_ignore)
    [request] = openai_api.chat_requests()
    assert request.json["messages"][-1]["content"][0]["text"] == words


async def test_audio_data_that_json_must_escape_goes_through_the_sdk_unchanged(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    """Not base64 (a quote in it): left to the SDK's encoder, so the body stays valid JSON and the API, not a
    broken body, refuses it."""
    data = _audio(1.0) + '", "model": "gpt-other'
    with pytest.raises(ModelRejected):
        await model.reply_stream(_note(data), voice="coral", on_audio=_ignore)
    [request] = openai_api.chat_requests()
    assert request.json["model"] == "gpt-audio-1.5"
    assert _sent_audio(request.json) == [data]


async def test_on_sent_comes_once_the_request_is_written_not_when_the_reply_comes(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    """What waits for the request to be on its way (the transcription) does not wait for the model."""
    openai_api.hang_next()
    sent = asyncio.Event()
    calling = asyncio.create_task(
        model.reply_stream(_note(_audio(2.0)), voice="coral", on_audio=_ignore, on_sent=sent.set)
    )
    try:
        await asyncio.wait_for(sent.wait(), timeout=10)
        await openai_api.wait_for(lambda: bool(openai_api.chat_requests()), timeout=10)
        assert not calling.done()
    finally:
        calling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await calling


async def test_on_sent_is_called_once_over_a_retry_and_with_text_alone(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    calls: list[str] = []
    openai_api.fail_next(500, times=1)
    openai_api.queue_replies(REPLY, REPLY)
    await model.reply_stream(_note(_audio(1.0)), voice="coral", on_audio=_ignore, on_sent=lambda: calls.append("note"))
    text = [{"role": "user", "content": "hello"}]
    await model.reply(text, voice="coral", on_sent=lambda: calls.append("text"))
    assert calls == ["note", "text"]
    assert len(openai_api.chat_requests()) == 3


async def test_a_plain_client_calls_on_sent_before_the_call(openai_api: FakeOpenAI) -> None:
    """A client without the hook cannot tell when its request is written: what waits for it is not held up."""
    client = openai.AsyncOpenAI(api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=0, timeout=10)
    plain = ModelClient(client, model="gpt-audio-1.5", transcribe_model="gpt-4o-mini-transcribe")
    openai_api.hang_next()
    sent = asyncio.Event()
    calling = asyncio.create_task(
        plain.reply_stream(_note(_audio(1.0)), voice="coral", on_audio=_ignore, on_sent=sent.set)
    )
    try:
        await asyncio.wait_for(sent.wait(), timeout=10)
    finally:
        calling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await calling
        await client.close()


async def test_a_call_stopped_before_its_request_is_written_never_calls_on_sent() -> None:
    """What `on_sent` starts (a paid transcription) would run for a turn that is gone."""
    connected = asyncio.Event()

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # nothing is read until the client gives up: the request cannot be written

    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the body cannot hide in the buffers
    listening.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(never_read, sock=listening)
    port = listening.getsockname()[1]
    client = openai.AsyncOpenAI(
        api_key="sk-none", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=60, http_client=http_client()
    )
    model = ModelClient(client, model="gpt-audio-1.5", transcribe_model="gpt-4o-mini-transcribe", lift_audio=True)
    calls: list[str] = []
    note = _note(_audio(120.0))
    async with server:
        calling = asyncio.create_task(
            model.reply_stream(note, voice="coral", on_audio=_ignore, on_sent=lambda: calls.append("sent"))
        )
        await asyncio.wait_for(connected.wait(), timeout=10)
        calling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await calling
        await client.close()
    assert calls == []


def _conversation(data: str) -> list[dict[str, Any]]:
    """A history as Parley sends one: a system prompt, earlier turns in text, a tool round, and the new note."""
    return [
        {"role": "system", "content": "Be brief. Today is Monday."},
        {"role": "user", "content": "What's the weather like?"},
        {"role": "assistant", "content": "Sunny, 21 °C — a good day for a walk.", "name": "parley"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "datetime", "arguments": '{"tz": "UTC"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"now": "2026-11-30T04:00:00Z"}'},
        *_note(data, text="And tomorrow?")[1:],
    ]


@pytest.mark.parametrize("streamed", [True, False])
async def test_a_conversation_reaches_the_api_exactly_as_given_on_a_retry_too(
    model: ModelClient, openai_api: FakeOpenAI, streamed: bool
) -> None:
    """The messages go past the SDK's transform of its parameters: the API must still get them unchanged,
    once, in the body's own `messages`, whatever else the call sets."""
    messages = _conversation(_audio(1.0))
    before = copy.deepcopy(messages)
    openai_api.fail_next(500, times=1)
    openai_api.queue_replies(REPLY)
    if streamed:
        reply = await model.reply_stream(messages, voice="coral", on_audio=_ignore)
    else:
        reply = await model.reply(messages, voice="coral")
    assert reply.text == REPLY
    first, second = openai_api.chat_requests()
    assert first.status == 500 and second.status == 200
    for request in (first, second):
        assert request.json["messages"] == before
        assert request.json["model"] == "gpt-audio-1.5" and request.json["audio"]["voice"] == "coral"
        assert request.json.get("stream", False) is streamed
    assert messages == before
