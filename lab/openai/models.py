"""What the OpenAI stand-in knows of the real API's catalogue: models, voices, formats, parameters."""

from __future__ import annotations

import re

__all__ = [
    "AUDIO_CHAT_MODELS",
    "CHAT_MODELS",
    "CHAT_PARAMS",
    "TRANSCRIPTION_MODELS",
    "VOICES",
]

# alias -> snapshot the real API reports back in `model`
ALIASES = {
    "gpt-audio": "gpt-audio-2025-08-28",
    "gpt-audio-mini": "gpt-audio-mini-2025-10-06",
    "gpt-4o-audio-preview": "gpt-4o-audio-preview-2025-06-03",
    "gpt-4o-mini-audio-preview": "gpt-4o-mini-audio-preview-2024-12-17",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
}
AUDIO_CHAT_MODELS = frozenset(
    {
        "gpt-audio-1.5",
        "gpt-audio",
        "gpt-audio-2025-08-28",
        "gpt-audio-mini",
        "gpt-audio-mini-2025-10-06",
        "gpt-4o-audio-preview",
        "gpt-4o-audio-preview-2024-12-17",
        "gpt-4o-audio-preview-2025-06-03",
        "gpt-4o-mini-audio-preview",
        "gpt-4o-mini-audio-preview-2024-12-17",
    }
)
TEXT_CHAT_MODELS = frozenset({"gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o", "gpt-4o-2024-08-06"})
CHAT_MODELS = AUDIO_CHAT_MODELS | TEXT_CHAT_MODELS
TRANSCRIPTION_MODELS = frozenset(
    {"gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1", "gpt-4o-transcribe-diarize"}
)
VOICES = tuple("alloy ash ballad coral echo fable nova onyx sage shimmer verse marin cedar".split())
OUTPUT_FORMATS = ("wav", "aac", "mp3", "flac", "opus", "pcm16")
INPUT_AUDIO_FORMATS = ("wav", "mp3")
ROLES = ("system", "assistant", "user", "function", "tool", "developer")
CONTENT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
# Top-level chat.completions parameters the real API knows; anything else is refused ("Unrecognized request
# argument"), which catches typos and parameters that belong to another endpoint.
CHAT_PARAMS = frozenset(
    {
        "model", "messages", "modalities", "audio", "frequency_penalty", "presence_penalty", "logit_bias",
        "logprobs", "top_logprobs", "max_tokens", "max_completion_tokens", "n", "response_format", "seed",
        "service_tier", "stop", "stream", "stream_options", "temperature", "top_p", "tools", "tool_choice",
        "parallel_tool_calls", "user", "store", "metadata", "reasoning_effort", "prediction", "function_call",
        "functions", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
        "prompt_cache_retention",
    }
)  # fmt: skip
AZURE_PATH = re.compile(
    r"^/openai/deployments/(?P<deployment>[^/]+)/(?P<endpoint>chat/completions|audio/transcriptions)$"
)
AZURE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
TRANSCRIBE_EXTENSIONS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
"""The file extensions whisper-1 takes; the gpt-4o transcription models take the same but 'oga'."""
GPT_TRANSCRIBE_EXTENSIONS = tuple(ext for ext in TRANSCRIBE_EXTENSIONS if ext != "oga")
TRANSCRIBE_CONTAINERS = {
    "flac": ("flac",),
    "m4a": ("m4a",),
    "mp4": ("m4a",),
    "mp3": ("mp3",),
    "mpeg": ("mp3",),
    "mpga": ("mp3",),
    "oga": ("ogg", "opus"),
    "ogg": ("ogg", "opus"),
    "wav": ("wav",),
    "webm": ("webm",),
}
"""What the bytes under each extension must be (as lab.audio.sniff_audio_format names them) to be decoded."""
TRANSCRIBE_LIMIT = 26_214_400
REPLY_RATE = 24_000
