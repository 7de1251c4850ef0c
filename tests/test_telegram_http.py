"""The Bot API transport: python-telegram-bot's own calls over aiohttp, against the lab's Bot API."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.telegram_http import AiohttpRequest
from lab import FakeTelegram, make_voice_ogg
from lab.relay import counting_relay, private_authority

CHAT = 4242


def _bot(telegram: FakeTelegram, request: AiohttpRequest) -> Bot:
    return Bot(telegram.token, base_url=telegram.base_url, base_file_url=telegram.base_file_url, request=request)


async def test_messages_files_and_downloads_go_through(telegram: FakeTelegram) -> None:
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")  # the chat exists once Ann wrote
    async with _bot(telegram, AiohttpRequest(connection_pool_size=4)) as bot:
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Try again", callback_data="again:1")]])
        text = await bot.send_message(CHAT, "héllo «there» & more", reply_markup=keyboard)
        note = make_voice_ogg(1.0)
        voice = await bot.send_voice(CHAT, InputFile(note, filename="reply.ogg"), duration=1, caption="the words")
        assert voice.voice is not None
        downloaded = await (await bot.get_file(voice.voice.file_id)).download_as_bytearray()
    assert text.text == "héllo «there» & more"
    sent = telegram.calls_of("sendMessage")[-1]
    assert sent.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "again:1"
    upload = telegram.calls_of("sendVoice")[-1]
    assert upload.params["caption"] == "the words" and upload.file_names["voice"] == "reply.ogg"
    assert upload.files["voice"] == note and bytes(downloaded) == note


async def test_the_servers_refusals_are_python_telegram_bots_exceptions(telegram: FakeTelegram) -> None:
    async with _bot(telegram, AiohttpRequest()) as bot:
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(999_999, "to nobody")


async def test_an_answer_slower_than_the_read_timeout_is_timed_out(telegram: FakeTelegram) -> None:
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")  # the chat exists once Ann wrote
    telegram.delay("sendMessage", 2.0)
    async with _bot(telegram, AiohttpRequest(read_timeout=0.2)) as bot:
        with pytest.raises(TimedOut):
            await bot.send_message(CHAT, "slow")


async def test_an_unreachable_server_is_a_network_error(telegram: FakeTelegram) -> None:
    port = _closed_port()
    request = AiohttpRequest()
    async with _bot(telegram, request) as bot:
        bot._base_url = f"http://127.0.0.1:{port}/bot{telegram.token}"  # type: ignore[attr-defined]
        with pytest.raises(NetworkError) as raised:
            await bot.send_message(CHAT, "lost")
    assert not isinstance(raised.value, TimedOut)


async def test_a_bot_api_server_under_a_private_authority_named_by_ssl_cert_file_is_trusted(
    telegram: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Bot API server of one's own (TELEGRAM_API_URL), its certificate signed by a company's authority, which
    SSL_CERT_FILE names: python-telegram-bot's default httpx client trusts it, and so does this transport."""
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")  # the chat exists once Ann wrote
    tls, authority = private_authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority))
    async with counting_relay(telegram.base_url, tls) as (url, opened):
        bot = Bot(telegram.token, base_url=url, base_file_url=telegram.base_file_url, request=AiohttpRequest())
        async with bot:  # getMe, over TLS
            sent = await bot.send_message(CHAT, "over TLS")
    assert sent.text == "over TLS" and opened


async def test_a_proxy_in_the_environment_is_used(telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")  # a proxy that is down
    with pytest.raises(NetworkError, match=r"(?i)proxy|connect"):
        async with _bot(telegram, AiohttpRequest()):  # getMe, through the proxy
            pass


SECRET = "123456:the-secret-half-of-the-token"


@asynccontextmanager
async def _answering(answer: bytes) -> AsyncIterator[str]:
    """A server that answers every request with `answer`, whatever it is: the Bot API's URL for it."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/bot"


@pytest.mark.parametrize(
    "answer",
    [
        b"garbled nonsense\r\n\r\n",
        f"HTTP/1.1 307 Temporary Redirect\r\nLocation: /bot{SECRET}/getMe\r\nContent-Length: 0\r\n\r\n".encode(),
    ],
    ids=["garbled", "redirect"],
)
async def test_a_failed_request_does_not_tell_the_token(answer: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with _answering(answer) as base_url:
        bot = Bot(SECRET, base_url=base_url, request=AiohttpRequest())
        with pytest.raises(NetworkError) as raised:
            async with bot:  # getMe
                pass
    told = [str(raised.value), repr(raised.value), repr(raised.value.__cause__), caplog.text]
    assert not any("the-secret" in text for text in told)
    assert "127.0.0.1" in str(raised.value) or "307" in str(raised.value)


def _closed_port() -> int:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        return int(spare.getsockname()[1])  # nothing listens here once the socket is closed


async def test_a_request_after_shutdown_is_refused(telegram: FakeTelegram) -> None:
    request = AiohttpRequest()
    async with _bot(telegram, request):
        pass
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{telegram.base_url}{telegram.token}/getMe", "POST")
