"""A reply as the real API streams it (stream=true): server-sent `chat.completion.chunk` events.

The order follows what the real audio models send: a first delta with the role; the audio's id with the
first transcript piece; transcript pieces running ahead of the base64 pcm16 data pieces (whole samples,
24 kHz mono, in chunks of uneven size; the first data delta repeats role, content and refusal); a delta
with the finish_reason; then the final audio update carrying only `expires_at` (no finish_reason key);
with stream_options.include_usage, every chunk has "usage": null and a last chunk has the usage and no
choices; then `data: [DONE]`. A consumer that stops reading at the finish_reason misses the expiry, and
one that glues base64 pieces together before decoding them gets garbage, as with the real API.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from .chat_reply import Reply, completion_id

__all__ = ["chunks", "send_stream"]

# Sample counts of successive data pieces (cycled): uneven, like the real stream's.
_PIECE_SAMPLES = (2400, 4800, 3600, 1200, 6000)
_ARGUMENT_PIECE = 12


def _words(text: str) -> list[str]:
    """Transcript or content pieces: a word with its leading space, as the models' tokens come."""
    return re.findall(r"\s*\S+", text) or [text]


def _data_pieces(audio: bytes) -> list[bytes]:
    pieces, at, i = [], 0, 0
    while at < len(audio):
        size = 2 * _PIECE_SAMPLES[i % len(_PIECE_SAMPLES)]
        pieces.append(audio[at : at + size])
        at, i = at + size, i + 1
    return pieces


def _audio_deltas(reply: Reply) -> Iterator[dict[str, Any]]:
    assert reply.audio is not None and reply.audio_id is not None
    words = _words(reply.text)
    data = _data_pieces(reply.audio)
    yield {"content": None, "audio": {"id": reply.audio_id, "transcript": words[0]}}
    # Interleave by position in the reply, transcript slightly ahead of the audio it describes.
    events: list[tuple[float, int, dict[str, Any]]] = []
    for k, word in enumerate(words[1:], start=1):
        events.append((0.9 * k / len(words), 0, {"audio": {"transcript": word}}))
    for k, piece in enumerate(data):
        encoded = base64.b64encode(piece).decode("ascii")
        delta: dict[str, Any] = {"audio": {"data": encoded}}
        if k == 0:
            first = {"id": reply.audio_id, "data": encoded}
            delta = {"role": "assistant", "content": None, "refusal": None, "audio": first}
        events.append(((k + 1) / len(data), 1, delta))
    for _, _, delta in sorted(events, key=lambda e: (e[0], e[1])):
        yield delta


def _tool_deltas(reply: Reply) -> Iterator[dict[str, Any]]:
    for index, call in enumerate(reply.tool_calls):
        function = {"name": call["function"]["name"], "arguments": ""}
        head = {"index": index, "id": call["id"], "type": "function", "function": function}
        if index == 0:
            yield {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
        else:
            yield {"tool_calls": [head]}
        arguments = call["function"]["arguments"]
        for at in range(0, len(arguments), _ARGUMENT_PIECE):
            piece = arguments[at : at + _ARGUMENT_PIECE]
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def chunks(reply: Reply, include_usage: bool) -> Iterator[dict[str, Any]]:
    """Every chunk of the reply, in order (without the final [DONE])."""
    base: dict[str, Any] = {
        "id": completion_id(),
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "service_tier": "default",
        "system_fingerprint": f"fp_{secrets.token_hex(5)}",
    }

    def chunk(choice: dict[str, Any] | None) -> dict[str, Any]:
        body = {**base, "choices": [] if choice is None else [{"index": 0, **choice}]}
        if include_usage:
            body["usage"] = None
        body["obfuscation"] = secrets.token_urlsafe(6)
        return body

    if reply.tool_calls:
        deltas: Iterator[dict[str, Any]] = _tool_deltas(reply)
    elif reply.spoken:
        yield chunk({"delta": {"role": "assistant", "refusal": None}, "logprobs": None, "finish_reason": None})
        deltas = _audio_deltas(reply)
    else:
        opening = {"role": "assistant", "content": "", "refusal": None}
        yield chunk({"delta": opening, "logprobs": None, "finish_reason": None})
        deltas = ({"content": word} for word in _words(reply.text))
    for delta in deltas:
        yield chunk({"delta": delta, "logprobs": None, "finish_reason": None})
    yield chunk({"delta": {}, "logprobs": None, "finish_reason": reply.finish_reason})
    if reply.spoken:
        yield chunk({"delta": {"audio": {"expires_at": reply.expires_at}}, "logprobs": None})
    if include_usage:
        last = chunk(None)
        last["usage"] = reply.usage
        yield last


_MARK = "@pcm16@"
"""Stands in for a piece's base64 while its chunk is serialised (no base64 or id contains "@")."""


def _event(body: dict[str, Any]) -> bytes:
    """One server-sent event, as `json.dumps` writes the chunk. A piece's base64 (most of a reply's bytes)
    is put in after serialising the rest: it needs no escaping, so scanning it for some would be waste."""
    choices = body.get("choices") or [{}]
    audio = (choices[0].get("delta") or {}).get("audio") or {}
    data = audio.get("data")
    if not isinstance(data, str):
        return f"data: {json.dumps(body)}\n\n".encode()
    audio["data"] = _MARK
    try:
        text = json.dumps(body)
    finally:
        audio["data"] = data
    head, _, tail = text.partition(f'"{_MARK}"')
    return f'data: {head}"{data}"{tail}\n\n'.encode()


TICK = 0.05
"""The stand-in writes at most this often: the chunks due since its last write go out together, as they would
reach a client in one read from a real network. Waking for each of a reply's ~180 chunks would cost the
machine more CPU than the bot's whole turn, on the cores the benchmark measures the bot on."""


async def send_stream(
    request: web.Request,
    reply: Reply,
    include_usage: bool,
    *,
    first_delay: float,
    spread: float,
    headers: dict[str, str],
    cut_after: int | None = None,
) -> tuple[web.StreamResponse, list[dict[str, Any]]]:
    """Write the reply as server-sent events: the first chunk after `first_delay` seconds, the rest due evenly
    over `spread` seconds (written at most every TICK, those due by then together); with `cut_after`, drop
    the connection after that many chunks, as a network or the API sometimes does mid-stream. Returns the
    response and the chunks sent (for the record)."""
    response = web.StreamResponse(
        status=200,
        headers={**headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"},
    )
    all_chunks = list(chunks(reply, include_usage))
    events = [_event(body) for body in all_chunks]
    events.append(b"data: [DONE]\n\n")
    cut = cut_after is not None and cut_after < len(all_chunks)
    end = cut_after if cut_after is not None and cut else len(events)
    if first_delay > 0:
        await asyncio.sleep(first_delay)
    await response.prepare(request)
    loop = asyncio.get_running_loop()
    gap = spread / max(len(all_chunks) - 1, 1)
    started, sent = loop.time(), 0

    def at(index: int) -> float:  # [DONE] follows the last chunk at once
        return started + min(index, len(all_chunks) - 1) * gap

    while sent < end:
        now = loop.time()
        if at(sent) > now:
            await asyncio.sleep(max(at(sent) - now, TICK))
            now = loop.time()
        due = sent + 1
        while due < end and at(due) <= now:
            due += 1
        await response.write(b"".join(events[sent:due]))
        sent = due
    if cut and cut_after is not None:
        if request.transport is not None:
            request.transport.abort()
        return response, all_chunks[:cut_after]
    await response.write_eof()
    return response, all_chunks
