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
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values

from parley.access import AccessList, Rate
from parley.prices import PriceError, PriceTable

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
NOBODY = AccessList()
DEFAULT_USER_RATE = Rate(10, 60)
DEFAULT_CHAT_RATE = Rate(30, 60)
DEFAULT_SUMMARY_RATE = Rate(5, 600)
DEFAULT_MODELS = ("gpt-audio", "gpt-audio-mini")
DEFAULT_OPENAI_API_VERSION = "2025-01-01-preview"


class Address(NamedTuple):
    """A host and port to listen on, written `host:port` (`[::]:8080` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


DEFAULT_LISTEN = Address("0.0.0.0", 8080)
DEFAULT_METRICS_LISTEN = Address("127.0.0.1", 9090)
_ADDRESS_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$")
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_LOG_FORMATS = ("text", "json")


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
    summary_model: str = "gpt-4o-mini"
    voice: str = "alloy"
    voices: tuple[str, ...] = DEFAULT_VOICES
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    history_turns: int = 12
    model_timeout_seconds: float = 90.0
    model_retries: int = 2
    ffmpeg_timeout_seconds: float = 60.0
    workers: int = 16
    max_queue: int = 500
    shutdown_seconds: float = 20.0
    slow_notice_seconds: float = 15.0
    allowed: AccessList = NOBODY
    admins: frozenset[int] = frozenset()
    user_rate: Rate = DEFAULT_USER_RATE
    chat_rate: Rate = DEFAULT_CHAT_RATE
    keep_audio: bool = False
    audio_retention_days: float = 7.0
    retention_days: float = 30.0
    group_retention_days: float | None = None
    timezone: str = "UTC"
    summary_rate: Rate = DEFAULT_SUMMARY_RATE
    summary_chunk_tokens: int = 6000
    log_level: str = "INFO"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: Address = DEFAULT_LISTEN
    metrics_listen: Address | None = DEFAULT_METRICS_LISTEN
    log_format: str = "text"
    # spend control (issue 2)
    context_tokens: int = 6000
    idle_reset_hours: float | None = None
    prices_path: Path | None = None
    user_daily_budget_usd: float | None = None
    user_monthly_budget_usd: float | None = None
    monthly_budget_usd: float | None = None
    budget_admins: bool = False
    max_voice_seconds: float = 300.0
    local_bot_api: bool = False
    speak_max_chars: int = 2000
    tool_segment_seconds: float = 1200.0
    models: tuple[str, ...] = DEFAULT_MODELS
    azure_endpoint: str | None = None
    azure_api_key: str | None = None
    openai_api_version: str = DEFAULT_OPENAI_API_VERSION

    @property
    def webhook(self) -> bool:
        """Updates arrive by webhook (PARLEY_WEBHOOK_URL set, or `parley run --webhook`) rather than polling."""
        return self.webhook_url is not None

    @property
    def telegram_base_url(self) -> str:
        return f"{self.telegram_api_url}/bot"

    @property
    def telegram_base_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a chat message."""
        values = (self.telegram_token, self.openai_api_key, self.webhook_secret, self.azure_api_key)
        return tuple(s for s in values if s)

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

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be true or false, got {value!r}")
        return default

    def rate(self, name: str, default: Rate) -> Rate:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return Rate.parse(value)
        except ValueError:
            self.problems.append(
                f"{name} must look like 10/minute (a count per second, minute, hour or day), got {value!r}"
            )
            return default

    def access_list(self, name: str) -> AccessList:
        try:
            return AccessList.parse(self.raw(name))
        except ValueError as exc:
            self.problems.append(f"{name} has {str(exc)!r}, which is not a user id, an @username, a group chat id or *")
            return AccessList()

    def user_ids(self, name: str) -> frozenset[int]:
        value = self.raw(name)
        if value is None:
            return frozenset()
        entries = [e.strip() for e in value.split(",") if e.strip()]
        bad = [e for e in entries if not re.fullmatch(r"\d+", e)]
        if bad:
            self.problems.append(f"{name} must list numeric user ids (ask @userinfobot for yours), got {bad[0]!r}")
            return frozenset()
        return frozenset(int(e) for e in entries)

    def optional_number(self, name: str, *, minimum: float) -> float | None:
        return None if self.raw(name) is None else self.number(name, minimum, minimum=minimum)

    def timezone(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            self.problems.append(f"{name} must be a timezone name like Europe/Berlin or UTC, got {value!r}")
            return default
        return value

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


def _address(r: _Reader, name: str, default: Address | None, *, allow_off: bool = False) -> Address | None:
    value = r.raw(name)
    if value is None:
        return default
    if allow_off and value.lower() == "off":
        return None
    match = _ADDRESS_RE.match(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        off = ", or off" if allow_off else ""
        r.problems.append(f"{name} must be host:port (e.g. 127.0.0.1:9090 or [::]:9090{off}), got {value!r}")
        return default
    return Address(match["v6"] or match["host"], int(match["port"]))


def _operations(r: _Reader, webhook: bool) -> dict[str, object]:
    """Settings of how Parley is run: webhook or polling, the health/metrics listener, the log format."""
    url = r.raw("PARLEY_WEBHOOK_URL")
    if url is not None and not re.match(r"^https://[^\s/]+", url):
        r.problems.append(f"PARLEY_WEBHOOK_URL must be an https:// URL (Telegram only posts to HTTPS), got {url!r}")
    elif url is None and webhook:
        r.problems.append("PARLEY_WEBHOOK_URL is not set: --webhook needs the public https:// URL Telegram posts to")
    secret = r.raw("PARLEY_WEBHOOK_SECRET")
    if (url is not None or webhook) and secret is None:
        r.problems.append(
            "PARLEY_WEBHOOK_SECRET is not set: webhook mode needs one (16-256 letters, digits, _ or -; "
            "e.g. the output of `openssl rand -hex 32`)"
        )
    elif secret is not None and not _WEBHOOK_SECRET_RE.match(secret):
        r.problems.append(
            "PARLEY_WEBHOOK_SECRET must be 16-256 letters, digits, _ or - (e.g. the output of `openssl rand -hex 32`)"
        )
    log_format = (r.raw("PARLEY_LOG_FORMAT") or "text").lower()
    if log_format not in _LOG_FORMATS:
        r.problems.append(f"PARLEY_LOG_FORMAT must be text or json, got {log_format!r}")
    return {
        "webhook_url": url,
        "webhook_secret": secret,
        "listen": _address(r, "PARLEY_LISTEN", DEFAULT_LISTEN),
        "metrics_listen": _address(r, "PARLEY_METRICS_LISTEN", DEFAULT_METRICS_LISTEN, allow_off=True),
        "log_format": log_format,
    }


def _spend(r: _Reader) -> dict[str, object]:
    """Settings of what Parley may spend: context size, prices, budgets, model choice, Azure."""
    prices = r.raw("PARLEY_PRICES")
    if prices is not None:
        try:
            PriceTable.load(Path(prices))
        except PriceError as exc:
            r.problems.append(f"PARLEY_PRICES: {exc}")
    model = r.raw("PARLEY_MODEL") or DEFAULT_MODEL
    listed = [m.strip() for m in (r.raw("PARLEY_MODELS") or ",".join(DEFAULT_MODELS)).split(",") if m.strip()]
    if not listed:
        r.problems.append("PARLEY_MODELS must be a comma-separated list of model (or Azure deployment) names")
    endpoint, azure_key = r.url("AZURE_OPENAI_ENDPOINT", None), r.raw("AZURE_OPENAI_API_KEY")
    if (endpoint is None) != (azure_key is None):
        r.problems.append("AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY must be set together (or neither)")
    idle = r.number("PARLEY_IDLE_RESET_HOURS", 0.0, minimum=0)
    return {
        "context_tokens": int(r.number("PARLEY_CONTEXT_TOKENS", 6000, minimum=500, integer=True)),
        "idle_reset_hours": idle or None,
        "prices_path": Path(prices) if prices else None,
        "user_daily_budget_usd": r.optional_number("PARLEY_USER_DAILY_BUDGET_USD", minimum=0),
        "user_monthly_budget_usd": r.optional_number("PARLEY_USER_MONTHLY_BUDGET_USD", minimum=0),
        "monthly_budget_usd": r.optional_number("PARLEY_MONTHLY_BUDGET_USD", minimum=0),
        "budget_admins": r.flag("PARLEY_BUDGET_ADMINS", False),
        "max_voice_seconds": r.number("PARLEY_MAX_VOICE_SECONDS", 300.0, minimum=1),
        "local_bot_api": r.flag("PARLEY_LOCAL_BOT_API", False),
        "speak_max_chars": int(r.number("PARLEY_SPEAK_MAX_CHARS", 2000, minimum=50, integer=True)),
        "tool_segment_seconds": r.number("PARLEY_TOOL_SEGMENT_SECONDS", 1200.0, minimum=30),
        "models": tuple(dict.fromkeys([model, *listed])),
        "azure_endpoint": endpoint if azure_key else None,
        "azure_api_key": azure_key if endpoint else None,
        "openai_api_version": r.raw("OPENAI_API_VERSION") or DEFAULT_OPENAI_API_VERSION,
    }


def load_settings(env: Mapping[str, str], *, webhook: bool = False) -> Settings:
    """Build validated settings from a mapping of variables; raise ConfigError listing every problem.

    `webhook` is `parley run --webhook`: it makes PARLEY_WEBHOOK_URL required.
    """
    r = _Reader(env)
    hint = "copy .env.example to .env and fill it in"
    token = r.required("TELEGRAM_BOT_TOKEN", f"{hint} (BotFather gives you the token)")
    if token and not _TOKEN_RE.match(token):
        r.problems.append(
            "TELEGRAM_BOT_TOKEN does not look like a bot token (digits, a colon, then letters): "
            "copy it again from BotFather"
        )
    spend = _spend(r)
    api_key = (r.raw("OPENAI_API_KEY") or "") if spend["azure_endpoint"] else r.required("OPENAI_API_KEY", hint)

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
        summary_model=r.raw("PARLEY_SUMMARY_MODEL") or "gpt-4o-mini",
        voice=voice,
        voices=voices,
        system_prompt=r.raw("PARLEY_SYSTEM_PROMPT") or DEFAULT_SYSTEM_PROMPT,
        history_turns=int(r.number("PARLEY_HISTORY_TURNS", 12, minimum=0, integer=True)),
        model_timeout_seconds=r.number("PARLEY_MODEL_TIMEOUT_SECONDS", 90.0, minimum=1),
        model_retries=int(r.number("PARLEY_MODEL_RETRIES", 2, minimum=0, integer=True)),
        ffmpeg_timeout_seconds=r.number("PARLEY_FFMPEG_TIMEOUT_SECONDS", 60.0, minimum=1),
        workers=int(r.number("PARLEY_WORKERS", 16, minimum=1, integer=True)),
        max_queue=int(r.number("PARLEY_MAX_QUEUE", 500, minimum=1, integer=True)),
        shutdown_seconds=r.number("PARLEY_SHUTDOWN_SECONDS", 20.0, minimum=0),
        slow_notice_seconds=r.number("PARLEY_SLOW_NOTICE_SECONDS", 15.0, minimum=1),
        allowed=r.access_list("PARLEY_ALLOWED"),
        admins=r.user_ids("PARLEY_ADMINS"),
        user_rate=r.rate("PARLEY_USER_RATE", DEFAULT_USER_RATE),
        chat_rate=r.rate("PARLEY_CHAT_RATE", DEFAULT_CHAT_RATE),
        keep_audio=r.flag("PARLEY_KEEP_AUDIO", False),
        audio_retention_days=r.number("PARLEY_AUDIO_RETENTION_DAYS", 7.0, minimum=0.01),
        retention_days=r.number("PARLEY_RETENTION_DAYS", 30.0, minimum=0.01),
        group_retention_days=r.optional_number("PARLEY_GROUP_RETENTION_DAYS", minimum=0.01),
        timezone=r.timezone("PARLEY_TIMEZONE", "UTC"),
        summary_rate=r.rate("PARLEY_SUMMARY_RATE", DEFAULT_SUMMARY_RATE),
        summary_chunk_tokens=int(r.number("PARLEY_SUMMARY_CHUNK_TOKENS", 6000, minimum=200, integer=True)),
        log_level=level,
        **_operations(r, webhook),  # type: ignore[arg-type]
        **spend,  # type: ignore[arg-type]
    )
    if r.problems:
        raise ConfigError(r.problems)
    return settings
