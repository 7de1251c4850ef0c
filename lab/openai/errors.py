"""Errors in the real API's shape ({"error": {"message", "type", "param", "code"}}) and its wording."""

from __future__ import annotations

from typing import Any

__all__ = ["OpenAIAPIError", "invalid", "mask_key", "supported"]

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
    "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
    "accessing the API from your browser and are prompted for a username. You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
UNDECODABLE = "The audio file could not be decoded or its format is not supported."
SERVER_ERROR = (
    "The server had an error while processing your request. Sorry about that! You can retry your request, or "
    "contact us through our help center at help.openai.com if the error persists."
)




def supported(values: tuple[str, ...] | list[str]) -> str:
    """'a', 'b', and 'c' -- the enumeration style of the real API's "Supported values are" messages."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def mask_key(key: str) -> str:
    """The API key as the real 401 message shows it: first 5 characters, stars, then the tail."""
    tail = 4 if len(key) > 12 else 2
    if len(key) <= 5 + tail:
        return key[:2] + "*" * max(len(key) - 2, 0)
    return key[:5] + "*" * (len(key) - 5 - tail) + key[-tail:]


class OpenAIAPIError(Exception):
    """An error answer in the real shape {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid(message: str, param: str | None = None, code: str | None = "invalid_value") -> OpenAIAPIError:
    return OpenAIAPIError(400, message, param=param, code=code)
