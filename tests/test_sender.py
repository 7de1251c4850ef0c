"""Telegram's length limits, counted the way Telegram counts them."""

from __future__ import annotations

import io
import logging

from bot.sender import MESSAGE_LIMIT, split_message, telegram_length
from parley.logs import REDACTED, configure_logging


def test_short_text_is_one_part() -> None:
    assert split_message("hello") == ["hello"]


def test_long_text_splits_at_word_breaks_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(2000))  # ~15,000 characters
    parts = split_message(text)
    assert len(parts) >= 4
    assert all(telegram_length(p) <= MESSAGE_LIMIT for p in parts)
    assert " ".join(parts) == text  # nothing lost, nothing cut mid-word


def test_paragraphs_are_preferred_split_points() -> None:
    text = ("a" * 3000) + "\n\n" + ("b" * 3000)
    assert split_message(text) == ["a" * 3000, "b" * 3000]


def test_emoji_count_as_two_units_and_are_never_cut_in_half() -> None:
    text = "😀" * 3000  # 6,000 UTF-16 units, no break points
    parts = split_message(text)
    assert [telegram_length(p) for p in parts] == [4096, 6000 - 4096]
    assert "".join(parts) == text


def test_text_without_spaces_is_cut_hard() -> None:
    parts = split_message("x" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_log_lines_never_carry_secrets() -> None:
    stream = io.StringIO()
    handler = configure_logging("DEBUG", ["123456:SECRET-token-value", "sk-secret-key-value"], stream=stream)
    try:
        log = logging.getLogger("parley.test")
        log.info("url https://api.telegram.org/bot123456:SECRET-token-value/getMe key=%s", "sk-secret-key-value")
        try:
            raise RuntimeError("boom with sk-secret-key-value inside")
        except RuntimeError:
            log.exception("failure")
        logging.getLogger("httpx").info("HTTP Request: POST https://x/bot123456:SECRET-token-value/getUpdates")
    finally:
        logging.getLogger().removeHandler(handler)
    output = stream.getvalue()
    assert "SECRET-token" not in output and "sk-secret" not in output
    # The URL, the argument, and the traceback's source line and message; httpx's INFO line is silenced.
    assert output.count(REDACTED) == 4
    assert "getUpdates" not in output
