"""Settings: one typed object, read from the environment (and `.env`), validated once at start-up.

Every problem is reported as one plain line naming the variable and what to do, so an operator
can fix a deployment without reading a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_MODEL = "gpt-audio"
DEFAULT_TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"
DEFAULT_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")
DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a friendly voice assistant in a Telegram chat. Your replies are listened to, "
    "not read: answer in the language the person speaks, in a warm, natural spoken style, and keep "
    "answers short — a few sentences, under about 30 seconds of speech — unless asked for more. "
    "No markdown, lists or emoji; say things the way a person would say them aloud."
)

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{10,}$")
_VOICE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """Raised with every problem found, one plain line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    telegram_token: str
    openai_api_key: str
    openai_base_url: str | None = None
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    db_path: Path = Path("parley.db")
    model: str = DEFAULT_MODEL
    transcribe_model: str = DEFAULT_TRANSCRIBE_MODEL
    voice: str = "alloy"
    voices: tuple[str, ...] = DEFAULT_VOICES
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    history_turns: int = 30
    model_timeout_seconds: float = 90.0
    model_retries: int = 2
    ffmpeg_timeout_seconds: float = 60.0
    workers: int = 16
    max_queue: int = 500
    shutdown_seconds: float = 20.0
    slow_notice_seconds: float = 15.0
    log_level: str = "INFO"

    @property
    def telegram_base_url(self) -> str:
        return f"{self.telegram_api_url}/bot"

    @property
    def telegram_base_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a chat message."""
        return tuple(s for s in (self.telegram_token, self.openai_api_key) if s)

    def __repr__(self) -> str:  # keep secrets out of any accidental repr in logs
        return f"Settings(model={self.model!r}, db_path={str(self.db_path)!r}, voice={self.voice!r})"


class _Reader:
    """Reads variables and collects problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def required(self, name: str, hint: str) -> str:
        value = self.raw(name)
        if value is None:
            self.problems.append(f"{name} is not set: {hint}")
            return ""
        return value

    def url(self, name: str, default: str | None) -> str | None:
        value = self.raw(name)
        if value is None:
            return default
        if not re.match(r"^https?://[^\s/]+", value):
            self.problems.append(f"{name} must be an http:// or https:// URL, got {value!r}")
            return default
        return value.rstrip("/")

    def number(self, name: str, default: float, *, minimum: float, integer: bool = False) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            parsed = int(value) if integer else float(value)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problems.append(f"{name} must be {kind}, got {value!r}")
            return default
        if parsed < minimum:
            self.problems.append(f"{name} must be at least {minimum:g}, got {value!r}")
            return default
        return parsed


def read_environment(env_file: str | Path | None = ".env") -> dict[str, str]:
    """The process environment over the values of `.env` (the environment wins, as python-dotenv does)."""
    merged: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build validated settings from a mapping of variables; raise ConfigError listing every problem."""
    r = _Reader(env)
    hint = "copy .env.example to .env and fill it in"
    token = r.required("TELEGRAM_BOT_TOKEN", f"{hint} (BotFather gives you the token)")
    if token and not _TOKEN_RE.match(token):
        r.problems.append(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then letters): "
            "copy it again from BotFather"
        )
    api_key = r.required("OPENAI_API_KEY", hint)

    voices_raw = r.raw("PARLEY_VOICES")
    voices = DEFAULT_VOICES
    if voices_raw is not None:
        parsed = tuple(dict.fromkeys(v.strip().lower() for v in voices_raw.split(",") if v.strip()))
        bad = [v for v in parsed if not _VOICE_RE.match(v)]
        if not parsed or bad:
            r.problems.append(f"PARLEY_VOICES must be a comma-separated list of voice names, got {voices_raw!r}")
        else:
            voices = parsed
    voice = (r.raw("PARLEY_VOICE") or ("alloy" if "alloy" in voices else voices[0])).lower()
    if voice not in voices:
        r.problems.append(f"PARLEY_VOICE is {voice!r}, which is not one of PARLEY_VOICES ({', '.join(voices)})")

    level = (r.raw("PARLEY_LOG_LEVEL") or "INFO").upper()
    if level not in _LOG_LEVELS:
        r.problems.append(f"PARLEY_LOG_LEVEL must be one of {', '.join(_LOG_LEVELS)}, got {level!r}")

    settings = Settings(
        telegram_token=token,
        openai_api_key=api_key,
        openai_base_url=r.url("OPENAI_BASE_URL", None),
        telegram_api_url=r.url("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL) or DEFAULT_TELEGRAM_API_URL,
        db_path=Path(r.raw("PARLEY_DB") or "parley.db"),
        model=r.raw("PARLEY_MODEL") or DEFAULT_MODEL,
        transcribe_model=r.raw("PARLEY_TRANSCRIBE_MODEL") or DEFAULT_TRANSCRIBE_MODEL,
        voice=voice,
        voices=voices,
        system_prompt=r.raw("PARLEY_SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
        history_turns=int(r.number("PARLEY_HISTORY_TURNS", 30, minimum=0, integer=True)),
        model_timeout_seconds=r.number("PARLEY_MODEL_TIMEOUT_SECONDS", 90.0, minimum=1),
        model_retries=int(r.number("PARLEY_MODEL_RETRIES", 2, minimum=0, integer=True)),
        ffmpeg_timeout_seconds=r.number("PARLEY_FFMPEG_TIMEOUT_SECONDS", 60.0, minimum=1),
        workers=int(r.number("PARLEY_WORKERS", 16, minimum=1, integer=True)),
        max_queue=int(r.number("PARLEY_MAX_QUEUE", 500, minimum=1, integer=True)),
        shutdown_seconds=r.number("PARLEY_SHUTDOWN_SECONDS", 20.0, minimum=0),
        slow_notice_seconds=r.number("PARLEY_SLOW_NOTICE_SECONDS", 15.0, minimum=1),
        log_level=level,
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings
