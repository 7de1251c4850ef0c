"""What people write never reaches the log, at any level.

python-telegram-bot logs whole updates at DEBUG ("Processing update …", with the message text, names and
usernames), and the Bot API's parameters and answers too; a log line outlives /forget. Records of its
loggers keep their sentence and lose their arguments, except what cannot carry words: numbers, exceptions,
and short identifier-like strings (method names, ids). Parley's own lines name chats and messages by id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from enum import Enum

WITHHELD = "[withheld]"
LIBRARY_PREFIX = "telegram"
_PLAIN = re.compile(r"[\w.:/@-]{0,64}")


def _safe(value: object) -> object:
    if value is None or isinstance(value, int | float | Enum | BaseException):
        return value
    if isinstance(value, str) and _PLAIN.fullmatch(value):
        return value
    return WITHHELD


class WithholdUpdates(logging.Filter):
    """A handler filter: python-telegram-bot's records keep their message and lose what may quote people."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != LIBRARY_PREFIX and not record.name.startswith(LIBRARY_PREFIX + "."):
            return True
        if not isinstance(record.msg, str):
            record.msg = WITHHELD
        if isinstance(record.args, Mapping):
            record.args = {key: _safe(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_safe(value) for value in record.args)
        return True


def withhold_updates(handler: logging.Handler) -> None:
    """Install the filter on the handler every record goes through (the one configure_logging made)."""
    handler.addFilter(WithholdUpdates())
