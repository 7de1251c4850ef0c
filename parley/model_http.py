"""The openai SDK's HTTP client, made to let go of a request's body once it is sent, and to put a recording's
base64 into the body itself rather than through the SDK's JSON encoder.

A voice turn's request carries the note as base64 in JSON: about 40 KB a second of audio. The HTTP library
keeps that body on its request object until the reply has been read, which for a streamed reply is
the whole model call; with a hundred turns waiting for the model at once, those copies are most of the
bot's memory. The SDK never re-sends a request object (a retry builds a new one from its own copy of the
parameters), so the body is handed to the connection once and dropped when written.

The JSON encoder checks every character of a string for something to escape: for a 30 s note's megabyte
of base64, which never has any, that is most of the CPU of building the request, and it comes between the
note and the model. So `lifted` hands the SDK the messages with a short mark in place of each recording's
base64, and this client's hook writes the base64 where the mark is, as the body goes out (a retry's new
request is filled in the same way, while the call lasts; only the call's own marks are filled, in the
call's own requests). Only a client made by `http_client` does this: the model client lifts recordings
only when told it has one.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from openai import DEFAULT_CONNECTION_LIMITS, DefaultAsyncHttpxClient

from parley.model_transport import AiohttpTransport, sdk_http

ONCE_BYTES = 32 * 1024
"""Bodies from this size on are sent once and dropped; smaller ones are not worth the bother. Recordings'
base64 from this size on is lifted out of the SDK's JSON."""


_http: Any = sdk_http()

_MARK = re.compile(rb"@parley-audio-[0-9a-f]{16}@")
"""A lifted recording's place in a body: '@' is not in base64's alphabet, and JSON leaves the mark as it is."""


@dataclass(slots=True)
class _Call:
    """A call in progress (see `lifted`): the base64 of its recordings by their marks, and what to call
    once its request has been written."""

    recordings: dict[str, str] = field(default_factory=dict)
    sent: Callable[[], None] | None = None


_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("parley_model_call", default=None)
"""The call the requests made in this context belong to: only its own recordings go into their bodies."""


class _SentOnce(_http.AsyncByteStream):
    """A request body that can be read once: sending it hands the pieces to the connection and forgets them.
    A piece that is text is a recording's base64 (ASCII): it is encoded only as it is written. `sent` is
    called once the last piece has been written."""

    def __init__(self, pieces: list[bytes | str], sent: Callable[[], None] | None) -> None:
        self._pieces: list[bytes | str] | None = pieces
        self._sent = sent

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pieces, self._pieces = self._pieces, None
        if pieces is None:  # a redirect re-sending the request: fail it, and the SDK retries with a new one
            raise _http.StreamConsumed()
        while pieces:
            piece = pieces.pop(0)
            yield piece.encode("ascii") if isinstance(piece, str) else piece
        if self._sent is not None:
            self._sent()


def _spliced(body: bytes, recordings: dict[str, str]) -> list[bytes | str] | None:
    """The body's pieces with each of the call's recordings back in its place; None when it has none."""
    pieces: list[bytes | str] = []
    at = 0
    for mark in _MARK.finditer(body):
        data = recordings.get(mark.group().decode("ascii"))
        if data is None:  # not a mark of this call: left as written
            continue
        pieces += [body[at : mark.start()], data]
        at = mark.end()
    if not pieces:
        return None
    pieces.append(body[at:])
    return pieces


async def _send_once(request: Any) -> None:
    call = _call.get()
    sent, recordings = (call.sent, call.recordings) if call is not None else (None, {})
    if call is not None:
        call.sent = None  # once, for the first request (a retry's, or a request started from `sent`, is not)
    body = request.__dict__.get("_content")
    pieces = None
    if isinstance(body, bytes):
        pieces = _spliced(body, recordings) if recordings and b"@parley-audio-" in body else None
        if pieces is not None:
            request.headers["Content-Length"] = str(sum(len(piece) for piece in pieces))
        elif len(body) >= ONCE_BYTES:
            pieces = [body]
    elif _is_form(request):
        # A transcription's form (the recording and the model's name) is rendered in a dozen pieces, each
        # a write to the socket of its own; joined, it is one write, and dropped once written.
        pieces = [b"".join(request.stream)]
        request.stream = _SentOnce(pieces, sent)
        return
    if pieces is None:
        if sent is not None:
            sent()  # a small body: on its way as soon as this hook returns
        return
    del request._content
    request.stream = _SentOnce(pieces, sent)


def _is_form(request: Any) -> bool:
    """A multipart body of bytes already in memory (the SDK's upload of a recording given as bytes)."""
    return request.headers.get("content-type", "").startswith("multipart/form-data") and isinstance(
        request.stream, _http.SyncByteStream
    )


def http_client() -> Any:
    """The SDK's own default client (its timeouts, redirects) with the hook above, its requests carried by
    aiohttp within the SDK's connection limits (see `parley.model_transport`)."""
    return DefaultAsyncHttpxClient(
        event_hooks={"request": [_send_once]}, transport=AiohttpTransport(DEFAULT_CONNECTION_LIMITS)
    )


def _liftable(part: object) -> bool:
    """A recording's base64 in a message part, large enough to be worth lifting, that JSON would not escape
    (the API takes only base64 there; a quote or a backslash is refused rather than trusted)."""
    if not isinstance(part, dict) or part.get("type") != "input_audio":
        return False
    audio = part.get("input_audio")
    data = audio.get("data") if isinstance(audio, dict) else None
    return isinstance(data, str) and len(data) >= ONCE_BYTES and data.isascii() and '"' not in data and "\\" not in data


def _lift(message: dict[str, Any], call: _Call) -> dict[str, Any]:
    """The message with its recordings' base64 moved into `call`, marks in their place (a copy when it has
    any). Its own function so that nothing of the message given stays referenced once it returns: the
    caller may let the original go while the call lasts."""
    content = message.get("content")
    if not isinstance(content, list) or not any(_liftable(part) for part in content):
        return message
    parts = []
    for part in content:
        if _liftable(part):
            mark = f"@parley-audio-{secrets.token_hex(8)}@"
            call.recordings[mark] = part["input_audio"]["data"]
            part = {**part, "input_audio": {**part["input_audio"], "data": mark}}
        parts.append(part)
    return {**message, "content": parts}


def answered() -> None:
    """The request of the call in this context is being answered (a streamed reply has begun), so the SDK
    will not send it again: its recordings' base64 is let go now, not when the call ends, which for a
    streamed reply is once the model has finished speaking."""
    call = _call.get()
    if call is not None:
        call.recordings.clear()


@contextlib.contextmanager
def lifted(
    messages: list[dict[str, Any]], *, on_sent: Callable[[], None] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """The messages with each recording's base64 replaced by a mark, for the SDK of a client made by
    `http_client`, whose requests carry the base64 in its place until the block ends. The messages given
    are not changed (the parts that change are copies; the base64 itself is not copied). `on_sent` is
    called once: when the block's first request has been written, or at the latest when the block ends
    without an error (a call stopped before its request was written calls it never)."""
    call = _Call()
    called = False

    def sent() -> None:
        nonlocal called
        if not called and on_sent is not None:
            called = True
            outside = contextvars.copy_context()  # what `on_sent` starts (a transcription) is not of this call
            outside.run(_call.set, None)
            outside.run(on_sent)

    call.sent = sent if on_sent is not None else None
    token = _call.set(call)
    try:
        out = [_lift(message, call) for message in messages]
        yield out
    finally:
        _call.reset(token)
        call.recordings.clear()
        call.sent = None
    sent()  # only when the block ended as it should: a call stopped or failed before it was written started nothing
