"""A full disk loses nothing: the real `parley run` with its database on a small filesystem that fills up.
Every message is either taken (and answered, once there is room again) or its sender is told plainly that it
could not be taken; none is left without a word."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env

FRIEND = 222
CHECKOUT = str(Path(__file__).resolve().parents[1])
SIZE = "4m"


@contextlib.contextmanager
def small_filesystem(where: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted at `where` (the test runs as root), unmounted whatever happens."""
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem has no byte left."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


async def test_a_full_disk_loses_no_message(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    friend = telegram.user(FRIEND, "Friend")
    with small_filesystem(tmp_path / "disk") as disk:
        env = lab_env(telegram, openai_api, disk / "parley.db", PARLEY_ALLOWED=str(FRIEND))
        env["PYTHONPATH"] = CHECKOUT  # this checkout's code, as the suite's
        process = ParleyProcess(env, tmp_path)
        await process.start()
        try:
            telegram.push_text(FRIEND, friend, "before")
            await telegram.wait_sent(FRIEND, timeout=30)
            await telegram.wait_consumed()

            filler = await _in_thread(fill, disk)
            during = [telegram.push_text(FRIEND, friend, f"while full {i}") for i in range(3)]
            await telegram.wait_for(lambda: _answered(telegram, during), timeout=60, what="a word for each")
            notices = [m for m in telegram.sent_to(FRIEND) if m.text == texts.NOT_STORED]

            filler.unlink()  # room again
            after = telegram.push_text(FRIEND, friend, "after")
            await telegram.wait_for(lambda: _answered(telegram, [*during, after]), timeout=60)
            # What was taken while the disk was full is answered now, not left for a restart.
            taken = [m for m in during if m not in {n.reply_to_message_id for n in notices}]
            await telegram.wait_for(lambda: _replied(telegram, taken), timeout=60, what="the taken ones answered")
        finally:
            process.signal(signal.SIGTERM)
            await process.wait(60)
    assert "database or disk is full" in process.text  # the disk really was full
    assert _replied(telegram, [after])
    told = {n.reply_to_message_id for n in notices}
    assert told <= set(during)  # a notice only for what could not be taken (the rest is answered above)


def _answered(telegram: FakeTelegram, asked: list[int]) -> bool:
    """Each message has something in reply: an answer, or a plain notice."""
    replied = {m.reply_to_message_id for m in telegram.sent_to(FRIEND)}
    return all(a in replied for a in asked)


def _replied(telegram: FakeTelegram, asked: list[int]) -> bool:
    replied = {m.reply_to_message_id for m in telegram.sent_to(FRIEND) if m.kind == "voice"}
    return all(a in replied for a in asked)


async def _in_thread(function: Callable[[Path], Path], disk: Path) -> Path:
    return await asyncio.to_thread(function, disk)


async def test_what_was_taken_is_answered_when_room_returns(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    with small_filesystem(tmp_path / "disk") as disk:
        env = lab_env(telegram, openai_api, disk / "parley.db", PARLEY_ALLOWED=str(FRIEND))
        env["PYTHONPATH"] = CHECKOUT
        process = ParleyProcess(env, tmp_path)
        await process.start()
        try:
            openai_api.latency = 3.0  # the first is being answered; the other two are taken and wait their turn
            taken = [telegram.push_text(FRIEND, friend, f"taken {i}") for i in range(3)]
            await telegram.wait_consumed(timeout=30)
            await openai_api.wait_for(lambda: len(openai_api.chat_requests()) >= 1)
            filler = await _in_thread(fill, disk)  # the disk fills up meanwhile
            openai_api.latency = 0.0
            await telegram.wait_for(lambda: _answered(telegram, taken[:1]), timeout=30, what="the first, a word")
            await asyncio.sleep(6)  # the next cannot even be started
            filler.unlink()  # room again: no restart
            await telegram.wait_for(lambda: _replied(telegram, taken[1:]), timeout=60, what="the taken ones")
        finally:
            process.signal(signal.SIGTERM)
            await process.wait(60)
    assert "the database refuses writes" in process.text  # they really waited for room
