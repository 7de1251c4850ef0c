"""The openai SDK's requests carried by aiohttp, behind the SDK's own HTTP client (its `transport`).

A streamed reply is a few hundred server-sent events, and a burst keeps a hundred of them open at once. The
SDK's default transport reads each through pure-Python layers (a connection pool that polls every pooled
connection for readability on each request, an HTTP/1.1 state machine, an async I/O abstraction) that cost
more CPU than the rest of the turn's reading; aiohttp parses HTTP in C and hands out an idle connection from
a queue. The SDK itself is unchanged: it builds the requests, retries and raises as always, because this
transport answers with the HTTP client's own response type and raises its exceptions (a timeout as a timeout,
a refused connection as a connection error), so the SDK maps them as it maps its default transport's.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
from openai import DefaultAsyncHttpxClient

from parley.aiohttp_sessions import client_session, client_timeout


def sdk_http() -> Any:
    """The SDK's HTTP library: httpx, or the fork later SDK versions ship (same interface, another name)."""
    base = next(base for base in DefaultAsyncHttpxClient.__mro__ if not base.__module__.startswith("openai"))
    return importlib.import_module(base.__module__.split(".")[0])


_http: Any = sdk_http()


@contextlib.contextmanager
def _as_http_errors(request: Any) -> Iterator[None]:
    """aiohttp's exceptions as the HTTP client's: the SDK turns its timeouts into APITimeoutError and any other
    error into APIConnectionError; a stream that breaks off is recognised by the client's exception types."""
    try:
        yield
    except aiohttp.ConnectionTimeoutError as exc:  # waiting for a pooled connection, or connecting
        raise _http.ConnectTimeout(str(exc), request=request) from exc
    except aiohttp.ServerTimeoutError as exc:
        raise _http.ReadTimeout(str(exc), request=request) from exc
    except aiohttp.ClientConnectorError as exc:
        raise _http.ConnectError(str(exc), request=request) from exc
    except aiohttp.ClientPayloadError as exc:
        raise _http.RemoteProtocolError(str(exc), request=request) from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise _http.ReadError(str(exc) or type(exc).__name__, request=request) from exc


PIECE_BYTES = 16 * 1024
"""A response's body is handed on in pieces of at most this size. Handed on in one piece of all that had
arrived (up to twice aiohttp's read size), the bot's peak memory in a burst of streamed replies rose markedly
(the README's Audio section has the figures), likely as large pieces of varying size fragment the heap."""


class _Body(_http.AsyncByteStream):
    """A response's body as it arrives, in pieces of at most PIECE_BYTES."""

    def __init__(self, response: aiohttp.ClientResponse, request: Any) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_http_errors(self._request):
            async for piece in self._response.content.iter_chunked(PIECE_BYTES):
                yield piece

    async def aclose(self) -> None:
        self._response.release()  # the connection goes back to the pool if the body was read to its end


class AiohttpTransport(_http.AsyncBaseTransport):
    """One aiohttp session (opened by the first request, closed with the SDK's client) for all of a client's
    requests. Limits are the SDK's: at most `max_connections` at once, idle ones kept `keepalive_expiry`."""

    def __init__(self, limits: Any) -> None:
        self._limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The certificate authorities the SDK's default transport trusts, from its HTTP library itself
            # (those SSL_CERT_FILE or SSL_CERT_DIR name, as for a server under a company's own authority,
            # else the defaults).
            self._session = client_session(
                limit=self._limits.max_connections or 0,
                ssl_context=_http.create_ssl_context(),
                connector={"keepalive_timeout": self._limits.keepalive_expiry},
                auto_decompress=False,  # the HTTP client decodes, as it does for its own transport
            )
        return self._session

    async def handle_async_request(self, request: Any) -> Any:
        session = self._opened()
        timeouts = request.extensions.get("timeout", {})
        timeout = client_timeout(connect=timeouts.get("connect"), pool=timeouts.get("pool"), read=timeouts.get("read"))
        body: Any
        if "_content" in request.__dict__:
            body = request.content or None
        elif isinstance(request.stream, _http.SyncByteStream):
            body = b"".join(request.stream)
        else:
            body = request.stream  # sent as it is read: a body sent once (parley.model_http) is then let go
        headers = [(name, value) for name, value in request.headers.multi_items() if name != "transfer-encoding"]
        with _as_http_errors(request):
            response = await session.request(
                request.method,
                str(request.url),
                data=body,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                compress=False,
            )
        return _http.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": (response.reason or "").encode()},
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
