"""The real `parley run` as a child process, its log written to a file, its CPU and memory read from /proc.

An operator pays for the whole process tree: the bot, its codec workers and any ffmpeg it runs. CPU is
summed over the tree (live descendants, and the children the bot has reaped); memory is the sum of the
tree's proportional set sizes (PSS: a library page shared by the workers is counted once, not once per
process), sampled while the bot works, and the sum of resident sizes beside it."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from lab import FakeOpenAI, FakeTelegram

MEMORY_INTERVAL = 0.1
"""How often the tree's memory is sampled during a run. Reading a process's PSS makes the kernel walk its page
tables (milliseconds for the bot), on the cores the bot is measured on: sampled more often, the sampler
would take a visible share of them during a burst."""


class LogReader(abc.ABC):
    """What the scenarios read of a bot's log, whether the bot is one process or several."""

    @abc.abstractmethod
    def log_lines(self) -> list[str]:
        """Every complete line so far."""

    @abc.abstractmethod
    def raise_if_exited(self) -> None:
        """Raise if a process of the bot has exited: a log that stopped growing would be waited on for nothing."""

    def count_in_log(self, needle: str) -> int:
        return sum(1 for line in self.log_lines() if needle in line)

    async def wait_log(self, needle: str, count: int, timeout: float = 300.0) -> None:  # noqa: ASYNC109
        """Wait until `needle` appears on `count` log lines (stderr is line-buffered, even into a file)."""
        deadline = time.monotonic() + timeout
        while self.count_in_log(needle) < count:
            self.raise_if_exited()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} log lines with {needle!r} did not appear within {timeout:g} s")
            await asyncio.sleep(0.02)


class BotProcess(LogReader):
    """One run of the bot. The log goes to a file: a pipe nobody reads would fill up and stall the bot.
    From its start until `close`, its tree's memory is sampled (`peak_tree`)."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), **env}
        if "PYTHONPATH" in os.environ:  # benchmark another checkout: PYTHONPATH=/path/to/it python -m bench
            self.env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self._lines: list[str] = []
        self._log_read = 0
        self.peak_tree = (0, 0)
        self.peak_split = (0, 0)
        """The bot's own PSS and its descendants' (the codec workers) at the moment of the tree's PSS peak."""
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Spawn `python -m bot run`; `started_at` is the monotonic time just before the spawn."""
        with self.log_path.open("wb") as log:
            self.started_at = time.monotonic()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "run",
                cwd=self.workdir,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._watcher = asyncio.create_task(self.watch_memory())

    @property
    def exited(self) -> bool:
        return self.proc is not None and self.proc.returncode is not None

    def _status(self, field: str) -> int:
        """A VmRSS/VmHWM-style field of /proc/PID/status, in bytes."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"{field} not in /proc/{self.proc.pid}/status")

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) of the bot itself, and of everything under it: the codec workers and
        any other live descendants, and the children it has already reaped (its ffmpeg runs)."""
        assert self.proc is not None
        own, reaped = _cpu(self.proc.pid)
        below = reaped
        for pid in self.descendants():
            try:
                mine, theirs = _cpu(pid)
            except OSError:
                continue  # gone meanwhile: its time is now in its parent's reaped children
            below += mine + theirs
        return own, below

    def reaped_seconds(self) -> float:
        """CPU time of the children the bot has already reaped (an ffmpeg run; never a codec worker, which
        lives as long as the bot)."""
        assert self.proc is not None
        return _cpu(self.proc.pid)[1]

    def descendants(self) -> list[int]:
        """The bot's live descendants, read from each process's `children` lists in /proc: a few small reads,
        where scanning every process of a shared machine costs milliseconds of the CPU the bot is measured on."""
        assert self.proc is not None
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                children = [int(child) for child in _children(pid)]
            except OSError:
                continue  # gone meanwhile
            found.extend(children)
            todo.extend(children)
        return found

    def tree_memory(self) -> tuple[int, int]:
        """(PSS, RSS) of the bot and its descendants now, in bytes."""
        pss, rss, _ = self._tree_memory()
        return pss, rss

    def _tree_memory(self) -> tuple[int, int, int]:
        """(PSS, RSS) of the bot and its descendants now, and the bot's own PSS, in bytes."""
        assert self.proc is not None
        pss = rss = own = 0
        for pid in [self.proc.pid, *self.descendants()]:
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        if pid == self.proc.pid:
                            own = int(line.split()[1]) * 1024
                    elif line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
            except OSError:
                continue
        return pss, rss, own

    async def watch_memory(self, interval: float = MEMORY_INTERVAL) -> None:
        """Sample the tree's memory until cancelled; `peak_tree` holds the highest (PSS, RSS) seen, `peak_split`
        how the PSS peak divided between the bot and its codec workers."""
        while True:
            if self.proc is not None and self.proc.returncode is None:
                pss, rss, own = self._tree_memory()
                if pss > self.peak_tree[0]:
                    self.peak_split = (own, pss - own)
                self.peak_tree = (max(self.peak_tree[0], pss), max(self.peak_tree[1], rss))
            await asyncio.sleep(interval)

    def reset_peak_tree(self) -> None:
        self.peak_tree = (0, 0)
        self.peak_split = (0, 0)

    @property
    def rss(self) -> int:
        return self._status("VmRSS")

    @property
    def peak_rss(self) -> int:
        """The high-water mark of resident memory since the process started (the kernel keeps it)."""
        return self._status("VmHWM")

    def log_lines(self) -> list[str]:
        """Every complete line so far. Only what was appended since the last call is read: the bench polls
        the log while the bot works, and re-reading a growing file would take CPU from the bot it measures."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_read)
            fresh = log.read()
        complete = fresh.rfind(b"\n") + 1
        self._log_read += complete
        self._lines.extend(fresh[:complete].decode("utf-8", "replace").splitlines())
        return self._lines

    def raise_if_exited(self) -> None:
        if self.proc is not None and self.proc.returncode is not None:
            raise RuntimeError(f"the bot exited with {self.proc.returncode}; see {self.log_path}")

    async def stop(self) -> int:
        """SIGTERM, as `docker stop` does; the bot finishes its jobs and exits."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout=60)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    async def close(self) -> None:
        """Stop sampling memory, and kill the bot if it still runs (a run left by an error)."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@contextlib.asynccontextmanager
async def stand_ins(
    reply: str, reply_wav: bytes | None
) -> AsyncIterator[tuple[FakeTelegram, FakeOpenAI, list[BotProcess]]]:
    """Fresh stand-ins whose model answers `reply` (spoken as `reply_wav`; a tone without it), and the list
    the caller adds the bots it runs against them to.

    However it is left, every bot in the list is closed and the stand-ins stop. Left normally, it then raises
    if a stand-in recorded an internal error: figures measured against a broken lab would mean nothing."""
    telegram, openai_api = FakeTelegram(), FakeOpenAI()
    await telegram.start()
    await openai_api.start()
    openai_api.reply_text = lambda body: reply
    if reply_wav is not None:
        openai_api.reply_audio = lambda text: reply_wav
    bots: list[BotProcess] = []
    try:
        yield telegram, openai_api, bots
    finally:
        for bot in bots:
            await bot.close()
        await telegram.stop()
        await openai_api.stop()
    for fake in (telegram, openai_api):
        if fake.internal_errors:
            raise RuntimeError(f"{type(fake).__name__} crashed:\n" + "\n".join(fake.internal_errors))


def _children(pid: int) -> list[str]:
    """Direct children of `pid`, from every thread's list (a child belongs to the thread that forked it)."""
    found: list[str] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            found.extend(Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


def _cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process, user + system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(value) / ticks for value in fields[11:15])
    return utime + stime, cutime + cstime
