"""What the bot keeps resident: the allocator settings give memory back after a burst of megabyte buffers
(see parley/memory.py), and the bot imports no library it does not use."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

BURST = """
import sys
from parley.memory import tune_allocator
def rss_mb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024
if sys.argv[1] == "tuned":
    assert tune_allocator()
first = bytearray(4 << 20); del first  # glibc raises its mmap threshold to the size of the first big free
buffers, kept = [], []
for _ in range(150):  # 90 MB of turn-sized buffers, small long-lived objects allocated between them
    buffers.append(bytearray(600_000))
    kept.append(bytearray(5_000))
before = rss_mb()
del buffers
print(before, rss_mb())
"""

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's allocator on Linux"
)


def _burst(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", BURST, mode], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = map(int, out.stdout.split())
    return before, after


@glibc_only
def test_tuned_allocator_returns_freed_buffers_that_the_default_keeps() -> None:
    default_before, default_after = _burst("default")
    tuned_before, tuned_after = _burst("tuned")
    assert default_after > default_before - 20  # the problem: glibc's default keeps nearly all of it
    assert tuned_before - tuned_after >= 70  # tuned: the 90 MB of buffers go back to the system


def test_the_bot_leaves_ffmpegs_libraries_to_the_workers_and_asyncpg_to_postgresql() -> None:
    """Each is megabytes the bot would hold for nothing: the codec workers decode and encode, and a bot on
    SQLite never opens a PostgreSQL connection."""
    probe = "import sys, bot.cli; print(sorted({'av', 'asyncpg'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]


HOLES = """
import sys
from parley.memory import release_free_memory, tune_allocator
def rss_mb():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1]) // 1024
assert tune_allocator()
buffers, kept = [], []
for _ in range(3000):  # 90 MB of buffers below the mmap threshold (a streamed reply's pieces), small ones kept between
    buffers.append(bytearray(30_000))
    kept.append(bytearray(2_000))
del buffers
before = rss_mb()
if sys.argv[1] == "release":
    assert release_free_memory()
print(before, rss_mb())
"""


@glibc_only
def test_released_memory_goes_back_to_the_system_though_live_objects_sit_between_the_holes() -> None:
    kept = subprocess.run([sys.executable, "-c", HOLES, "keep"], capture_output=True, text=True, timeout=60)
    released = subprocess.run([sys.executable, "-c", HOLES, "release"], capture_output=True, text=True, timeout=60)
    assert kept.returncode == 0 and released.returncode == 0, kept.stderr + released.stderr
    kept_before, kept_after = map(int, kept.stdout.split())
    released_before, released_after = map(int, released.stdout.split())
    assert kept_after > kept_before - 10  # freed, yet resident: the heap cannot shrink past the live objects
    assert released_before - released_after >= 60
