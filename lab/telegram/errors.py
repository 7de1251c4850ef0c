"""Errors exactly as the Bot API shapes them, and the limits the real server enforces."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DOWNLOAD_LIMIT",
    "LOCAL_DOWNLOAD_LIMIT",
    "MAX_CAPTION",
    "MAX_TEXT",
    "UPLOAD_LIMIT",
    "TelegramAPIError",
    "bad",
]

LOCAL_DOWNLOAD_LIMIT = 2000 * 1024 * 1024
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files ("file is too big")
UPLOAD_LIMIT = 50 * 1024 * 1024  # multipart uploads beyond this get HTTP 413
MAX_TEXT = 4096
MAX_CAPTION = 1024


class TelegramAPIError(Exception):
    """An error answer exactly as the Bot API shapes it: error_code, description, optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad(description: str) -> TelegramAPIError:
    """A 400, worded as the real server words it ("Bad Request: …")."""
    return TelegramAPIError(400, f"Bad Request: {description}")
