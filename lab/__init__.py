"""The test lab: loopback stand-ins of the Telegram Bot API and the OpenAI API, plus test audio.

The real application (unmodified python-telegram-bot and openai SDK) talks to these over real HTTP on
127.0.0.1, so tests exercise the real request encoding and error handling without any network access.
"""

from .audio import (
    AudioDecodeError,
    InvalidOgg,
    InvalidWav,
    WavInfo,
    decode_duration,
    ffmpeg_exe,
    make_mp3,
    make_speech_ogg,
    make_voice_ogg,
    make_wav,
    ogg_opus_duration,
    parse_wav,
    sniff_audio_format,
)
from .openai import AUDIO_CHAT_MODELS, CHAT_MODELS, TRANSCRIPTION_MODELS, VOICES, FakeOpenAI, RecordedRequest
from .telegram import (
    DOWNLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiCall,
    FakeTelegram,
    SentMessage,
    StoredFile,
    StoredMessage,
    TelegramAPIError,
)

__all__ = [
    "AUDIO_CHAT_MODELS",
    "CHAT_MODELS",
    "DOWNLOAD_LIMIT",
    "TRANSCRIPTION_MODELS",
    "UPLOAD_LIMIT",
    "VOICES",
    "ApiCall",
    "AudioDecodeError",
    "FakeOpenAI",
    "FakeTelegram",
    "InvalidOgg",
    "InvalidWav",
    "RecordedRequest",
    "SentMessage",
    "StoredFile",
    "StoredMessage",
    "TelegramAPIError",
    "WavInfo",
    "decode_duration",
    "ffmpeg_exe",
    "make_mp3",
    "make_speech_ogg",
    "make_voice_ogg",
    "make_wav",
    "ogg_opus_duration",
    "parse_wav",
    "sniff_audio_format",
]
