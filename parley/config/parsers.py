"""Parsers for settings: each takes a variable's stripped, non-empty text and returns a value or raises Invalid.

Messages finish the sentence that starts with the variable's name and say what to write instead, so an
operator can fix a deployment without reading a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parley.access import AccessList, Rate
from parley.config.declare import Invalid
from parley.i18n.locales import SHIPPED, normalise
from parley.prices import PriceError, PriceTable

_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{10,}$")
_VOICE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_ADDRESS_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9.-]+)):(?P<port>\d{1,5})$")
_WEBHOOK_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


class Address(NamedTuple):
    """A host and port to listen on, written `host:port` (`[::]:8080` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def text(value: str) -> str:
    return value


def lower(value: str) -> str:
    return value.lower()


def path(value: str) -> Path:
    return Path(value)


def bot_token(value: str) -> str:
    if not _TOKEN_RE.match(value):
        raise Invalid("does not look like a bot token (digits, a colon, then letters): copy it again from BotFather")
    return value


def url(value: str) -> str:
    """An http(s) API root, without a trailing slash (paths are appended to it)."""
    if not re.match(r"^https?://[^\s/]+", value):
        raise Invalid(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


def database_url(value: str) -> str:
    """A PostgreSQL connection URL. The value is never echoed back: it usually carries a password."""
    if not re.match(r"^postgres(ql)?://[^\s/]*[^\s/@:]/?", value):
        raise Invalid("must be a postgresql://user:password@host:5432/database URL")
    return value


def https_url(value: str) -> str:
    if not re.match(r"^https://[^\s/]+", value):
        raise Invalid(f"must be an https:// URL (Telegram only posts to HTTPS), got {value!r}")
    return value


def webhook_secret(value: str) -> str:
    if not _WEBHOOK_SECRET_RE.match(value):
        raise Invalid("must be 16-256 letters, digits, _ or - (e.g. the output of `openssl rand -hex 32`)")
    return value


def flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise Invalid(f"must be true or false, got {value!r}")


Number = TypeVar("Number", int, float)


def _at_least(convert: Callable[[str], Number], kind: str, minimum: Number) -> Callable[[str], Number]:
    def parse(value: str) -> Number:
        try:
            parsed = convert(value)
        except ValueError:
            raise Invalid(f"must be {kind}, got {value!r}") from None
        if parsed < minimum:
            raise Invalid(f"must be at least {minimum:g}, got {value!r}")
        return parsed

    return parse


def number(minimum: float) -> Callable[[str], float]:
    """A number of at least `minimum`."""
    return _at_least(float, "a number", minimum)


def whole(minimum: int) -> Callable[[str], int]:
    """A whole number of at least `minimum`."""
    return _at_least(int, "a whole number", minimum)


def hours_or_never(value: str) -> float | None:
    """A number of hours; 0 means never, as unset does."""
    return number(0)(value) or None


def choice(options: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    """One of `options`, compared case-insensitively and returned in the options' case."""
    said = " or ".join(options) if len(options) == 2 else "one of " + ", ".join(options)

    def parse(value: str) -> str:
        value = value.upper() if upper else value.lower()
        if value not in options:
            raise Invalid(f"must be {said}, got {value!r}")
        return value

    return parse


def rate(value: str) -> Rate:
    try:
        return Rate.parse(value)
    except ValueError:
        raise Invalid(f"must look like 10/minute (a count per second, minute, hour or day), got {value!r}") from None


def access_list(value: str) -> AccessList:
    try:
        return AccessList.parse(value)
    except ValueError as exc:
        raise Invalid(f"has {str(exc)!r}, which is not a user id, an @username, a group chat id or *") from None


def user_ids(value: str) -> frozenset[int]:
    entries = [e.strip() for e in value.split(",") if e.strip()]
    bad = [e for e in entries if not re.fullmatch(r"\d+", e)]
    if bad:
        raise Invalid(f"must list numeric user ids (ask @userinfobot for yours), got {bad[0]!r}")
    return frozenset(int(e) for e in entries)


def language(value: str) -> str:
    """A shipped language, as a locale or a language tag ('de', 'pt-BR', 'zh_Hans')."""
    locale = normalise(value)
    if locale is None:
        raise Invalid(f"must be one of the languages Parley ships ({', '.join(SHIPPED)}), got {value!r}")
    return locale


def timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"must be a timezone name like Europe/Berlin or UTC, got {value!r}") from None
    return value


def names(value: str) -> tuple[str, ...]:
    """Comma-separated model (or Azure deployment) names, in order, without repeats."""
    listed = tuple(dict.fromkeys(m.strip() for m in value.split(",") if m.strip()))
    if not listed:
        raise Invalid("must be a comma-separated list of model (or Azure deployment) names")
    return listed


def tool_names(value: str) -> tuple[str, ...]:
    """Comma-separated `parley.tools` entry-point names; whether each is installed is checked at start-up."""
    listed = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not listed or any(not re.match(r"^[A-Za-z0-9_.-]{1,64}$", n) for n in listed):
        raise Invalid(f"must be a comma-separated list of tool names like datetime,reminders, got {value!r}")
    return listed


def voices(value: str) -> tuple[str, ...]:
    parsed = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    if not parsed or any(not _VOICE_RE.match(v) for v in parsed):
        raise Invalid(f"must be a comma-separated list of voice names, got {value!r}")
    return parsed


def price_table(value: str) -> Path:
    """The path of a price table, checked by loading it now rather than at the first reply."""
    try:
        PriceTable.load(Path(value))
    except PriceError as exc:
        raise Invalid(f": {exc}") from None
    return Path(value)


def address(value: str) -> Address:
    match = _ADDRESS_RE.match(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise Invalid(f"must be host:port (e.g. 127.0.0.1:9090 or [::]:9090), got {value!r}")
    return Address(match["v6"] or match["host"], int(match["port"]))


def address_or_off(value: str) -> Address | None:
    if value.lower() == "off":
        return None
    try:
        return address(value)
    except Invalid:
        raise Invalid(f"must be host:port (e.g. 127.0.0.1:9090 or [::]:9090, or off), got {value!r}") from None
