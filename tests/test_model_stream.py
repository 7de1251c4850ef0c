"""The model client's streamed reply against the OpenAI stand-in (which streams as the real API does)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import openai
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lab import FakeOpenAI, make_wav
from parley.errors import ModelError, ModelRejected
from parley.model import PCM16_RATE, ModelClient, _pcm

REPLY = "Streaming works, one piece after another, and the voice note is ready when the last piece is."


@pytest.fixture
async def model(openai_api: FakeOpenAI) -> AsyncIterator[ModelClient]:
    client = openai.AsyncOpenAI(api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=0, timeout=10)
    yield ModelClient(client, model="gpt-audio-1.5", transcribe_model="gpt-4o-mini-transcribe")
    await client.close()


def _note() -> list[dict[str, object]]:
    data = base64.b64encode(make_wav(1.0, rate=16_000)).decode()
    return [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]}]


async def test_the_audio_arrives_in_pieces_and_the_words_and_usage_at_the_end(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    openai_api.queue_replies(REPLY)
    pieces: list[bytes] = []

    async def on_audio(pcm: bytes) -> None:
        pieces.append(pcm)

    reply = await model.reply_stream(_note(), voice="coral", on_audio=on_audio)
    [request] = openai_api.chat_requests()
    assert request.json["stream"] is True and request.json["stream_options"] == {"include_usage": True}
    assert request.json["audio"] == {"voice": "coral", "format": "pcm16"}
    assert reply.text == REPLY
    assert len(pieces) > 3  # really streamed, not handed over at once
    pcm = b"".join(pieces)
    assert reply.audio_seconds == pytest.approx(len(pcm) / (2 * PCM16_RATE))
    assert reply.audio_seconds == pytest.approx(len(REPLY) * openai_api.seconds_per_char, abs=0.05)
    assert reply.usage.model == "gpt-audio-1.5"
    assert reply.usage.prompt_audio_tokens == 10  # one second of audio in
    assert reply.usage.completion_audio_tokens > 0 and reply.usage.completion_tokens > 0


async def test_a_refused_stream_is_a_plain_model_error(model: ModelClient, openai_api: FakeOpenAI) -> None:
    async def on_audio(pcm: bytes) -> None:
        raise AssertionError("no audio expected")

    with pytest.raises(ModelRejected):
        await model.reply_stream([{"role": "user", "content": ""}], voice="not-a-voice", on_audio=on_audio)


async def test_a_stream_cut_midway_is_a_model_error_not_a_short_reply(
    model: ModelClient, openai_api: FakeOpenAI
) -> None:
    """Without the final chunks (and [DONE]) the reply is incomplete: half a sentence must not pass as it."""
    openai_api.queue_replies(REPLY)
    openai_api.cut_stream_next(after_chunks=8)
    pieces: list[bytes] = []

    async def on_audio(pcm: bytes) -> None:
        pieces.append(pcm)

    with pytest.raises(ModelError):
        await model.reply_stream(_note(), voice="coral", on_audio=on_audio)


@given(st.binary(max_size=300), st.sampled_from(["canonical", "unpadded", "wrapped", "url-safe"]))
@example(b"\xfb\xff\xbf\x00", "url-safe")
def test_a_pieces_base64_decodes_as_the_standard_library_does(pcm: bytes, form: str) -> None:
    """The fast decoder takes canonical base64 only; whatever else a service might send decodes as before."""
    text = base64.b64encode(pcm).decode()
    if form == "unpadded":
        text = text.rstrip("=")
    elif form == "wrapped":
        text = "\n".join(text[at : at + 8] for at in range(0, len(text), 8))
    elif form == "url-safe":
        text = base64.urlsafe_b64encode(pcm).decode()
    try:
        expected: bytes | type[Exception] = base64.b64decode(text)
    except ValueError as exc:
        expected = type(exc)
    if isinstance(expected, bytes):
        assert _pcm(text) == expected
    else:
        with pytest.raises(expected):
            _pcm(text)
