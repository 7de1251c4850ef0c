"""The shape every Bot API method of the stand-in has, and how a family of them is listed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .records import ApiCall
from .state import TelegramState

__all__ = ["Handler", "Methods"]

Handler = Callable[[TelegramState, ApiCall], Awaitable[Any]]
"""One Bot API method: the server's state and the recorded call (its params and files) in, the result out;
failures raise TelegramAPIError as the real server would answer them."""

Methods = dict[str, Handler]
"""A family of methods by lower-cased name (the Bot API's method names are case-insensitive)."""
