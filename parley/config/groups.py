"""The settings, in small frozen groups; each setting is declared once: variable, default, parser, one-line doc.

Code reads a setting through its group (`settings.model.name`, `settings.operations.workers`). Secrets are
declared `secret=True`: left out of every repr and collected by `Settings.secrets` for log redaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from parley.access import AccessList, Rate
from parley.config import parsers as p
from parley.config.declare import setting, specs
from parley.config.parsers import Address

DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_MODEL = "gpt-audio-1.5"
DEFAULT_MODELS = ("gpt-audio-1.5", "gpt-audio", "gpt-audio-mini")
RETIRED_MODELS = {
    "gpt-4o-audio-preview-2024-12-17": "2026-07-23",
    "gpt-4o-mini-audio-preview-2024-12-17": "2026-07-23",
}
"""Models OpenAI has shut down, with the date: `parley doctor` says so when a setting names one."""
DEFAULT_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse")
DEFAULT_SYSTEM_PROMPT = (
    "You are Parley, a friendly voice assistant in a Telegram chat. Your replies are listened to, "
    "not read: answer in the language the person speaks, in a warm, natural spoken style, and keep "
    "answers short — a few sentences, under about 30 seconds of speech — unless asked for more. "
    "No markdown, lists or emoji; say things the way a person would say them aloud."
)
FILL_IN = "copy .env.example to .env and fill it in"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
DEFAULT_METRICS_LISTEN: Address | None = Address("127.0.0.1", 9090)


@dataclass(frozen=True, slots=True)
class Telegram:
    """The bot and the Bot API server it talks to."""

    token: str = setting(
        "TELEGRAM_BOT_TOKEN", "", p.bot_token, "the bot's token from BotFather",
        secret=True, required=f"{FILL_IN} (BotFather gives you the token)",
    )  # fmt: skip
    api_url: str = setting("TELEGRAM_API_URL", DEFAULT_TELEGRAM_API_URL, p.url, "the Bot API root")
    local_bot_api: bool = setting(
        "PARLEY_LOCAL_BOT_API", False, p.flag, "the Bot API root is a local server run with --local (files by path)"
    )
    language: str = setting(
        "PARLEY_LANGUAGE", "en", p.language, "the bot's language where nobody chose one (e.g. de, pt_BR, ja)"
    )

    @property
    def base_url(self) -> str:
        return f"{self.api_url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.api_url}/file/bot"


@dataclass(frozen=True, slots=True)
class Access:
    """Who is served, and how often."""

    admins: frozenset[int] = setting("PARLEY_ADMINS", frozenset(), p.user_ids, "numeric user ids of the admins")
    allowed: AccessList = setting("PARLEY_ALLOWED", AccessList(), p.access_list, "who else is served")
    user_rate: Rate = setting("PARLEY_USER_RATE", Rate(10, 60), p.rate, "messages allowed per user")
    chat_rate: Rate = setting("PARLEY_CHAT_RATE", Rate(30, 60), p.rate, "messages allowed per group chat")


@dataclass(frozen=True, slots=True)
class Model:
    """The model API (OpenAI or Azure OpenAI), the models used, and how they are asked."""

    api_key: str = setting("OPENAI_API_KEY", "", p.text, "the OpenAI API key (not needed on Azure)", secret=True)
    base_url: str | None = setting("OPENAI_BASE_URL", None, p.url, "the OpenAI API root, for a proxy")
    azure_endpoint: str | None = setting("AZURE_OPENAI_ENDPOINT", None, p.url, "use Azure OpenAI at this endpoint")
    azure_api_key: str | None = setting(
        "AZURE_OPENAI_API_KEY", None, p.text, "the Azure OpenAI resource's key", secret=True
    )
    api_version: str = setting("OPENAI_API_VERSION", "2025-01-01-preview", p.text, "the Azure OpenAI API version")
    name: str = setting("PARLEY_MODEL", DEFAULT_MODEL, p.text, "the speech-in, speech-out model")
    choices: tuple[str, ...] = setting(
        "PARLEY_MODELS", DEFAULT_MODELS, p.names, "the models /model offers (PARLEY_MODEL always among them)"
    )
    transcribe_model: str = setting(
        "PARLEY_TRANSCRIBE_MODEL", "gpt-4o-mini-transcribe", p.text, "transcribes voice notes for the history"
    )
    summary_model: str = setting("PARLEY_SUMMARY_MODEL", "gpt-4o-mini", p.text, "a cheap text model for summaries")
    voice: str = setting("PARLEY_VOICE", "alloy", p.lower, "the default voice (else the first of PARLEY_VOICES)")
    voices: tuple[str, ...] = setting("PARLEY_VOICES", DEFAULT_VOICES, p.voices, "the voices /voice offers")
    system_prompt: str = setting("PARLEY_SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT, p.text, "the model's instructions")
    history_turns: int = setting("PARLEY_HISTORY_TURNS", 12, p.whole(0), "recent turns sent verbatim")
    timeout_seconds: float = setting(
        "PARLEY_MODEL_TIMEOUT_SECONDS", 90.0, p.number(1), "how long one attempt at a model call may take"
    )
    retries: int = setting("PARLEY_MODEL_RETRIES", 2, p.whole(0), "retries of 429s, 5xx, timeouts")
    stream: bool = setting(
        "PARLEY_STREAM_REPLIES", True, p.flag, "stream replies, encoding the voice note as the audio arrives"
    )


@dataclass(frozen=True, slots=True)
class Spend:
    """What Parley may spend: context size, prices, budgets, the longest voice note."""

    context_tokens: int = setting("PARLEY_CONTEXT_TOKENS", 6000, p.whole(500), "most text tokens in a context")
    idle_reset_hours: float | None = setting(
        "PARLEY_IDLE_RESET_HOURS", None, p.hours_or_never, "idle hours after which a new conversation starts"
    )
    prices_path: Path | None = setting("PARLEY_PRICES", None, p.price_table, "a price table to use instead")
    user_daily_budget_usd: float | None = setting(
        "PARLEY_USER_DAILY_BUDGET_USD", None, p.number(0), "what one user may spend per day"
    )
    user_monthly_budget_usd: float | None = setting(
        "PARLEY_USER_MONTHLY_BUDGET_USD", None, p.number(0), "what one user may spend per month"
    )
    monthly_budget_usd: float | None = setting(
        "PARLEY_MONTHLY_BUDGET_USD", None, p.number(0), "what the whole bot may spend per month"
    )
    budget_admins: bool = setting("PARLEY_BUDGET_ADMINS", False, p.flag, "hold admins to the budgets too")
    max_voice_seconds: float = setting("PARLEY_MAX_VOICE_SECONDS", 300.0, p.number(1), "longest voice note taken")


@dataclass(frozen=True, slots=True)
class Privacy:
    """How long what Parley stores is kept."""

    retention_days: float = setting("PARLEY_RETENTION_DAYS", 30.0, p.number(0.01), "days turns are kept")
    keep_audio: bool = setting("PARLEY_KEEP_AUDIO", False, p.flag, "also store the raw voice notes")
    audio_retention_days: float = setting(
        "PARLEY_AUDIO_RETENTION_DAYS", 7.0, p.number(0.01), "days kept voice notes stay"
    )
    group_retention_days: float | None = setting(
        "PARLEY_GROUP_RETENTION_DAYS", None, p.number(0.01), "days the group log is kept (at most retention_days)"
    )


@dataclass(frozen=True, slots=True)
class Groups:
    """Group chats: summaries and digests."""

    timezone: str = setting("PARLEY_TIMEZONE", "UTC", p.timezone, "groups' default timezone")
    summary_rate: Rate = setting("PARLEY_SUMMARY_RATE", Rate(5, 600), p.rate, "/summary requests per group chat")
    summary_chunk_tokens: int = setting(
        "PARLEY_SUMMARY_CHUNK_TOKENS", 6000, p.whole(200), "talk per summary chunk, in tokens"
    )


@dataclass(frozen=True, slots=True)
class Tools:
    """The voice tools: /speak, /transcribe, /tone."""

    speak_max_chars: int = setting("PARLEY_SPEAK_MAX_CHARS", 2000, p.whole(50), "characters /speak reads aloud")
    segment_seconds: float = setting(
        "PARLEY_TOOL_SEGMENT_SECONDS", 1200.0, p.number(30), "longer recordings are cut at silences"
    )


@dataclass(frozen=True, slots=True)
class Actions:
    """Tools the conversation model may call (reminders, the time, the group's memory, plugins)."""

    enabled: tuple[str, ...] = setting(
        "PARLEY_TOOLS", (), p.tool_names, "tools offered to the model, by entry-point name (e.g. datetime,reminders)"
    )
    rounds: int = setting("PARLEY_TOOL_ROUNDS", 3, p.whole(1), "rounds of tool calls before the model must answer")
    timeout_seconds: float = setting(
        "PARLEY_TOOL_TIMEOUT_SECONDS", 10.0, p.number(0.1), "how long one tool call may run"
    )
    result_chars: int = setting(
        "PARLEY_TOOL_RESULT_CHARS", 4000, p.whole(200), "a tool's result is cut to this many characters"
    )


@dataclass(frozen=True, slots=True)
class Operations:
    """How Parley runs: its database, workers, time limits, logs, webhook or polling, the ops listener."""

    db_path: Path = setting("PARLEY_DB", Path("parley.db"), p.path, "the SQLite file")
    database_url: str | None = setting(
        "DATABASE_URL", None, p.database_url, "PostgreSQL instead of the SQLite file", secret=True
    )
    db_pool: int = setting("PARLEY_DB_POOL", 10, p.whole(1), "PostgreSQL connections per process")
    workers: int = setting("PARLEY_WORKERS", 128, p.whole(1), "jobs in progress at once across all chats")
    audio_memory_mb: int = setting(
        "PARLEY_AUDIO_MEMORY_MB", 64, p.whole(1), "what the recordings of turns in progress may hold at once"
    )
    max_queue: int = setting("PARLEY_MAX_QUEUE", 500, p.whole(1), "accepted jobs not yet finished")
    shutdown_seconds: float = setting("PARLEY_SHUTDOWN_SECONDS", 20.0, p.number(0), "grace for replies on SIGTERM")
    job_lease_seconds: float = setting(
        "PARLEY_JOB_LEASE_SECONDS", 30.0, p.number(1), "a running job's lease, renewed while it runs"
    )
    slow_notice_seconds: float = setting(
        "PARLEY_SLOW_NOTICE_SECONDS", 15.0, p.number(1), "a slow reply gets a status message after this"
    )
    ffmpeg_timeout_seconds: float = setting(
        "PARLEY_FFMPEG_TIMEOUT_SECONDS", 60.0, p.number(1), "how long one audio conversion may take"
    )
    log_level: str = setting("PARLEY_LOG_LEVEL", "INFO", p.choice(LOG_LEVELS, upper=True), "the log level")
    log_format: str = setting("PARLEY_LOG_FORMAT", "text", p.choice(LOG_FORMATS), "text, or json per line")
    webhook_url: str | None = setting("PARLEY_WEBHOOK_URL", None, p.https_url, "take updates by webhook here")
    webhook_secret: str | None = setting(
        "PARLEY_WEBHOOK_SECRET", None, p.webhook_secret, "the webhook's secret token", secret=True
    )
    listen: Address = setting("PARLEY_LISTEN", Address("0.0.0.0", 8080), p.address, "the webhook server's address")
    metrics_listen: Address | None = setting(
        "PARLEY_METRICS_LISTEN", DEFAULT_METRICS_LISTEN, p.address_or_off, "health and metrics; off: none"
    )

    @property
    def database(self) -> Path | str:
        """Where the data lives: the PostgreSQL URL when DATABASE_URL is set, else the SQLite file."""
        return self.database_url or self.db_path

    @property
    def webhook(self) -> bool:
        """Updates arrive by webhook (PARLEY_WEBHOOK_URL set, or `parley run --webhook`) rather than polling."""
        return self.webhook_url is not None


GROUPS = (Telegram, Access, Model, Spend, Privacy, Groups, Tools, Actions, Operations)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, by group: `settings.telegram.token`, `settings.model.name`, `settings.operations.workers`."""

    telegram: Telegram
    access: Access
    model: Model
    spend: Spend
    privacy: Privacy
    groups: Groups
    tools: Tools
    operations: Operations
    actions: Actions = Actions()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never reach a log line or a chat message."""
        groups = (getattr(self, f.name) for f in fields(self))
        found = (getattr(group, name) for group in groups for name, spec in specs(type(group)) if spec.secret)
        return tuple(s for s in found if s)
