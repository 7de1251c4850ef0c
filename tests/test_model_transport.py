"""The model's requests over aiohttp (parley.model_transport), through the unmodified SDK, against the stand-in:
failures reach the model client as the SDK's default transport would raise them, and a reply read to its end
leaves its connection for the next call."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

import openai
import pytest

from lab import FakeOpenAI, make_wav
from lab.relay import counting_relay, private_authority
from parley.errors import ModelError, ModelTimeout, ModelUnavailable
from parley.model import ModelClient
from parley.model_http import http_client

REPLY = "Carried by aiohttp, read by the SDK as ever."


def _client(base_url: str, api_key: str = "sk-test", timeout: float = 10) -> ModelClient:
    sdk = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout, http_client=http_client()
    )
    return ModelClient(sdk, model="gpt-audio-1.5", transcribe_model="gpt-4o-mini-transcribe", lift_audio=True)


def _note(seconds: float = 1.0) -> list[dict[str, Any]]:
    data = base64.b64encode(make_wav(seconds, rate=16_000)).decode()
    return [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]}]


async def _ignore(pcm: bytes) -> None:
    pass


async def test_replies_streamed_and_whole_and_a_transcription_share_one_connection(openai_api: FakeOpenAI) -> None:
    """Each body is read to its end, so its connection goes back to the pool: one call after another opens
    one connection, not one a call."""
    async with counting_relay(openai_api.base_url) as (url, opened):
        model = _client(url, openai_api.api_key)
        try:
            openai_api.queue_replies(REPLY, REPLY, REPLY)
            first = await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
            second = await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
            whole = await model.reply(_note(), voice="coral")
            heard, _ = await model.transcribe(("voice.wav", make_wav(1.0, rate=16_000), "audio/wav"))
        finally:
            await model.close()
    assert first.text == second.text == whole.text == REPLY and first.audio_seconds > 1
    assert isinstance(heard, str)
    assert len(opened) == 1


async def test_a_server_under_a_private_authority_named_by_ssl_cert_file_is_trusted(
    openai_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenAI-compatible server inside a company, its certificate signed by the company's own authority,
    which SSL_CERT_FILE names: the SDK's default client trusts it, and so does this transport."""
    tls, authority = private_authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))
    async with counting_relay(openai_api.base_url, tls) as (url, opened):
        model = _client(url, openai_api.api_key)
        try:
            openai_api.queue_replies(REPLY)
            reply = await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
        finally:
            await model.close()
    assert reply.text == REPLY and len(opened) == 1


async def test_a_refused_connection_is_the_models_service_failing_not_a_timeout() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]  # nothing listens on it
        model = _client(f"http://127.0.0.1:{port}/v1")
        try:
            with pytest.raises(ModelUnavailable):
                await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
        finally:
            await model.close()


async def test_a_model_that_never_answers_is_a_timeout(openai_api: FakeOpenAI) -> None:
    model = _client(openai_api.base_url, openai_api.api_key, timeout=1)
    openai_api.hang_next()
    try:
        with pytest.raises(ModelTimeout):
            await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
    finally:
        await model.close()


async def test_a_stream_cut_midway_is_a_model_error_and_the_next_call_still_works(openai_api: FakeOpenAI) -> None:
    model = _client(openai_api.base_url, openai_api.api_key)
    openai_api.queue_replies(REPLY, REPLY)
    openai_api.cut_stream_next(after_chunks=8)
    try:
        with pytest.raises(ModelError):
            await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
        reply = await model.reply_stream(_note(), voice="coral", on_audio=_ignore)
    finally:
        await model.close()
    assert reply.text == REPLY
