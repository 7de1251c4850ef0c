"""python-telegram-bot's requests to the Bot API carried by aiohttp instead of its default httpx client.

A voice turn makes several Bot API calls (the chat action, getFile, the download, sendVoice) and a burst
makes a hundred turns of them at once. httpx's connection pool checks every pooled connection for each
request (a readability poll per idle connection, and a scan of all of them per connection), so a pool
sized for a burst costs most of each small request's CPU; aiohttp's connector hands out an idle connection
from a queue, and parses responses in C. The Bot API's answers and errors reach python-telegram-bot
unchanged: this class only moves bytes, and `BaseRequest` turns status codes into its exceptions.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httpx
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

from parley.aiohttp_sessions import client_session, client_timeout

DefaultInput = Any  # python-telegram-bot's DEFAULT_NONE or a number of seconds


def _chosen(value: DefaultInput, default: float | None) -> float | None:
    return default if value is BaseRequest.DEFAULT_NONE else value


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one aiohttp session (opened by `initialize`, closed by `shutdown`).

    Timeouts mean what python-telegram-bot's do, with one difference aiohttp imposes: it has no timeout
    for writing, and its read timeout already runs while a body is written, so an upload (a request with
    files) is given its read and media-write timeouts together."""

    __slots__ = (
        "_connect_timeout",
        "_media_write_timeout",
        "_pool_size",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        connection_pool_size: int = 1,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # The certificate authorities python-telegram-bot's default httpx client trusts, from httpx itself
            # (those SSL_CERT_FILE or SSL_CERT_DIR name, as for a Bot API server under a company's own
            # authority, else certifi's), and like httpx, HTTPS_PROXY is honoured.
            self._session = client_session(
                limit=self._pool_size, ssl_context=httpx.create_ssl_context(), headers={"User-Agent": self.USER_AGENT}
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: DefaultInput = BaseRequest.DEFAULT_NONE,
        write_timeout: DefaultInput = BaseRequest.DEFAULT_NONE,
        connect_timeout: DefaultInput = BaseRequest.DEFAULT_NONE,
        pool_timeout: DefaultInput = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None else None
        read = _chosen(read_timeout, self._read_timeout)
        if files:
            write = _chosen(write_timeout, self._media_write_timeout)
            read = None if read is None or write is None else read + write
        timeout = client_timeout(
            connect=_chosen(connect_timeout, self._connect_timeout),
            pool=_chosen(pool_timeout, self._pool_timeout),
            read=read,
        )
        body: aiohttp.FormData | bytes | None = None
        headers: dict[str, str] | None = None
        if files and request_data is not None:
            form = aiohttp.FormData(quote_fields=False)
            for name, value in request_data.json_parameters.items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        elif request_data is not None and request_data.parameters:
            body = request_data.json_payload
            headers = {"Content-Type": "application/json"}
        try:
            # Like httpx, no redirects: a redirected upload would send a form that has already been read.
            async with self._session.request(
                method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False
            ) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(_told(exc, url)) from None  # the cause's text may hold the URL, and the token


def _told(exc: aiohttp.ClientError, url: str) -> str:
    """What went wrong, without the bot's token: the URL only up to "/bot", the error's own text only when
    it holds no part of the URL past that (some of aiohttp's errors quote the whole URL)."""
    head, bot, rest = url.partition("/bot")
    said = f"aiohttp.{type(exc).__name__} ({head}{bot}…)"
    secret = rest.split("/", 1)[0]
    text = f"{exc.status}, {exc.message}" if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
    if not text or "/bot" in text or (secret and secret in text):
        return said
    return f"{said}: {text}"
