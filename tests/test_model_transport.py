"""The model's requests over aiohttp (parley.model_transport), through the unmodified SDK, against the stand-in:
failures reach the model client as the SDK's default transport would raise them, and a reply read to its end
leaves its connection for the next call."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai
import pytest

from lab import FakeOpenAI, make_wav
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


@contextlib.asynccontextmanager
async def _counting_relay(target: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP relay in front of `target` (a base URL), speaking TLS to the client when given `tls`: yields the
    relay's base URL and a list that gets one entry per connection the client opens through it."""
    parts = urlsplit(target)
    opened: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        server_reader, server_writer = await asyncio.open_connection(parts.hostname, parts.port)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else parts.scheme}://127.0.0.1:{port}{parts.path}", opened
    finally:
        server.close()


async def test_replies_streamed_and_whole_and_a_transcription_share_one_connection(openai_api: FakeOpenAI) -> None:
    """Each body is read to its end, so its connection goes back to the pool: one call after another opens
    one connection, not one a call."""
    async with _counting_relay(openai_api.base_url) as (url, opened):
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


def _private_authority(directory: Path) -> ssl.SSLContext:
    """A server's TLS with a certificate for 127.0.0.1 that no public authority signed, made by `openssl req`
    as a company's own authority would be; the certificate is left in `directory` as server.pem."""
    cert, key = directory / "server.pem", directory / "server.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject]
    subprocess.run([*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    return tls


async def test_a_server_under_a_private_authority_named_by_ssl_cert_file_is_trusted(
    openai_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenAI-compatible server inside a company, its certificate signed by the company's own authority,
    which SSL_CERT_FILE names: the SDK's default client trusts it, and so does this transport."""
    tls = _private_authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "server.pem"))
    async with _counting_relay(openai_api.base_url, tls) as (url, opened):
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
