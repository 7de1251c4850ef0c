"""A loopback stand-in for the parts of the OpenAI API Parley uses, driven by the real SDK.

It validates requests the way the real API does where an application can plausibly get them wrong (model
names, message shapes, input_audio formats, audio that does not decode -- including WAVs with broken RIFF
sizes --, voices, output formats, transcription uploads) and answers with the real error shapes, which the
SDK turns into the real exception classes. Replies carry real audio (a tone whose length follows the
transcript) so the application's audio path is exercised end to end. Every request is recorded.

Modules: fake (the scenario façade), server (HTTP, auth, faults), script (what it will answer),
chat_checks (request validation), chat_reply (the answer), transcriptions, models (the catalogue), errors.
"""

from .errors import OpenAIAPIError
from .fake import FakeOpenAI
from .models import AUDIO_CHAT_MODELS, CHAT_MODELS, TRANSCRIPTION_MODELS, VOICES
from .records import RecordedRequest

__all__ = [
    "AUDIO_CHAT_MODELS",
    "CHAT_MODELS",
    "TRANSCRIPTION_MODELS",
    "VOICES",
    "FakeOpenAI",
    "OpenAIAPIError",
    "RecordedRequest",
]
