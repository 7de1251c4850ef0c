"""Audio conversion: what the bot receives → what the model hears → what the person hears.

Voice notes, audio files, video notes and documents arrive in any container people's devices write;
the model takes WAV (or MP3 for long recordings) and answers in WAV; a Telegram voice bubble must be
OGG/Opus. Which path does what, and why:

- Decoding for the model and encoding the reply (every voice turn): in-process codecs inside a pool of
  worker processes as wide as the cores (pool.py). A voice note decodes in a few milliseconds; an ffmpeg
  subprocess would spend more than that just starting. OGG/Opus in and out is libopus and Python alone
  (opus.py); other containers and rates load FFmpeg's libraries (PyAV, codec.py) into the worker.
- Measuring a recording's real length: the same workers (decoding to nothing).
- Scanning long recordings for silences and cutting them into MP3 segments (the voice tools): the
  ffmpeg command line (ffmpeg_cli.py), which streams hours of audio in constant memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.audio.wav import PcmFormat, WavAudio, normalise_wav, pcm_to_wav, read_wav, wav_from_pcm

if TYPE_CHECKING:
    from parley.audio.converter import MAX_DECODED_SECONDS, MODEL_SAMPLE_RATE, AudioConverter
    from parley.audio.ffmpeg_cli import find_ffmpeg
    from parley.audio.pool import CodecPool

__all__ = [
    "MAX_DECODED_SECONDS",
    "MODEL_SAMPLE_RATE",
    "AudioConverter",
    "CodecPool",
    "PcmFormat",
    "WavAudio",
    "find_ffmpeg",
    "normalise_wav",
    "pcm_to_wav",
    "read_wav",
    "wav_from_pcm",
]

_LAZY = {
    "MAX_DECODED_SECONDS": "parley.audio.converter",
    "MODEL_SAMPLE_RATE": "parley.audio.converter",
    "AudioConverter": "parley.audio.converter",
    "CodecPool": "parley.audio.pool",
    "find_ffmpeg": "parley.audio.ffmpeg_cli",
}


def __getattr__(name: str) -> Any:
    """The bot's side (asyncio, ffmpeg-python) is imported on first use, not with the package: a codec
    worker imports parley.audio.opus, and so this file, and should load libopus and no more."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
