"""What the OpenAI stand-in will answer: the knobs a test or the benchmark turns, and one-shot behaviours."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .chat_tools import ToolCall

__all__ = ["Script"]


@dataclass
class Script:
    """Defaults answer every request plausibly; tests change only what they are about."""

    latency: float = 0.0
    """Seconds before a chat answer (the model's thinking time)."""
    latency_fn: Callable[[dict[str, Any]], float] | None = None
    """Per-request latency from the request body; wins over `latency`."""
    transcription_latency: float = 0.0
    reply_text: Callable[[dict[str, Any]], str] | None = None
    """The reply's text from the request body (when nothing is queued)."""
    transcript_text: Callable[[bytes, str], str] | None = None
    """A transcription's text from the uploaded bytes and file name."""
    seconds_per_char: float = 0.05
    """How long the spoken reply lasts per character of its transcript (the default tone's length)."""
    reply_audio: Callable[[str], bytes] | None = None
    """Voices a reply: transcript in, 24 kHz mono WAV out (e.g. real speech); a tone when None."""
    replies: deque[str] = field(default_factory=deque)
    """Texts the next chat completions answer with, in order (before reply_text and the default)."""
    tool_rounds: deque[list[ToolCall]] = field(default_factory=deque)
    """Rounds of tool calls the next chat completions answer with, in order (before any text reply)."""
    first_chunk_share: float = 0.25
    """In a stream, the share of the latency before the first chunk; the rest is spread between chunks."""
    cut_streams: deque[int] = field(default_factory=deque)
    """For the next streamed answers: how many chunks each sends before the connection drops (no [DONE])."""
    omit_audio: int = 0
    """How many of the next audio answers come with text content and audio null (the real API sometimes does)."""
    hang: int = 0
    """How many of the next chat requests are never answered (until the server stops)."""
    audio_ids: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Reply audio ids handed out, with their expiry and transcript (a later request may cite them)."""
