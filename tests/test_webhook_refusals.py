"""The webhook is cheap to refuse: 403 and 413 from the headers alone, 400 for what is not an update, and what
people write never reaches the log, whichever way updates arrive."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bot.webhook import SECRET_HEADER, WEBHOOK_MAX_BYTES
from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env, running_bot
from tests.probe import free_port
from tests.test_webhook import CHAT, SECRET, deliver_when_listening, forged_update, webhook_env

MB = 2**20
ENDPOINT = "http://127.0.0.1:{port}/telegram/hook"


async def junk(megabytes: int) -> AsyncIterator[bytes]:
    """A large body, streamed a megabyte at a time (never whole in this process's memory)."""
    chunk = b" " * MB
    for _ in range(megabytes):
        yield chunk


async def post_raw(url: str, body: object, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers={"Content-Type": "application/json", **headers}) as response,
    ):
        return response.status


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak the kernel has seen) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


async def test_large_posts_leave_the_bots_memory_flat(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """Four 95 MB POSTs without the secret, and four with it (declared and undeclared length), at once."""
    port = free_port()
    process = ParleyProcess(webhook_env(telegram, openai_api, tmp_path, port, PARLEY_LOG_LEVEL="INFO"), tmp_path)
    await process.start("--webhook")
    try:
        await telegram.wait_calls("setWebhook", timeout=30)
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "warm up")
        assert await deliver_when_listening(telegram, port) == [200]
        await telegram.wait_sent(CHAT, timeout=30)
        assert process.proc is not None
        before = memory(process.proc.pid)

        url = ENDPOINT.format(port=port)
        declared = {"Content-Length": str(95 * MB)}
        secret = {SECRET_HEADER: SECRET}
        statuses = await asyncio.gather(
            *(post_raw(url, junk(95), declared) for _ in range(2)),
            *(post_raw(url, junk(95), {**declared, SECRET_HEADER: "guessed-0123456789abcdef"}) for _ in range(2)),
            *(post_raw(url, junk(95), {**declared, **secret}) for _ in range(2)),
            *(post_raw(url, junk(95), secret) for _ in range(2)),  # chunked: the length is found while reading
        )
        after = memory(process.proc.pid)

        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "still fine?")
        assert await telegram.deliver_to_webhook(f"http://127.0.0.1:{port}") == [200]
        await telegram.wait_sent(CHAT, count=2, timeout=30)
        process.signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        await process.kill()

    assert statuses == [403, 403, 403, 403, 413, 413, 413, 413]
    grown = (after["VmHWM"] - before["VmHWM"]) / MB  # python-telegram-bot's own server: ~570 MB
    assert grown < 16, f"the bot's peak memory grew by {grown:.0f} MB (RSS now {after['VmRSS'] / MB:.0f} MB)"


async def test_what_is_not_an_update_gets_400_and_an_oversized_one_413(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    async with running_bot(webhook_env(telegram, openai_api, tmp_path, port)) as bot:
        url, secret = ENDPOINT.format(port=port), {SECRET_HEADER: SECRET}
        assert await post_raw(url, b'{"update_id": 5, "message": {"text": "cut off', secret) == 400
        assert await post_raw(url, b"\xff\xfe not even text", secret) == 400
        assert await post_raw(url, b"[]", secret) == 400
        assert await post_raw(url, json.dumps({"message": {"text": "no update id"}}), secret) == 400
        fits = forged_update(7, "x" * 100)
        padded = json.dumps(fits) + " " * (WEBHOOK_MAX_BYTES - len(json.dumps(fits)) + 1)
        assert await post_raw(url, padded, secret) == 413  # one byte over: padding counts, as Telegram's would
        assert await post_raw(url, padded, {}) == 403  # the secret is checked first

        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello after the junk")
        assert await telegram.deliver_to_webhook(f"http://127.0.0.1:{port}") == [200]
        [reply] = await telegram.wait_sent(CHAT)
        await bot.services.scheduler.wait_idle()
        jobs = await bot.services.storage.jobs.counts()
    assert reply.caption == "You said: hello after the junk"
    assert jobs == {"done": 1}


async def test_message_text_and_names_never_reach_the_log_at_debug(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """python-telegram-bot logs whole updates at DEBUG; none of what a person writes may reach the log."""
    words, name, username = "my diary says Zanzibar at noon", "Bartholomew", "barty_the_third"
    person = telegram.user(CHAT, name)
    person["username"] = username
    port = free_port()
    for mode, env in (
        ("polling", lab_env(telegram, openai_api, tmp_path / "polling.db")),
        ("webhook", webhook_env(telegram, openai_api, tmp_path, port)),
    ):
        assert env["PARLEY_LOG_LEVEL"] == "DEBUG"
        process = ParleyProcess(env, tmp_path)
        await process.start()
        try:
            telegram.push_text(CHAT, person, f"{words} ({mode})")
            if mode == "webhook":
                await telegram.wait_calls("setWebhook", timeout=30)
                assert await deliver_when_listening(telegram, port) == [200]
            await telegram.wait_for(
                lambda m=mode: any(f"({m})" in (s.caption or s.text or "") for s in telegram.sent_to(CHAT)), 30
            )
            process.signal(signal.SIGTERM)
            assert await process.wait() == 0
        finally:
            await process.kill()
        assert "Processing update" in process.text  # python-telegram-bot did log the update, at DEBUG …
        for private in ("Zanzibar", name, username):
            assert private not in process.text, f"{private!r} in the {mode} log"  # … but not what it said
