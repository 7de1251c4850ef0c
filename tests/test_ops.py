"""The operations endpoint against the real bot: /metrics counts exactly, /readyz tells what is broken,
commands and buttons get their log line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env, running_bot
from parley.audio import AudioConverter, find_ffmpeg
from parley.config import Address
from parley.metrics import Metrics
from parley.ops_server import OpsServer
from storage import Storage
from tests.probe import free_port, get, get_json, moved, scrape, value

CHAT = 1001
IGNORED_SUFFIXES = ("_bucket", "_sum", "_created")  # vary with timing; _count is what must move exactly


def counted(before: dict, after: dict) -> dict[tuple[str, frozenset], float]:
    return {
        key: change for key, change in moved(before, after, "parley_").items() if not key[0].endswith(IGNORED_SUFFIXES)
    }


def token_changes(model: str, usage: dict) -> dict[tuple[str, frozenset], float]:
    """What parley_tokens_total must move by for one API answer's usage (chat or transcription shape)."""
    prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
    completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
    details = usage.get("prompt_tokens_details") or usage.get("input_token_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    kinds = {
        "prompt_text": prompt - details.get("audio_tokens", 0),
        "prompt_audio": details.get("audio_tokens", 0),
        "completion_text": completion - completion_details.get("audio_tokens", 0),
        "completion_audio": completion_details.get("audio_tokens", 0),
        "cached": details.get("cached_tokens", 0),
    }
    return {
        ("parley_tokens_total", frozenset({"model": model, "kind": kind}.items())): float(count)
        for kind, count in kinds.items()
        if count
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


async def test_metrics_move_by_exactly_one_voice_turn(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, voice_ogg: bytes
) -> None:
    port = free_port()
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_METRICS_LISTEN=f"127.0.0.1:{port}")
    async with running_bot(env) as bot:
        url = f"http://127.0.0.1:{port}/metrics"
        status, content_type, _ = await get(url)
        assert status == 200 and content_type.startswith("text/plain; version=0.0.4")
        before = await scrape(url)
        telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), voice_ogg)
        await telegram.wait_sent(CHAT)
        await bot.services.scheduler.wait_idle()  # the transcript may be stored after the reply
        after = await scrape(url)

    [chat] = openai_api.chat_requests()
    [transcription] = openai_api.transcription_requests()
    expected = {
        key("parley_updates_total", kind="voice"): 1.0,
        key("parley_model_calls_total", purpose="reply", outcome="ok"): 1.0,
        key("parley_model_calls_total", purpose="transcription", outcome="ok"): 1.0,
        key("parley_model_call_seconds_count", purpose="reply"): 1.0,
        key("parley_model_call_seconds_count", purpose="transcription"): 1.0,
        key("parley_audio_conversion_seconds_count", direction="to_model"): 1.0,
        key("parley_audio_conversion_seconds_count", direction="to_voice"): 1.0,
        **token_changes(chat.answered_model, chat.usage),
        **token_changes("gpt-4o-mini-transcribe", transcription.response["usage"]),
    }
    assert counted(before, after) == expected
    assert value(after, "parley_telegram_api_reached") == 1.0
    assert value(after, "parley_jobs_queued") == 0.0 and value(after, "parley_jobs_in_flight") == 0.0
    assert value(after, "process_resident_memory_bytes") > 0


async def test_failures_are_counted_by_class_and_telegram_429s_are_counted(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, voice_ogg: bytes
) -> None:
    port = free_port()
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_METRICS_LISTEN=f"127.0.0.1:{port}")
    async with running_bot(env) as bot:
        url = f"http://127.0.0.1:{port}/metrics"
        before = await scrape(url)
        openai_api.fail_next(500)  # → ModelUnavailable, told to the user with a Try again button …
        telegram.fail_next("sendMessage", error_code=429, retry_after=1)  # … which first meets a flood limit
        telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), voice_ogg)
        [notice] = await telegram.wait_sent(CHAT)
        await bot.services.scheduler.wait_idle()
        after = await scrape(url)
    assert notice.reply_markup is not None  # the Try again button: the 429 was waited out, not given up on
    changes = counted(before, after)
    assert changes[key("parley_errors_total", **{"class": "ModelUnavailable"})] == 1.0
    assert changes[key("parley_model_calls_total", purpose="reply", outcome="ModelUnavailable")] == 1.0
    assert changes[key("parley_telegram_rate_limited_total")] == 1.0
    assert changes[key("parley_updates_total", kind="voice")] == 1.0
    assert key("parley_model_calls_total", purpose="reply", outcome="ok") not in changes
    assert [k for k in changes if k[0] == "parley_errors_total"] == [
        key("parley_errors_total", **{"class": "ModelUnavailable"})
    ]


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make `directory` refuse new files, for root too (chattr +i: root ignores permission bits)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        try:
            yield
        finally:
            directory.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("running as root, and this filesystem cannot make a directory immutable (chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(directory)], check=True)


async def test_readyz_names_the_broken_dependency_and_recovers(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = lab_env(telegram, openai_api, data / "parley.db", PARLEY_METRICS_LISTEN=f"127.0.0.1:{port}")
    async with running_bot(env) as bot:
        base = f"http://127.0.0.1:{port}"
        assert await get_json(f"{base}/healthz") == (200, {"status": "ok"})
        healthy = (200, {"ready": True, "checks": {"database": "ok", "ffmpeg": "ok", "telegram": "ok"}})
        assert await get_json(f"{base}/readyz") == healthy

        real_ffmpeg = bot.services.audio.ffmpeg_path
        bot.services.audio.ffmpeg_path = str(tmp_path / "no-such-ffmpeg")
        status, body = await get_json(f"{base}/readyz")
        bot.services.audio.ffmpeg_path = real_ffmpeg
        assert status == 503 and body["ready"] is False
        assert body["reason"].startswith(f"ffmpeg: cannot run {tmp_path / 'no-such-ffmpeg'}")
        assert body["checks"]["database"] == "ok" and body["checks"]["telegram"] == "ok"
        assert await get_json(f"{base}/readyz") == healthy

        with read_only(data):
            status, body = await get_json(f"{base}/readyz")
        assert status == 503
        assert body["reason"].startswith(f"database: cannot write in {data.resolve()}")
        assert body["checks"]["ffmpeg"] == "ok"
        assert await get_json(f"{base}/readyz") == healthy


async def test_readyz_waits_for_telegram_and_turns_work_away_when_stopping(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "parley.db")
    metrics, stopping = Metrics(), asyncio.Event()
    address = Address("127.0.0.1", free_port())
    server = OpsServer(
        address, storage=storage, audio=AudioConverter(find_ffmpeg()), metrics=metrics, stopping=stopping
    )
    await server.start()
    try:
        url = f"http://{address}/readyz"
        status, body = await get_json(url)
        assert (status, body["reason"]) == (503, "telegram: the Bot API has not answered yet")
        metrics.telegram_succeeded()
        assert (await get_json(url))[0] == 200
        stopping.set()
        assert await get_json(url) == (503, {"ready": False, "reason": "shutting down"})
        assert await get_json(f"http://{address}/healthz") == (200, {"status": "ok"})
    finally:
        await server.stop()
        await storage.close()


async def test_metrics_address_in_use_is_a_plain_start_up_error(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_METRICS_LISTEN=f"127.0.0.1:{port}")
        process = ParleyProcess(env, tmp_path)
        await process.start()
        assert await process.wait() == 2
    assert f"parley: PARLEY_METRICS_LISTEN: cannot listen on 127.0.0.1:{port}" in process.text
    assert "Traceback" not in process.text
    assert telegram.calls == []  # refused before anything else started


async def test_commands_and_buttons_get_one_log_line_each(
    parley, telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.dispatch")
    ann = telegram.user(CHAT, "Ann")
    help_id = telegram.push_text(CHAT, ann, "/help")
    voice_id = telegram.push_text(CHAT, ann, "/voice")
    _, menu = await telegram.wait_sent(CHAT, count=2)
    telegram.push_callback(CHAT, ann, menu.message_id, "voice:coral")
    await telegram.wait_calls("editMessageText")
    await parley.services.scheduler.wait_idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.dispatch" and " kind=" in r.getMessage()]
    assert len(lines) == 3, lines
    assert re.fullmatch(rf"chat={CHAT} message={help_id} job=\d+ kind=help total=\d+ms outcome=ok", lines[0])
    assert re.fullmatch(rf"chat={CHAT} message={voice_id} job=\d+ kind=voice total=\d+ms outcome=ok", lines[1])
    assert re.fullmatch(rf"chat={CHAT} message=None job=\d+ kind=button total=\d+ms outcome=ok", lines[2])
