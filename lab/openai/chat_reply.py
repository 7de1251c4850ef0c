"""The stand-in's answer to a valid chat request: its text, its spoken audio and what it costs.

A Reply is made once and then shaped either as one `chat.completion` or as a stream of chunks, so both
paths say and charge the same thing.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import math
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any

from ..audio import _ffmpeg_ok, make_wav, parse_wav
from .chat_checks import ChatPlan
from .chat_tools import ToolCall, check_script, issue_calls
from .models import ALIASES, REPLY_RATE
from .records import RecordedRequest
from .script import Script

__all__ = ["Reply", "completion", "completion_id", "make_reply"]

AUDIO_LIFETIME = 3600
"""Seconds a reply's audio id stays citable in later requests (the real API's expires_at)."""


@functools.lru_cache(maxsize=64)
def _reply_tone(seconds: float) -> bytes:
    """The reply's audio, made once per length: the stand-in's own CPU time stays out of what is measured."""
    return make_wav(seconds, REPLY_RATE, 330.0)


@dataclass
class Reply:
    """One answer, before it is shaped as a completion or as chunks."""

    model: str
    """The snapshot the real API names in `model` (an alias resolved)."""
    text: str
    finish_reason: str
    created: int
    audio: bytes | None = None
    """The spoken reply in the requested format (None: a text answer, or audio omitted)."""
    audio_id: str | None = None
    expires_at: int | None = None
    spoken: bool = False
    """The request asked for audio (the reply's text is then the audio's transcript, unless omitted)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)


def completion_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "chatcmpl-" + "".join(secrets.choice(alphabet) for _ in range(29))


def _choose_text(body: dict[str, Any], plan: ChatPlan, script: Script) -> str:
    if script.replies:
        return script.replies.popleft()
    if script.reply_text is not None:
        return script.reply_text(body)
    if plan.last_user_audio:
        return f"I heard {sum(plan.last_user_audio):.1f} seconds of audio."
    last_text = ""
    for msg in body["messages"]:
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            last_text = content
        elif isinstance(content, list):
            last_text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return f"You said: {last_text}"


def _prompt_usage(body: dict[str, Any], record: RecordedRequest) -> tuple[int, int]:
    """Prompt tokens, text and audio, estimated the way the real counts grow (chars/4, 10 per second)."""
    text_chars = 0
    for msg in body["messages"]:
        content = msg.get("content")
        if isinstance(content, str):
            text_chars += len(content)
        elif isinstance(content, list):
            text_chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    text_tokens = math.ceil(text_chars / 4) + 4 * len(body["messages"]) + 3
    audio_tokens = math.ceil(10 * sum(record.audio_input_seconds))
    return text_tokens, audio_tokens


async def _encode(wav: bytes, fmt: str) -> bytes:
    if fmt == "wav":
        return wav
    if fmt == "pcm16":
        return wav[44:]  # make_wav writes the canonical 44-byte header
    args = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
        "opus": ["-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-f", "ogg"],
        "flac": ["-c:a", "flac", "-f", "flac"],
        "aac": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
    }[fmt]
    return await asyncio.to_thread(_ffmpeg_ok, ["-f", "wav", "-i", "pipe:0", *args, "pipe:1"], wav)


def _usage(prompt_text: int, prompt_audio: int, completion_text: int, completion_audio: int) -> dict[str, Any]:
    prompt_tokens = prompt_text + prompt_audio
    completion_tokens = completion_text + completion_audio
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {
            "cached_tokens": 0,
            "audio_tokens": prompt_audio,
            "text_tokens": prompt_text,
            "image_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": completion_audio,
            "text_tokens": completion_text,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_reply(body: dict[str, Any], record: RecordedRequest, reply: Reply, calls: list[ToolCall]) -> Reply:
    reply.tool_calls = issue_calls(calls)
    reply.finish_reason = "tool_calls"
    arguments = sum(len(c["function"]["arguments"]) + len(c["function"]["name"]) for c in reply.tool_calls)
    prompt_text, prompt_audio = _prompt_usage(body, record)
    reply.usage = _usage(prompt_text, prompt_audio, max(1, math.ceil(arguments / 4)), 0)
    return reply


async def make_reply(body: dict[str, Any], plan: ChatPlan, record: RecordedRequest, script: Script) -> Reply:
    """Decide the answer: scripted tool calls, or text (queued, scripted or an echo) with its audio when the
    request wants audio."""
    now = int(time.time())
    calls = script.tool_rounds.popleft() if script.tool_rounds else None
    check_script(body, calls)
    if calls is not None:
        empty = Reply(model=ALIASES.get(plan.model, plan.model), text="", finish_reason="stop", created=now)
        return _tool_reply(body, record, empty, calls)
    text = _choose_text(body, plan, script)
    reply = Reply(model=ALIASES.get(plan.model, plan.model), text=text, finish_reason="stop", created=now)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and not plan.wants_audio and len(text) > 4 * limit:
        reply.text, reply.finish_reason = text[: 4 * limit], "length"  # the real API stops mid-sentence
    completion_audio = 0
    if plan.wants_audio and script.omit_audio > 0:
        script.omit_audio -= 1
    elif plan.wants_audio:
        assert plan.format is not None
        if script.reply_audio is not None:
            wav = script.reply_audio(text)
            seconds = parse_wav(wav).duration
        else:
            seconds = min(max(len(text) * script.seconds_per_char, 0.5), 30.0)
            wav = await asyncio.to_thread(_reply_tone, seconds)
        reply.audio = await _encode(wav, plan.format)
        reply.spoken = True
        reply.audio_id = f"audio_{secrets.token_hex(16)}"
        reply.expires_at = now + AUDIO_LIFETIME
        script.audio_ids[reply.audio_id] = {"expires_at": reply.expires_at, "transcript": text}
        completion_audio = math.ceil(20 * seconds)
    prompt_text, prompt_audio = _prompt_usage(body, record)
    reply.usage = _usage(prompt_text, prompt_audio, max(1, math.ceil(len(reply.text) / 4)), completion_audio)
    return reply


def completion(reply: Reply) -> dict[str, Any]:
    """The reply as one `chat.completion` object (stream=false)."""
    message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    if reply.tool_calls:
        message["audio"] = None
        message["tool_calls"] = reply.tool_calls
    elif reply.spoken:
        assert reply.audio is not None
        message["audio"] = {
            "id": reply.audio_id,
            "data": base64.b64encode(reply.audio).decode("ascii"),
            "expires_at": reply.expires_at,
            "transcript": reply.text,
        }
    else:
        message["content"] = reply.text
        message["audio"] = None
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": reply.created,
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": reply.usage,
        "service_tier": "default",
        "system_fingerprint": f"fp_{secrets.token_hex(5)}",
    }
