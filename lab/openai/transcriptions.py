"""/v1/audio/transcriptions as the real API answers it: models, formats, size limit, language, usage."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import BodyPartReader, web

from ..audio import AudioDecodeError, InvalidWav, decode_duration, ogg_seconds, parse_wav, sniff_audio_format
from .errors import UNDECODABLE, OpenAIAPIError, invalid
from .models import (
    CHAT_MODELS,
    GPT_TRANSCRIBE_EXTENSIONS,
    TRANSCRIBE_CONTAINERS,
    TRANSCRIBE_EXTENSIONS,
    TRANSCRIBE_LIMIT,
    TRANSCRIPTION_MODELS,
)
from .records import RecordedRequest
from .script import Script

__all__ = ["read_upload", "transcriptions"]


async def read_upload(request: web.Request, record: RecordedRequest) -> None:
    """Read the multipart form into the record (files and fields), refusing any other content type."""
    if request.content_type != "multipart/form-data":
        raise invalid(
            f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data. "
            "(HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')",
            code=None,
        )
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            record.files[part.name] = (part.filename, bytes(await part.read(decode=False)))
        else:
            record.form[part.name] = await part.text()


async def transcriptions(record: RecordedRequest, script: Script, model_override: str | None = None) -> tuple[Any, str]:
    """Answer an upload read by read_upload: (body, content type); failures raise OpenAIAPIError."""
    form = {**record.form, "model": model_override} if model_override else record.form
    model = form.get("model")
    if not model:
        raise invalid("you must provide a model parameter", code=None)
    if model not in TRANSCRIPTION_MODELS:
        if model in CHAT_MODELS:
            raise invalid(f"Invalid value for 'model' = {model}.", "model")
        raise OpenAIAPIError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    upload = record.files.get("file")
    if upload is None:
        raise invalid("Missing required parameter: 'file'.", "file", "missing_required_parameter")
    filename, data = upload
    if len(data) > TRANSCRIBE_LIMIT:
        raise OpenAIAPIError(
            413,
            f"Maximum content size limit ({TRANSCRIBE_LIMIT}) exceeded ({len(data)} bytes read)",
            type="server_error",
        )
    response_format = form.get("response_format", "json")
    gpt4o = model.startswith("gpt-4o")
    allowed_formats: tuple[str, ...] = ("json", "text") if gpt4o else ("json", "text", "srt", "verbose_json", "vtt")
    if model == "gpt-4o-transcribe-diarize":
        allowed_formats = ("json", "text", "diarized_json")
    if response_format not in allowed_formats:
        raise invalid(
            f"response_format '{response_format}' is not compatible with model '{model}'. "
            f"Use {' or '.join(repr(f) for f in allowed_formats)} instead.",
            "response_format",
            "unsupported_value",
        )
    language = form.get("language")
    if language is not None and not (len(language) == 2 and language.isalpha() and language.islower()):
        raise invalid(
            f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
            "language",
        )
    seconds = await _seconds(model, filename, data)
    if script.transcription_latency > 0:
        await asyncio.sleep(script.transcription_latency)
    text = script.transcript_text(data, filename) if script.transcript_text else f"transcript of {seconds:.1f} s"
    if response_format == "text":
        return text, "text/plain"
    body: dict[str, Any] = {"text": text}
    if model == "whisper-1":
        body["usage"] = {"type": "duration", "seconds": math.ceil(seconds)}
        if response_format == "verbose_json":
            body.update(
                task="transcribe",
                language="english",
                duration=round(seconds, 2),
                segments=[
                    {
                        "id": 0,
                        "seek": 0,
                        "start": 0.0,
                        "end": round(seconds, 2),
                        "text": text,
                        "tokens": [],
                        "temperature": 0.0,
                        "avg_logprob": -0.2,
                        "compression_ratio": 1.0,
                        "no_speech_prob": 0.01,
                    }
                ],
            )
    else:
        audio_tokens = max(1, math.ceil(10 * seconds))
        prompt_tokens = math.ceil(len(form.get("prompt", "")) / 4)
        output_tokens = max(1, math.ceil(len(text) / 4))
        body["usage"] = {
            "type": "tokens",
            "input_tokens": audio_tokens + prompt_tokens,
            "input_token_details": {"text_tokens": prompt_tokens, "audio_tokens": audio_tokens},
            "output_tokens": output_tokens,
            "total_tokens": audio_tokens + prompt_tokens + output_tokens,
        }
    return body, "application/json"


async def _seconds(model: str, filename: str, data: bytes) -> float:
    """How long the upload is, once its file name and its bytes pass the endpoint's checks: the name's
    extension must be one the model takes, and the bytes must be what the extension says (the endpoint decodes
    by the name; a recording under another container's name is undecodable to it)."""
    ext = filename.rsplit(".", 1)[1].lower() if "." in filename else ""
    if model == "whisper-1":
        if ext not in TRANSCRIBE_EXTENSIONS:
            raise invalid(f"Invalid file format. Supported formats: {list(TRANSCRIBE_EXTENSIONS)}", None, None)
    elif ext not in GPT_TRANSCRIBE_EXTENSIONS:
        raise invalid(f"Unsupported file format {ext}", "file", "unsupported_value")
    fmt = sniff_audio_format(data)
    if fmt not in TRANSCRIBE_CONTAINERS[ext]:
        raise invalid(UNDECODABLE, "file", None)
    try:
        if fmt == "wav":
            return parse_wav(data).duration
        if fmt in ("ogg", "opus"):
            return ogg_seconds(data)  # read from the pages, as cheaply as a server would
        return await asyncio.to_thread(decode_duration, data)
    except (InvalidWav, AudioDecodeError) as exc:
        raise invalid(UNDECODABLE, "file", None) from exc
