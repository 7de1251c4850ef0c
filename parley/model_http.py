"""The openai SDK's HTTP client, made to let go of a request's body once it is sent.

A voice turn's request carries the note as base64 in JSON: about 40 KB a second of audio. The HTTP library
keeps that body on its request object until the reply has been read, which for a streamed reply is
the whole model call; with a hundred turns waiting for the model at once, those copies are most of the
bot's memory. The SDK never re-sends a request object (a retry builds a new one from its own copy of the
parameters), so the body is handed to the connection once and dropped when written.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from typing import Any

from openai import DefaultAsyncHttpxClient

ONCE_BYTES = 32 * 1024
"""Bodies from this size on are sent once and dropped; smaller ones are not worth the bother."""

_http: Any = importlib.import_module(
    next(base for base in DefaultAsyncHttpxClient.__mro__ if not base.__module__.startswith("openai")).__module__.split(
        "."
    )[0]
)
"""The SDK's HTTP library: httpx, or the fork later SDK versions ship (same interface, another name)."""


class _SentOnce(_http.AsyncByteStream):
    """A request body that can be read once: sending it hands the bytes to the connection and forgets them."""

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, self._body = self._body, None
        if body is None:  # a redirect re-sending the request: fail it, and the SDK retries with a new one
            raise _http.StreamConsumed()
        yield body


async def _send_once(request: Any) -> None:
    body = request.__dict__.get("_content")
    if isinstance(body, bytes) and len(body) >= ONCE_BYTES:
        del request._content
        request.stream = _SentOnce(body)
    elif _is_form(request):
        # A transcription's form (the recording and the model's name) is rendered in a dozen pieces, each
        # a write to the socket of its own; joined, it is one write, and dropped once written.
        request.stream = _SentOnce(b"".join(request.stream))


def _is_form(request: Any) -> bool:
    """A multipart body of bytes already in memory (the SDK's upload of a recording given as bytes)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data") and isinstance(
        request.stream, _http.SyncByteStream
    )


def http_client() -> Any:
    """The SDK's own default client (its timeouts, connection limits, redirects) with the hook above."""
    return DefaultAsyncHttpxClient(event_hooks={"request": [_send_once]})
