"""The OpenAI stand-in streams as the real API does (stream=true), driven by the real openai SDK."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from lab import FakeOpenAI, make_wav

REPLY = "Streaming works, one piece after another."


@pytest.fixture
async def client(openai_api: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=0, timeout=10
    ) as real_client:
        yield real_client


def _voice_request(**overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "pcm16"},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "input_audio": {"data": base64.b64encode(make_wav(1.0)).decode(), "format": "wav"},
                    }
                ],
            },
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request.update(overrides)
    return request


async def _collect(client: openai.AsyncOpenAI, **request: Any) -> list[ChatCompletionChunk]:
    stream = await client.chat.completions.create(**request)
    return [chunk async for chunk in stream]


async def test_an_audio_stream_arrives_as_the_real_api_sends_it(
    openai_api: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    openai_api.queue_replies(REPLY)
    chunks = await _collect(client, **_voice_request())

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert {c.model for c in chunks} == {"gpt-audio-mini-2025-10-06"}
    *with_choices, usage_chunk = chunks
    assert all(len(c.choices) == 1 for c in with_choices) and all(c.usage is None for c in with_choices)
    assert with_choices[0].choices[0].delta.role == "assistant"

    audio = [c.choices[0].delta.audio for c in with_choices if c.choices[0].delta.audio is not None]
    ids = {a.id for a in audio if a.id is not None}
    assert len(ids) == 1 and next(iter(ids)).startswith("audio_")
    assert "".join(a.transcript for a in audio if a.transcript) == REPLY
    pieces = [base64.b64decode(a.data) for a in audio if a.data]
    assert len(pieces) > 3 and all(len(p) % 2 == 0 for p in pieces)
    pcm = b"".join(pieces)
    # 24 kHz mono 16-bit: the default voice lasts 0.05 s per character of the transcript.
    assert len(pcm) / 2 / 24000 == pytest.approx(len(REPLY) * 0.05, abs=0.01)
    # The transcript leads: its first piece comes before the first audio data.
    first_transcript = next(i for i, a in enumerate(audio) if a.transcript)
    first_data = next(i for i, a in enumerate(audio) if a.data)
    assert first_transcript < first_data

    finishing = [i for i, c in enumerate(with_choices) if c.choices[0].finish_reason is not None]
    assert [with_choices[i].choices[0].finish_reason for i in finishing] == ["stop"]
    expiry = with_choices[-1].choices[0].delta.audio
    assert expiry is not None and expiry.expires_at is not None and expiry.expires_at > time.time()
    assert (expiry.id, expiry.data, expiry.transcript) == (None, None, None)
    assert finishing[0] == len(with_choices) - 2, "the expiry update comes after the finish_reason"

    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    details = usage_chunk.usage.completion_tokens_details
    assert details is not None and details.audio_tokens == pytest.approx(20 * len(REPLY) * 0.05, abs=1)
    assert usage_chunk.usage.prompt_tokens_details is not None
    assert usage_chunk.usage.prompt_tokens_details.audio_tokens == 10

    # The streamed audio id is citable in the next turn, as a non-streamed one is.
    follow = _voice_request()
    follow["messages"] += [{"role": "assistant", "audio": {"id": ids.pop()}}, {"role": "user", "content": "more"}]
    again = await _collect(client, **follow)
    assert "".join(c.choices[0].delta.audio.transcript or "" for c in again if c.choices and c.choices[0].delta.audio)
    [req, _] = openai_api.chat_requests()
    assert req.status == 200 and isinstance(req.response, list) and len(req.response) == len(chunks)


async def test_without_include_usage_there_is_no_usage_chunk(
    openai_api: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    request = _voice_request()
    del request["stream_options"]
    chunks = await _collect(client, **request)
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].delta.audio is not None and chunks[-1].choices[0].delta.audio.expires_at


async def test_a_text_stream_carries_content_pieces(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    openai_api.queue_replies(REPLY)
    chunks = await _collect(
        client,
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


async def test_a_stream_when_audio_is_omitted_carries_text(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    openai_api.queue_replies(REPLY)
    openai_api.omit_audio_next()
    chunks = await _collect(client, **_voice_request())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    assert not [c for c in chunks if c.choices and c.choices[0].delta.audio]


async def test_a_stream_is_paced_over_the_latency(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    """Chunks are spread over the model's time, not sent at once at its end (what a streaming consumer
    overlaps its work with)."""
    openai_api.latency = 0.6
    stream = await client.chat.completions.create(**_voice_request())
    arrivals = [time.monotonic() async for _ in stream]
    assert arrivals[-1] - arrivals[0] > 0.2


@pytest.mark.parametrize(
    ("overrides", "param", "message"),
    [
        (
            {"audio": {"voice": "alloy", "format": "wav"}},
            "audio.format",
            "Unsupported value: 'audio.format' does not support 'wav' when stream=true. "
            "Supported values are: 'pcm16'.",
        ),
        (
            {"audio": {"voice": "alloy", "format": "opus"}},
            "audio.format",
            "does not support 'opus' when stream=true",
        ),
        (
            {"stream": False, "stream_options": None},
            "audio.format",
            "Unsupported value: 'audio.format' does not support 'pcm16' when stream=false.",
        ),
        (
            {"stream": False},
            "stream_options",
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
    ],
)
async def test_stream_rejections(
    client: openai.AsyncOpenAI, overrides: dict[str, Any], param: str, message: str
) -> None:
    request = {k: v for k, v in {**_voice_request(), **overrides}.items() if v is not None}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(**request)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param and body["type"] == "invalid_request_error"
    assert message in body["message"]


async def test_a_stream_cut_mid_way_fails_in_the_sdk(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    """A connection dropped mid-stream (no [DONE]) reaches the application as an error, never as a short
    but seemingly complete reply."""
    openai_api.queue_replies(REPLY)
    openai_api.cut_stream_next(after_chunks=4)
    received: list[ChatCompletionChunk] = []
    with pytest.raises(openai.APIError):
        stream = await client.chat.completions.create(**_voice_request())
        async for chunk in stream:
            received.append(chunk)
    assert len(received) <= 4
    assert not any(c.choices and c.choices[0].finish_reason for c in received)
    [req] = openai_api.chat_requests()
    assert isinstance(req.response, list) and len(req.response) == 4
    # The next stream is whole again.
    assert (await _collect(client, **_voice_request()))[-1].usage is not None
