"""Text out of a document (plain text or PDF), in a child process that can be stopped.

A PDF is a program for a page-drawing machine: a 15 KB file can keep pypdf (pure Python) busy for minutes, and
a stream that inflates to tens of megabytes can take gigabytes to parse. Neither may cost the bot its memory,
its shutdown or a thread it cannot get back. So extraction runs in a separate Python process (`python -m
parley.documents`) with an address-space limit and a CPU-time limit of its own, a wall-clock deadline kept by
the bot, a page cap and a character cap. The bot kills it when the deadline passes or the job is cancelled
(as at shutdown), and the kernel kills it if the bot dies first. The child gets none of the bot's
environment (no secrets), only the document on stdin; its text comes back on stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import sys
from dataclasses import dataclass
from typing import Literal

from parley.errors import ParleyError

DocumentKind = Literal["pdf", "text"]

TEXT_SUFFIXES = (".txt", ".md", ".markdown")
EXIT_UNREADABLE = 3
EXIT_TOO_LARGE = 4
_KEPT_ENVIRONMENT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What one extraction may use: ample for pages of ordinary text, while pypdf's own parsing limits still
    let one hostile content stream take hundreds of MB and seconds a page."""

    seconds: float = 10.0
    memory_bytes: int = 256 * 1024 * 1024
    pages: int = 100
    chars: int = 200_000


class DocumentError(ParleyError):
    """The document cannot be read (not text or PDF, or broken); the person is told which files work."""


class DocumentTooComplex(DocumentError):
    """Extraction ran out of time or memory: a plain answer, and the job is not tried again."""


def document_kind(mime_type: str, file_name: str) -> DocumentKind | None:
    """A PDF, a text file, or neither (judged by the MIME type Telegram reports and the file's name)."""
    name = file_name.lower()
    if mime_type == "application/pdf" or name.endswith(".pdf"):
        return "pdf"
    if mime_type.startswith("text/") or name.endswith(TEXT_SUFFIXES):
        return "text"
    return None


async def extract_text(data: bytes, kind: DocumentKind, limits: DocumentLimits = DocumentLimits()) -> str:
    """The document's text (at most `limits.pages` pages, `limits.chars` characters), stripped.

    Raises DocumentError when it is unreadable and DocumentTooComplex when it hits the time or memory limit.
    Cancelling the caller kills the child at once.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "parley.documents",
        kind,
        str(limits.pages),
        str(limits.chars),
        str(limits.memory_bytes),
        str(math.ceil(limits.seconds) + 1),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={name: os.environ[name] for name in _KEPT_ENVIRONMENT if name in os.environ},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), timeout=limits.seconds)
    except TimeoutError:
        raise DocumentTooComplex(f"{kind}: extraction ran longer than {limits.seconds:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    code = proc.returncode
    detail = err.decode("utf-8", "replace").strip()[-300:]
    if code == 0:
        return out.decode("utf-8", "replace")
    if code == EXIT_TOO_LARGE or code == -signal.SIGXCPU or code == -signal.SIGKILL:
        raise DocumentTooComplex(f"{kind}: over a limit ({code}): {detail or 'killed'}")
    raise DocumentError(f"{kind}: unreadable ({code}): {detail}")


# --- the child process ------------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the bot that started it dies (elsewhere: the CPU limit)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


class _OverLimit(Exception):
    """pypdf refused to go on (its own limits on stream sizes and token counts)."""


def _pdf_text(data: bytes, pages: int, chars: int) -> str:
    from io import BytesIO

    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError

    try:
        reader = PdfReader(BytesIO(data))
        parts: list[str] = []
        total = 0
        for number in range(min(pages, len(reader.pages))):
            text = reader.pages[number].extract_text() or ""
            parts.append(text)
            total += len(text) + 1
            if total > chars:
                break
    except LimitReachedError as exc:
        raise _OverLimit(str(exc)) from exc
    return "\n".join(parts)


def _child(argv: list[str]) -> int:
    kind, pages, chars, memory_bytes, cpu_seconds = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    _die_with_parent()
    import logging

    logging.disable(logging.CRITICAL)  # pypdf warns about broken files on stderr, quoting them
    _limit(memory_bytes, cpu_seconds)
    data = sys.stdin.buffer.read()
    try:
        text = _pdf_text(data, pages, chars) if kind == "pdf" else data.decode("utf-8", "replace")
    except MemoryError:
        print("out of memory", file=sys.stderr)
        return EXIT_TOO_LARGE
    except _OverLimit as exc:
        print(f"pypdf's limit: {exc}", file=sys.stderr)
        return EXIT_TOO_LARGE
    except Exception as exc:  # pypdf raises many kinds of errors for broken files
        print(f"{type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
        return EXIT_UNREADABLE
    sys.stdout.buffer.write(text[:chars].strip().encode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
