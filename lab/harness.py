"""Runs the real application (python-telegram-bot and the openai SDK, unmodified) against the lab.

`running_bot(env)` starts Parley in this event loop exactly as `parley run` does, minus the signal
handlers; `ParleyProcess` runs the real `parley` command as a subprocess for start-up, exit-code and
signal behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from telegram.ext import Application

from bot.application import run_bot
from lab import FakeOpenAI, FakeTelegram
from parley.config import Settings, load_settings
from parley.services import Services
from storage import Storage


def lab_env(telegram: FakeTelegram, openai_api: FakeOpenAI, db_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "OPENAI_API_KEY": openai_api.api_key,
        "TELEGRAM_API_URL": telegram.url,
        "OPENAI_BASE_URL": openai_api.base_url,
        "PARLEY_DB": str(db_path),
        "PARLEY_MODEL_RETRIES": "0",
        "PARLEY_MODEL_TIMEOUT_SECONDS": "20",
        "PARLEY_LOG_LEVEL": "DEBUG",
        "PARLEY_METRICS_LISTEN": "off",  # tests of the ops endpoint pick a free port of their own
        "PARLEY_ALLOWED": "*",  # tests of access control narrow this down
        "PARLEY_USER_RATE": "1000/minute",  # … and tests of rate limits this
    }
    env.update(overrides)
    return env


@dataclass
class RunningBot:
    settings: Settings
    services: Services
    app: Application | None = None


@contextlib.asynccontextmanager
async def running_bot(env: dict[str, str], **run_options: float) -> AsyncIterator[RunningBot]:
    settings = load_settings(env)
    storage = await Storage.open(settings.operations.database, pool_size=settings.operations.db_pool)
    services = Services.build(settings, storage)
    stop, ready = asyncio.Event(), asyncio.Event()
    running = RunningBot(settings, services)

    def started(app: Application) -> None:
        running.app = app

    task = asyncio.create_task(
        run_bot(services, stop, poll_timeout=1, ready=ready, on_started=started, **run_options)  # type: ignore[arg-type]
    )
    try:
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()  # re-raise the start-up failure
        if waiter not in done:
            raise AssertionError("the bot did not start within 15 s")
        yield running
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await services.close()


class ParleyProcess:
    """`parley run` as a real process, with its stderr collected."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **env}
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = b""

    async def start(self, *args: str) -> None:
        await self.start_command("run", *args)

    async def start_command(self, command: str, *args: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            command,
            *args,
            cwd=self.cwd,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def wait(self, deadline: float = 30) -> int:
        assert self.proc is not None
        out, err = await asyncio.wait_for(self.proc.communicate(), timeout=deadline)
        self.stderr = out + err
        # Whatever the test checks, no run of the real command may print a secret it was given.
        for name in ("TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "PARLEY_WEBHOOK_SECRET"):
            secret = self.env.get(name, "")
            assert len(secret) < 8 or secret.encode() not in self.stderr, f"{name} appeared in the output"
        assert self.proc.returncode is not None
        return self.proc.returncode

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    @property
    def text(self) -> str:
        return self.stderr.decode("utf-8", "replace")
