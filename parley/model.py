"""The model client: the one place that talks to the OpenAI API (through the openai SDK).

The engine hands it chat messages and gets back text, WAV audio and usage; every SDK exception is
turned into a ModelError with a plain user message, so nothing above this layer knows openai's types.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from typing import Any

import openai
from openai import AsyncOpenAI

from parley.audio import WavAudio, normalise_wav
from parley.errors import AudioError, ModelBusy, ModelError, ModelRejected, ModelTimeout
from parley.metrics import Metrics
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


def _translate(exc: openai.OpenAIError, purpose: str) -> ModelError:
    """Map the SDK's exceptions (raised after its own retries) onto errors with plain user messages."""
    detail = f"{purpose}: {type(exc).__name__}: {exc}"
    if isinstance(exc, openai.APITimeoutError):
        return ModelTimeout(detail)
    if isinstance(exc, openai.RateLimitError | openai.InternalServerError | openai.APIConnectionError):
        return ModelBusy(detail)
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return ModelRejected(detail)
    # Authentication, permission, unknown model: the operator's problem; the user still gets a plain line.
    return ModelError(detail)


class ModelClient:
    def __init__(
        self, client: AsyncOpenAI, *, model: str, transcribe_model: str, metrics: Metrics | None = None
    ) -> None:
        self._client = client
        self.model = model
        self.transcribe_model = transcribe_model
        self.metrics = metrics or Metrics()

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
            completion = await self._client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                **output,
            )
        except openai.OpenAIError as exc:
            error = _translate(exc, "reply")
            self.metrics.model_call("reply", type(error).__name__, time.perf_counter() - started)
            raise error from exc
        self.metrics.model_call("reply", "ok", time.perf_counter() - started)
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
        except openai.OpenAIError as exc:
            raise _translate(exc, "summary") from exc
        if not completion.choices or not (completion.choices[0].message.content or "").strip():
            raise ModelError("summary: the model returned no text")
        return completion.choices[0].message.content.strip(), _usage(completion.model or model, completion.usage)

    async def listen(
        self,
        instructions: str,
        audio: bytes,
        audio_format: str,
        *,
        response_format: dict[str, Any] | None = None,
    ) -> tuple[str, Usage]:
        """Audio in, text out, with the audio model: transcripts with nuance, tone analysis."""
        content = [
            {"type": "text", "text": instructions},
            {
                "type": "input_audio",
                "input_audio": {"data": base64.b64encode(audio).decode("ascii"), "format": audio_format},
            },
        ]
        options: dict[str, Any] = {"response_format": response_format} if response_format else {}
        try:
            completion = await self._client.chat.completions.create(
                model=self.model,
                modalities=["text"],
                messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
                **options,
            )
        except openai.OpenAIError as exc:
            raise _translate(exc, "listen") from exc
        text = (completion.choices[0].message.content or "").strip() if completion.choices else ""
        if not text:
            raise ModelError("listen: the model returned no text")
        return text, _usage(completion.model or self.model, completion.usage)

    async def transcribe(self, wav: WavAudio) -> tuple[str, Usage]:
        started = time.perf_counter()
        try:
            result = await self._client.audio.transcriptions.create(
                model=self.transcribe_model, file=("voice.wav", wav.data, "audio/wav")
            )
        except openai.OpenAIError as exc:
            error = _translate(exc, "transcription")
            self.metrics.model_call("transcription", type(error).__name__, time.perf_counter() - started)
            raise error from exc
        self.metrics.model_call("transcription", "ok", time.perf_counter() - started)
        usage = _usage(self.transcribe_model, getattr(result, "usage", None))
        self.metrics.usage(usage)
        return (result.text or "").strip(), usage
