"""Chat Completions requests checked as the real API checks them, with its error wording.

What the real API rejects, the stand-in rejects: unknown parameters and models, malformed messages, audio
parts that are not valid base64 WAV/MP3, an assistant audio id that expired, audio output without a voice
or format, n > 1 with audio.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any

from ..audio import AudioDecodeError, InvalidWav, _is_mp3, decode_duration, parse_wav
from .chat_tools import check_tool_messages, check_tools
from .errors import UNDECODABLE, OpenAIAPIError, invalid, supported
from .models import (
    AUDIO_CHAT_MODELS,
    CHAT_MODELS,
    CHAT_PARAMS,
    CONTENT_PART_TYPES,
    INPUT_AUDIO_FORMATS,
    OUTPUT_FORMATS,
    ROLES,
    VOICES,
)
from .records import RecordedRequest

__all__ = ["ChatPlan", "check_input_audio", "validate_chat"]


@dataclass(frozen=True)
class ChatPlan:
    """What a valid request asks for: the model, whether to speak (voice, format), the audio it heard last."""

    model: str
    wants_audio: bool
    format: str | None
    voice: str | None
    last_user_audio: list[float] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    """stream_options.include_usage: a last chunk with the usage and no choices."""


async def validate_chat(
    body: dict[str, Any], record: RecordedRequest, audio_ids: dict[str, dict[str, Any]]
) -> ChatPlan:
    """Check a chat request as the real API does, in its order; what the answer must be made of."""
    model = body.get("model")
    if not model:
        raise invalid("you must provide a model parameter", code=None)
    for name in body:
        if name not in CHAT_PARAMS:
            raise invalid(f"Unrecognized request argument supplied: {name}", code=None)
    if not isinstance(model, str) or model not in CHAT_MODELS:
        raise OpenAIAPIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    audio_model = model in AUDIO_CHAT_MODELS
    messages = body.get("messages")
    if messages is None:
        raise invalid("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise invalid(
            "Invalid type for 'messages': expected an array, but got an object instead.",
            "messages",
            "invalid_type",
        )
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
            "array instead.",
            "messages",
            "empty_array",
        )
    record.messages = messages
    has_input_audio = False
    last_user_audio: list[float] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise invalid(
                f"Invalid type for 'messages[{i}]': expected an object.", f"messages[{i}]", "invalid_type"
            )
        role = msg.get("role")
        if role is None:
            raise invalid(
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
        if role not in ROLES:
            raise invalid(
                f"Invalid value: '{role}'. Supported values are: {supported(ROLES)}.",
                f"messages[{i}].role",
            )
        content = msg.get("content")
        if role == "assistant" and content is None:
            audio = msg.get("audio")
            if not msg.get("tool_calls") and not (isinstance(audio, dict) and audio.get("id")):
                raise invalid(
                    "Invalid value for 'content': expected a string, got null.",
                    f"messages.[{i}].content",
                    None,
                )
        elif content is None:
            raise invalid(
                f"Missing required parameter: 'messages[{i}].content'.",
                f"messages[{i}].content",
                "missing_required_parameter",
            )
        elif not isinstance(content, str | list):
            raise invalid(
                f"Invalid type for 'messages[{i}].content': expected one of a string or array of "
                "objects, but got an object instead.",
                f"messages[{i}].content",
                "invalid_type",
            )
        if role == "assistant" and isinstance(msg.get("audio"), dict):
            audio_id = msg["audio"].get("id")
            known = audio_ids.get(str(audio_id))
            if known is None or known["expires_at"] < time.time():
                raise invalid(f"Audio with ID {audio_id} not found.", f"messages[{i}].audio", None)
        if role == "tool" and not msg.get("tool_call_id"):
            raise invalid(
                f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                f"messages[{i}].tool_call_id",
                "missing_required_parameter",
            )
        if not isinstance(content, list):
            if role == "user":
                last_user_audio = []
            continue
        if role == "user":
            last_user_audio = []
        allowed = {
            "user": ("text", "image_url", "input_audio", "file"),
            "assistant": ("text", "refusal"),
        }.get(role, ("text",))
        for j, part in enumerate(content):
            where = f"messages[{i}].content[{j}]"
            if not isinstance(part, dict):
                raise invalid(f"Invalid type for '{where}': expected an object.", where, "invalid_type")
            ptype = part.get("type")
            if ptype not in CONTENT_PART_TYPES:
                raise invalid(
                    f"Invalid value: '{ptype}'. Supported values are: {supported(CONTENT_PART_TYPES)}.",
                    f"{where}.type",
                )
            if ptype not in allowed:
                raise invalid(
                    f"Invalid value: '{ptype}'. Supported values are: {supported(allowed)}.",
                    f"{where}.type",
                )
            if ptype == "text" and not isinstance(part.get("text"), str):
                raise invalid(
                    f"Missing required parameter: '{where}.text'.",
                    f"{where}.text",
                    "missing_required_parameter",
                )
            if ptype == "input_audio":
                if not audio_model:
                    raise invalid(
                        "Invalid content type. input_audio is only supported by certain models.",
                        f"messages.[{i}].content.[{j}].type",
                        None,
                    )
                seconds = await check_input_audio(part.get("input_audio"), where, record)
                has_input_audio = True
                if role == "user":
                    last_user_audio.append(seconds)
    check_tool_messages(messages)
    check_tools(body)
    modalities = body.get("modalities") or ["text"]
    if not isinstance(modalities, list):
        raise invalid("Invalid type for 'modalities': expected an array.", "modalities", "invalid_type")
    for k, mod in enumerate(modalities):
        if mod not in ("text", "audio"):
            raise invalid(f"Invalid value: '{mod}'. Supported values are: 'text' and 'audio'.", f"modalities[{k}]")
    wants_audio = "audio" in modalities
    out_format = None
    if wants_audio:
        if not audio_model:
            raise invalid("This model does not support the audio modality.", "modalities", "invalid_value")
        audio = body.get("audio")
        if not isinstance(audio, dict):
            raise invalid("Missing required parameter: 'audio'.", "audio", "missing_required_parameter")
        voice = audio.get("voice")
        if voice is None:
            raise invalid(
                "Missing required parameter: 'audio.voice'.", "audio.voice", "missing_required_parameter"
            )
        if voice not in VOICES:
            raise invalid(f"Invalid value: '{voice}'. Supported values are: {supported(VOICES)}.", "audio.voice")
        out_format = audio.get("format")
        if out_format is None:
            raise invalid(
                "Missing required parameter: 'audio.format'.",
                "audio.format",
                "missing_required_parameter",
            )
        if out_format not in OUTPUT_FORMATS:
            raise invalid(
                f"Invalid value: '{out_format}'. Supported values are: {supported(OUTPUT_FORMATS)}.",
                "audio.format",
            )
    if audio_model and not wants_audio and not has_input_audio:
        raise invalid("This model requires that either input content or output modality contain audio.", "model")
    stream = _check_stream(body, out_format if wants_audio else None)
    n = body.get("n", 1)
    if n not in (None, 1) and wants_audio:
        raise invalid("Audio output only supports n=1.", "n")
    return ChatPlan(
        model=model,
        wants_audio=wants_audio,
        format=out_format,
        voice=(body.get("audio") or {}).get("voice"),
        last_user_audio=last_user_audio,
        stream=stream,
        include_usage=stream and bool((body.get("stream_options") or {}).get("include_usage")),
    )


def _check_stream(body: dict[str, Any], out_format: str | None) -> bool:
    """stream and stream_options as the real API takes them: audio streams only as pcm16, and pcm16 only
    streams; stream_options only with stream."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", None
            )
        if not isinstance(options, dict):
            raise invalid(
                "Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type"
            )
        for key in options:
            if key not in ("include_usage", "include_obfuscation"):
                raise invalid(f"Unrecognized request argument supplied: stream_options.{key}", code=None)
    if out_format is not None:
        if stream and out_format != "pcm16":
            raise invalid(
                f"Unsupported value: 'audio.format' does not support '{out_format}' when stream=true. "
                "Supported values are: 'pcm16'.",
                "audio.format",
                "unsupported_value",
            )
        if not stream and out_format == "pcm16":
            others = [f for f in OUTPUT_FORMATS if f != "pcm16"]
            raise invalid(
                f"Unsupported value: 'audio.format' does not support 'pcm16' when stream=false. "
                f"Supported values are: {supported(others)}.",
                "audio.format",
                "unsupported_value",
            )
    return bool(stream)

async def check_input_audio(spec: Any, where: str, record: RecordedRequest) -> float:
    """Validate one input_audio part (format, base64, decodable audio); returns its length in seconds."""
    if not isinstance(spec, dict):
        raise invalid(
            f"Missing required parameter: '{where}.input_audio'.",
            f"{where}.input_audio",
            "missing_required_parameter",
        )
    fmt = spec.get("format")
    if fmt not in INPUT_AUDIO_FORMATS:
        raise invalid(
            f"Invalid value: '{fmt}'. Supported values are: {supported(INPUT_AUDIO_FORMATS)}.",
            f"{where}.input_audio.format",
        )
    data = spec.get("data")
    if not isinstance(data, str) or not data:
        raise invalid(
            f"Missing required parameter: '{where}.input_audio.data'.",
            f"{where}.input_audio.data",
            "missing_required_parameter",
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid(
            f"Invalid '{where}.input_audio.data': expected base64-encoded audio data.",
            f"{where}.input_audio.data",
        ) from exc
    if fmt == "wav":
        try:
            info = parse_wav(raw)
        except InvalidWav as exc:
            record.audio_inputs.append(raw)
            raise invalid(UNDECODABLE, "messages") from exc
        record.audio_inputs.append(info)
        record.audio_input_seconds.append(info.duration)
        return info.duration
    record.audio_inputs.append(raw)
    if not _is_mp3(raw):
        raise invalid(UNDECODABLE, "messages")
    try:
        seconds = await asyncio.to_thread(decode_duration, raw)
    except AudioDecodeError as exc:
        raise invalid(UNDECODABLE, "messages") from exc
    record.audio_input_seconds.append(seconds)
    return seconds
