"""Allocator settings for a long-running process that handles many short-lived megabyte buffers.

Every voice turn allocates a few buffers of 100 KB to a few MB (the note, its WAV, base64 text, JSON
bodies, the reply's audio) and frees them seconds later. glibc serves such sizes with mmap, but after the
first one is freed it raises its mmap threshold to that size (up to 32 MB), so later buffers come from the
heap, where small long-lived objects allocated in between pin them: the process keeps the memory after
every burst. A fixed threshold keeps big buffers on mmap (returned to the system on free); two arenas
instead of eight per core keep the SQLite and executor threads from each holding their own free lists.
What this saves is measured by `python -m bench` (README, Benchmarks).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 64 * 1024
ARENAS = 2


def tune_allocator() -> bool:
    """Apply the settings above when the C library is glibc; True if it took them. Call before threads start."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS): their allocators behave differently
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 and mallopt(M_ARENA_MAX, ARENAS) == 1
    if not applied:
        log.debug("mallopt refused the allocator settings")
    return applied
