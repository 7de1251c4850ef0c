"""What the bot keeps resident: the allocator settings give memory back after a burst of megabyte buffers
(see parley/memory.py), and the bot imports no library it does not use."""

from __future__ import annotations

import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import ParleyProcess, lab_env

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


RARE_PATHS = {
    "ijson": "parley/chat_export.py: only an /import of a chat export parses one",
    "tiktoken": "parley/tokens.py: only a conversation near its token budget counts exactly",
    "aiohttp.web": "bot/webhook.py, parley/ops_server.py: only a webhook or metrics server serves",
}
"""Libraries a voice turn and the start-up never use, each imported where its rare path begins."""

MODULES_AT_EXIT = """
import atexit, os, sys
atexit.register(lambda: open(os.environ["MODULES_FILE"], "w").write("\\n".join(sorted(sys.modules))))
"""


async def test_start_up_and_a_voice_turn_leave_the_rare_paths_libraries_unimported(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """The real `parley run` (polling, metrics off) starts, answers a voice note and stops; a sitecustomize
    writes down every module it imported by then."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(MODULES_AT_EXIT)
    modules_file = tmp_path / "modules.txt"
    env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_METRICS_LISTEN="off")
    process = ParleyProcess({**env, "PYTHONPATH": str(tmp_path / "site"), "MODULES_FILE": str(modules_file)}, tmp_path)
    await process.start()
    try:
        ann = telegram.user(1001, "Ann")
        telegram.push_voice(1001, ann, make_voice_ogg(1.0))
        await telegram.wait_sent(1001, timeout=30)
        process.signal(signal.SIGTERM)
        assert await process.wait() == 0, process.text
    finally:
        await process.kill()
    imported = set(modules_file.read_text().split())
    assert {"openai", "bot.application", "parley.chat_export", "parley.tokens"} <= imported  # the list is real
    loaded = {name: why for name, why in RARE_PATHS.items() if name in imported}
    assert not loaded, f"imported at start or in a voice turn, though only a rare path needs it: {loaded}"


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
