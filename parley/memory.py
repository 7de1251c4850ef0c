"""Allocator settings for a long-running process that handles many short-lived megabyte buffers.

Every voice turn allocates a few buffers of 100 KB to a few MB (the note, its WAV, base64 text, JSON
bodies, the reply's audio) and frees them seconds later. glibc serves such sizes with mmap, but after the
first one is freed it raises its mmap threshold to that size (up to 32 MB), so later buffers come from the
heap, where small long-lived objects allocated in between pin them: the process keeps the memory after
every burst. A fixed threshold keeps big buffers on mmap (returned to the system on free); two arenas
instead of eight per core keep the SQLite and executor threads from each holding their own free lists.
What is left free inside the heap after a burst (small buffers between live objects) stays resident until
`release_free_memory` hands its pages back. What this saves is measured by `python -m bench` (README,
Benchmarks).
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 64 * 1024
ARENAS = 2


def tune_allocator() -> bool:
    """Apply the settings above when the C library is glibc; True if it took them. Call before threads start."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols include the C library's
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): their allocators behave differently
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_ARENA_MAX, ARENAS) == 1
    if not applied:
        log.debug("mallopt refused the allocator settings")
    return applied


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to call
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Give the free pages inside the heap back to the system (glibc's malloc_trim), so memory a burst
    used and freed is not kept until the next one. About 0.1 ms on a heap of this size; True if it
    released anything."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
