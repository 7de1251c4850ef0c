"""Logging set-up. Secrets are redacted from every formatted line, tracebacks included.

httpx logs each request URL at INFO, and python-telegram-bot's Bot its API URL at DEBUG; Telegram URLs contain
the bot token: those loggers are kept at WARNING, and the redacting formatter is the second line of defence.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

REDACTED = "[REDACTED]"
NOISY_LOGGERS = (
    "httpx",
    "httpx2",
    "httpcore",
    "httpcore2",
    "openai",
    "apscheduler",
    "aiosqlite",
    # python-telegram-bot's Bot logs its API URLs, token included, at DEBUG.
    "telegram.Bot",
    "telegram.ext.ExtBot",
)


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class RedactingFormatter(logging.Formatter):
    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self._secrets)


_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for log shippers), redacted field by field and then as a whole.

    Fields: time (UTC, ISO 8601), level, logger, message, exception (the traceback, when there is one),
    and anything passed with `extra=`.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(secrets)

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        # Redact each string before encoding (JSON escapes could split a secret), then the line itself.
        safe = {k: redact(v, self._secrets) if isinstance(v, str) else v for k, v in entry.items()}
        return redact(json.dumps(safe, ensure_ascii=False, default=str), self._secrets)


def configure_logging(level: str, secrets: Iterable[str], stream=None, log_format: str = "text") -> logging.Handler:
    """Log to stderr (or `stream`) as text lines or, with log_format="json", as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(secrets))
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_noisy_loggers()
    return handler


def quiet_noisy_loggers() -> None:
    """HTTP client loggers print request URLs (with the bot token) at INFO: keep them at WARNING."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
