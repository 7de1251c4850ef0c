"""What every input to the codecs is held to, and how a refusal is said: shared by the libopus path
(opus.py) and FFmpeg's (codec.py), so that neither needs the other's libraries to name them."""

from __future__ import annotations

from dataclasses import dataclass

MIN_RATE, MAX_RATE = 8_000, 384_000
"""Sample rates of real recordings: telephone speech to studio masters. A header claiming 1 Hz is a
decompression bomb (8 KB of it resample to hours of audio), not a recording."""

MAX_CHANNELS = 64
"""Ambisonic and multitrack recordings stay below this; more is not a voice note."""

CHUNK_BYTES = 64 * 1024
"""Decoded PCM leaves the worker in pieces this size: never the whole recording in one buffer."""


class CodecError(Exception):
    """The input cannot be used. `kind` is "unreadable" or "too_long" (the two answers a person gets)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Decoded:
    seconds: float
    """Seconds of audio produced (at the output rate)."""
    ogg: bytes | None = None
    """The packets decoded as an OGG/Opus file of their own, when asked for and the decoder can make one
    (opus.decode_ogg)."""
