"""The model client: the one place that talks to the OpenAI API (through the openai SDK).

The engine hands it chat messages and gets back text, WAV audio and usage; every SDK exception is
turned into a ModelError with a plain user message, so nothing above this layer knows openai's types.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import openai
import pybase64
from openai import AsyncOpenAI
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion

from parley.audio import WavAudio, normalise_wav
from parley.audio.uploads import Upload
from parley.errors import AudioError, ModelBusy, ModelError, ModelRejected, ModelTimeout, ModelUnavailable
from parley.metrics import Metrics
from parley.model_http import answered, lifted
from storage import Usage

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One function call as the model made it: `arguments` is the JSON text it wrote, unchecked."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ModelReply:
    text: str
    audio: WavAudio | None
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    """When not empty, the model wants these run before it answers; text and audio may then be empty."""
    streamed_seconds: float = 0.0
    """A streamed reply's audio went elsewhere as it arrived (`audio` is None): how long it was."""

    @property
    def audio_seconds(self) -> float | None:
        """How long the spoken reply is; None when the model sent no audio."""
        if self.audio is not None:
            return self.audio.duration
        return self.streamed_seconds or None


PCM16_RATE = 24_000
"""Streamed audio comes as pcm16: 16-bit little-endian samples, 24 kHz, mono."""


@dataclass(frozen=True, slots=True)
class StreamedReply:
    """A streamed reply: its audio went to the caller piece by piece; what remains is its words."""

    text: str
    audio_seconds: float
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(slots=True)
class _StreamState:
    """What the chunks of a streamed reply add up to."""

    transcript: list[str] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    model: str | None = None
    pcm_bytes: int = 0
    finish_reason: str | None = None

    def take(self, data: str) -> bytes:
        """Read one chunk; return the audio it carries (each piece is base64 on its own, never glued)."""
        chunk = json.loads(data)
        if chunk.get("error"):
            raise ModelError(f"reply: the stream reported an error: {str(chunk['error'])[:200]}")
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        pcm = b""
        for choice in chunk.get("choices") or ():
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            delta = choice.get("delta") or {}
            audio = delta.get("audio") or {}
            if audio.get("transcript"):
                self.transcript.append(audio["transcript"])
            if audio.get("data"):
                pcm += _pcm(audio["data"])
            if delta.get("content"):
                self.content.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                entry = self.calls.setdefault(int(call.get("index", 0)), {"id": "", "name": "", "arguments": ""})
                function = call.get("function") or {}
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] = function.get("name") or entry["name"]
                entry["arguments"] += function.get("arguments") or ""
        self.pcm_bytes += len(pcm)
        return pcm

    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(self.calls.items()) if c["name"])


def _pcm(data: str) -> bytes:
    """A piece's audio. Most of a streamed reply's bytes are its base64, so it is decoded with pybase64's
    vectorised decoder, which takes canonical base64 only; anything else is decoded as leniently as the
    standard library does (or fails as it does)."""
    try:
        return pybase64.b64decode(data, validate=True)
    except ValueError:
        return base64.b64decode(data)


STREAM_READ_GAP = 0.1
"""How often a streamed reply is read at most. Each wake-up of the event loop for a chunk costs more than
the chunk itself (the README's Audio section has the figures), so the bytes are left to gather in the
socket for up to this long; the voice note is ready at most this much later."""


NETWORK_WAIT = 0.005
"""A piece that took longer than this to come was waited for (a read of the socket), not already at hand."""


async def _gathered(
    pieces: AsyncIterator[bytes], gap: float, ending: Callable[[], bool] = lambda: False
) -> AsyncIterator[bytes]:
    """The pieces, read so that whatever arrives within `gap` seconds is taken in one read: after a piece
    that had to be waited for (the network), the reader pauses for `gap` and lets the next ones gather in
    the socket. Pieces already received (one read often holds many HTTP chunks) pass without a pause, and
    so does everything once `ending()` says the rest follows at once (the reply's last chunks)."""
    loop = asyncio.get_running_loop()
    asked = loop.time()
    async for piece in pieces:
        waited = loop.time() - asked > NETWORK_WAIT
        yield piece
        if waited and not ending():
            await asyncio.sleep(gap)
        asked = loop.time()


class _SseEvents:
    """Server-sent events from raw bytes: the text of each `data:` line but the final [DONE]. Only what
    the API sends is handled (one `data:` line an event; comments and other fields are skipped)."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, piece: bytes) -> list[str]:
        text = self._rest + piece
        end = text.rfind(b"\n") + 1
        self._rest = text[end:]
        found = []
        for line in text[:end].splitlines():
            if line.startswith(b"data:") and line != b"data: [DONE]":
                found.append(line[5:].decode("utf-8"))
        return found


def _broken_stream(exc: Exception) -> bool:
    """A connection that failed mid-stream, or a chunk that is not JSON: raised by the SDK's HTTP library
    (httpx, or the fork some SDK versions vendor), not translated by the SDK once the stream has begun."""
    return isinstance(exc, OSError | ValueError) or type(exc).__module__.split(".")[0] in {
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "h11",
    }


def _as_sent(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The messages as the SDK's `create` is given them: as the body's own `messages`, through `extra_body`
    (which the SDK documents to take precedence over a parameter of the same name), the typed parameter left
    empty. The SDK transforms its typed parameters by walking each message against every member of its union
    types (a message is one of six, a part of one of several), which with a conversation's history costs
    more CPU than all the rest of a voice turn's Python, and changes nothing in plain JSON like Parley's."""
    return {"messages": (), "extra_body": {"messages": messages}}


def _usage(model: str, usage: Any) -> Usage:
    if usage is None:
        return Usage(model=model)
    # Chat completions call it prompt_tokens_details; transcriptions input_token_details.
    prompt_details = getattr(usage, "prompt_tokens_details", None) or getattr(usage, "input_token_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    return Usage(
        model=model,
        prompt_tokens=getattr(usage, "prompt_tokens", None) or getattr(usage, "input_tokens", None) or 0,
        completion_tokens=getattr(usage, "completion_tokens", None) or getattr(usage, "output_tokens", None) or 0,
        prompt_audio_tokens=getattr(prompt_details, "audio_tokens", None) or 0,
        completion_audio_tokens=getattr(completion_details, "audio_tokens", None) or 0,
        cached_tokens=getattr(prompt_details, "cached_tokens", None) or 0,
    )


M = TypeVar("M")


def _checked(result: object, expected: type[M], purpose: str) -> M:
    """The SDK hands back the body as a plain string when it is not JSON: a model error, not a crash."""
    if not isinstance(result, expected):
        raise ModelError(f"{purpose}: unreadable response")
    return result


def _translate(exc: openai.OpenAIError, purpose: str) -> ModelError:
    """Map the SDK's exceptions (raised after its own retries) onto errors with plain user messages."""
    detail = f"{purpose}: {type(exc).__name__}: {exc}"
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout(detail)
    if isinstance(exc, openai.RateLimitError):
        return ModelBusy(detail)
    if isinstance(exc, openai.InternalServerError | openai.APIConnectionError):
        return ModelUnavailable(detail)
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return ModelRejected(detail)
    # Authentication, permission, unknown model: the operator's problem; the user still gets a plain line.
    return ModelError(detail)


class ModelClient:
    def __init__(
        self,
        client: AsyncOpenAI,
        *,
        model: str,
        transcribe_model: str,
        metrics: Metrics | None = None,
        lift_audio: bool = False,
    ) -> None:
        self._client = client
        self.model = model
        self.transcribe_model = transcribe_model
        self.metrics = metrics or Metrics()
        self.lift_audio = lift_audio
        """The client was made by `parley.model_http.http_client`: recordings' base64 skips the SDK's JSON."""

    @contextlib.asynccontextmanager
    async def _sendable(
        self, messages: list[dict[str, Any]], on_sent: Callable[[], None] | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The messages as handed to the SDK for the length of a call (see `lift_audio`); `on_sent` is called
        once the call's request has been written (without `lift_audio`, which cannot tell: at once)."""
        if not self.lift_audio:
            if on_sent is not None:
                on_sent()
            yield messages
            return
        with lifted(messages, on_sent=on_sent) as sendable:
            yield sendable

    async def close(self) -> None:
        await self._client.close()

    async def reply(
        self,
        messages: list[dict[str, Any]],
        *,
        voice: str,
        model: str | None = None,
        speak: bool = True,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> ModelReply:
        """One call, speech in and speech out: text + WAV audio (or text alone if the model sends no audio).

        `model` is the user's choice (/model), else PARLEY_MODEL; on Azure, a deployment name. With
        `speak=False` (a user who reads, and sent audio) only text is asked for: audio out costs the most.
        With `tools`, the reply may instead be calls to them (`tool_calls`); `tool_choice="none"` asks for
        an answer without further calls."""
        model = model or self.model
        started = time.perf_counter()
        output: dict[str, Any] = (
            {"modalities": ["text", "audio"], "audio": {"voice": voice, "format": "wav"}}
            if speak
            else {"modalities": ["text"]}
        )
        if tools:
            output["tools"] = tools
            if tool_choice is not None:
                output["tool_choice"] = tool_choice
        try:
            async with self._sendable(messages, on_sent) as sendable:
                completion = await self._client.chat.completions.create(model=model, **_as_sent(sendable), **output)
        except ValueError as exc:  # a 200 whose body is not JSON: the service's fault, worth another try
            self.metrics.model_call("reply", "ModelError", time.perf_counter() - started)
            raise ModelError("reply: unreadable response") from exc
        except openai.OpenAIError as exc:
            error = _translate(exc, "reply")
            self.metrics.model_call("reply", type(error).__name__, time.perf_counter() - started)
            raise error from exc
        self.metrics.model_call("reply", "ok", time.perf_counter() - started)
        completion = _checked(completion, ChatCompletion, "reply")
        if not completion.choices:
            raise ModelError("reply: the completion has no choices")
        message = completion.choices[0].message
        usage = _usage(completion.model or model, completion.usage)
        self.metrics.usage(usage)
        audio: WavAudio | None = None
        text = ""
        if message.audio is not None:
            text = message.audio.transcript or ""
            try:
                audio = normalise_wav(base64.b64decode(message.audio.data))
            except (AudioError, ValueError) as exc:
                log.warning("model audio unusable, replying with text: %s", exc)
        if not text:
            text = message.content or message.refusal or ""
        calls = tuple(
            ToolCall(call.id, call.function.name, call.function.arguments)
            for call in message.tool_calls or ()
            if call.type == "function"
        )
        if not text.strip() and audio is None and not calls:
            raise ModelError("reply: the model returned neither audio nor text")
        return ModelReply(text=text.strip(), audio=audio, usage=usage, tool_calls=calls)

    async def reply_stream(
        self,
        messages: list[dict[str, Any]],
        *,
        voice: str,
        on_audio: Callable[[bytes], Awaitable[None]],
        model: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> StreamedReply:
        """The reply streamed (stream=True): its audio, 16-bit PCM at PCM16_RATE, handed to `on_audio` piece
        by piece as it arrives (to be encoded meanwhile), its transcript and usage returned at the end.

        Server-sent events are read as raw bytes through the SDK's streaming response rather than as
        its typed chunks: a reply is a few hundred chunks, and building a typed object for each costs
        more CPU than the rest of the turn's Python. The bytes are read at most every STREAM_READ_GAP
        seconds, several chunks at a time (see _gathered), and the audio of each read is handed on at once,
        in one piece; once the model has finished (its finish_reason), the rest is read without pausing."""
        model = model or self.model
        started = time.perf_counter()
        options: dict[str, Any] = {
            "modalities": ["text", "audio"],
            "audio": {"voice": voice, "format": "pcm16"},
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            options["tools"] = tools
            if tool_choice is not None:
                options["tool_choice"] = tool_choice
        state = _StreamState()
        try:
            async with (
                self._sendable(messages, on_sent) as sendable,
                self._client.chat.completions.with_streaming_response.create(
                    model=model, **_as_sent(sendable), **options
                ) as response,
            ):
                answered()  # the request, answered, is never sent again: its recording can go
                events = _SseEvents()
                pieces = _gathered(response.iter_bytes(), STREAM_READ_GAP, lambda: state.finish_reason is not None)
                async for piece in pieces:
                    pcm = b"".join([state.take(data) for data in events.feed(piece)])
                    if pcm:
                        await on_audio(pcm)
        except openai.OpenAIError as exc:
            error = _translate(exc, "reply")
            self.metrics.model_call("reply", type(error).__name__, time.perf_counter() - started)
            raise error from exc
        except Exception as exc:
            if not _broken_stream(exc):
                raise
            self.metrics.model_call("reply", "ModelUnavailable", time.perf_counter() - started)
            raise ModelUnavailable(f"reply: the stream broke off: {type(exc).__name__}: {exc}") from exc
        if state.finish_reason is None:
            self.metrics.model_call("reply", "ModelUnavailable", time.perf_counter() - started)
            raise ModelUnavailable("reply: the stream ended before the model finished")
        self.metrics.model_call("reply", "ok", time.perf_counter() - started)
        usage = _usage(state.model or model, CompletionUsage.model_validate(state.usage) if state.usage else None)
        self.metrics.usage(usage)
        text = "".join(state.transcript).strip() or "".join(state.content).strip()
        calls = state.tool_calls()
        if not text and not state.pcm_bytes and not calls:
            raise ModelError("reply: the stream carried neither audio nor text")
        return StreamedReply(text=text, audio_seconds=state.pcm_bytes / (2 * PCM16_RATE), usage=usage, tool_calls=calls)

    async def text(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> tuple[str, Usage]:
        """A plain text completion with a cheap model (summaries): no audio in or out; with a JSON schema as
        `response_format` when the answer is structured (cited points)."""
        options: dict[str, Any] = {"max_completion_tokens": max_tokens} if max_tokens else {}
        if response_format:
            options["response_format"] = response_format
        try:
            completion = await self._client.chat.completions.create(model=model, messages=messages, **options)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ModelError("summary: unreadable response") from exc
        except openai.OpenAIError as exc:
            raise _translate(exc, "summary") from exc
        completion = _checked(completion, ChatCompletion, "summary")
        content = (completion.choices[0].message.content or "").strip() if completion.choices else ""
        if not content:
            raise ModelError("summary: the model returned no text")
        return content, _usage(completion.model or model, completion.usage)

    async def listen(
        self,
        instructions: str,
        audio: bytes,
        audio_format: str,
        *,
        response_format: dict[str, Any] | None = None,
    ) -> tuple[str, Usage]:
        """Audio in, text out, with the audio model: transcripts with nuance, tone analysis."""
        content: list[dict[str, Any]] = [
            {"type": "text", "text": instructions},
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(audio).decode("ascii"), "format": audio_format},
            },
        ]
        options: dict[str, Any] = {"response_format": response_format} if response_format else {}
        messages: list[Any] = [{"role": "user", "content": content}]  # the SDK's TypedDicts, built as plain dicts
        try:
            async with self._sendable(messages) as sendable:
                completion = await self._client.chat.completions.create(
                    model=self.model,
                    modalities=["text"],
                    messages=sendable,  # type: ignore[arg-type]
                    **options,
                )
        except ValueError as exc:
            raise ModelError("listen: unreadable response") from exc
        except openai.OpenAIError as exc:
            raise _translate(exc, "listen") from exc
        completion = _checked(completion, ChatCompletion, "listen")
        text = (completion.choices[0].message.content or "").strip() if completion.choices else ""
        if not text:
            raise ModelError("listen: the model returned no text")
        return text, _usage(completion.model or self.model, completion.usage)

    async def transcribe(self, upload: Upload) -> tuple[str, Usage]:
        """A recording's words; `upload` is the file as `parley.audio.uploads.for_transcription` chose it."""
        started = time.perf_counter()
        try:
            result = await self._client.audio.transcriptions.create(model=self.transcribe_model, file=upload)
        except ValueError as exc:
            self.metrics.model_call("transcription", "ModelError", time.perf_counter() - started)
            raise ModelError("transcription: unreadable response") from exc
        except openai.OpenAIError as exc:
            error = _translate(exc, "transcription")
            self.metrics.model_call("transcription", type(error).__name__, time.perf_counter() - started)
            raise error from exc
        self.metrics.model_call("transcription", "ok", time.perf_counter() - started)
        if not isinstance(getattr(result, "text", None), str):
            raise ModelError("transcription: unreadable response")
        usage = _usage(self.transcribe_model, getattr(result, "usage", None))
        self.metrics.usage(usage)
        return (result.text or "").strip(), usage
