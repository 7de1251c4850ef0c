"""Webhook mode: setWebhook with a secret, 403 for anything without it, the same replies and clean stop."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bot.application import ALLOWED_UPDATES
from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env, running_bot
from parley.config import ConfigError, load_settings
from tests.probe import free_port

CHAT, STRANGER = 1001, 6666
SECRET = "webhook-secret-0123456789abcdef"
URL = "https://parley.example/telegram/hook"


def webhook_env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, port: int, **extra: str) -> dict:
    return lab_env(
        telegram,
        openai_api,
        tmp_path / "parley.db",
        PARLEY_WEBHOOK_URL=URL,
        PARLEY_WEBHOOK_SECRET=SECRET,
        PARLEY_LISTEN=f"127.0.0.1:{port}",
        **extra,
    )


def forged_update(update_id: int, text: str) -> dict[str, Any]:
    """An update as Telegram would send it, but posted by someone who does not know the secret."""
    person = {"id": STRANGER, "is_bot": False, "first_name": "Mallory"}
    message = {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": STRANGER, "type": "private", "first_name": "Mallory"},
        "from": person,
        "text": text,
    }
    return {"update_id": update_id, "message": message}


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=json.dumps(body), headers={"Content-Type": "application/json", **headers}) as response,
    ):
        return response.status


async def deliver_when_listening(telegram: FakeTelegram, port: int) -> list[int]:
    """The first POST may come before the server listens (a process just started): retry the connection."""
    for _ in range(200):
        try:
            return await telegram.deliver_to_webhook(f"http://127.0.0.1:{port}")
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


async def test_requests_without_the_secret_get_403_and_are_never_processed(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    async with running_bot(webhook_env(telegram, openai_api, tmp_path, port)) as bot:
        [call] = telegram.calls_of("setWebhook")
        assert call.params["url"] == URL
        assert call.params["secret_token"] == SECRET
        assert call.params["allowed_updates"] == [str(kind) for kind in ALLOWED_UPDATES]
        assert telegram.calls_of("getUpdates") == []  # no polling alongside the webhook

        endpoint = f"http://127.0.0.1:{port}/telegram/hook"
        assert await post(endpoint, forged_update(1, "no header"), {}) == 403
        wrong = {"X-Telegram-Bot-Api-Secret-Token": "guessed-secret-0123456789abcdef"}
        assert await post(endpoint, forged_update(2, "wrong secret"), wrong) == 403
        assert await post(endpoint, forged_update(3, "empty secret"), {"X-Telegram-Bot-Api-Secret-Token": ""}) == 403

        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "Hello over the webhook")
        assert await telegram.deliver_to_webhook(f"http://127.0.0.1:{port}") == [200]
        [reply] = await telegram.wait_sent(CHAT)
        await bot.services.scheduler.wait_idle()
        jobs = await bot.services.storage.jobs.counts()

    assert reply.caption == "You said: Hello over the webhook"
    assert telegram.sent_to(STRANGER) == []
    assert jobs == {"done": 1}  # the forged updates never became jobs
    [chat] = openai_api.chat_requests()
    assert "Mallory" not in json.dumps(chat.json)


async def test_an_update_posted_several_times_at_once_is_answered_once(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    async with running_bot(webhook_env(telegram, openai_api, tmp_path, port)) as bot:
        ann = telegram.user(CHAT, "Ann")
        telegram.push_text(CHAT, ann, "once, please")
        telegram.push_text(CHAT, ann, "and this once too")
        deliveries = await telegram.post_updates(f"http://127.0.0.1:{port}", copies=3)
        assert [d.status for d in deliveries] == [200] * 6  # duplicates too: Telegram must stop sending them
        await telegram.wait_sent(CHAT, count=2)
        await bot.services.scheduler.wait_idle()
        jobs = await bot.services.storage.jobs.counts()
        [(recorded,)] = await bot.services.storage.db.fetch_all("SELECT COUNT(*) FROM updates")
    assert sorted(m.caption or "" for m in telegram.sent_to(CHAT)) == [
        "You said: and this once too",
        "You said: once, please",
    ]
    assert jobs == {"done": 2} and recorded == 2
    assert len(openai_api.chat_requests()) == 2


async def test_an_update_the_database_cannot_record_is_refused_with_503_and_taken_when_sent_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    """Whether an update is new is the database's to say: while it cannot, Telegram is told to send it again."""
    port = free_port()
    address = f"http://127.0.0.1:{port}"

    async def sql(statement: str) -> None:
        connection = await asyncpg.connect(postgres_url)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    async with running_bot(webhook_env(telegram, openai_api, tmp_path, port, DATABASE_URL=postgres_url)):
        note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "are you there?")
        await sql("ALTER TABLE updates RENAME TO updates_away")  # the table cannot be written
        assert await telegram.deliver_to_webhook(address) == [503]
        await sql("ALTER TABLE updates_away RENAME TO updates")
        assert await telegram.deliver_to_webhook(address) == [200]  # Telegram's next try
        [reply] = await telegram.wait_sent(CHAT)
    assert reply.reply_to_message_id == note


async def test_parley_run_webhook_answers_and_stops_cleanly_with_json_logs(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    port = free_port()
    env = webhook_env(telegram, openai_api, tmp_path, port, PARLEY_LOG_FORMAT="json")
    del env["PARLEY_WEBHOOK_URL"]  # --webhook alone selects the mode; the URL then comes from .env
    (tmp_path / ".env").write_text(f"PARLEY_WEBHOOK_URL={URL}\n")
    process = ParleyProcess(env, tmp_path)
    await process.start("--webhook")
    try:
        await telegram.wait_calls("setWebhook", timeout=30)
        note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "Are you there?")
        assert await deliver_when_listening(telegram, port) == [200]
        [reply] = await telegram.wait_sent(CHAT, timeout=30)
        assert reply.reply_to_message_id == note
        process.signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        await process.kill()

    entries = [json.loads(line) for line in process.text.splitlines() if line.strip()]
    assert entries and all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    messages = [entry["message"] for entry in entries]
    assert any(re.fullmatch(rf"chat={CHAT} message={note} job=\d+ kind=text .*outcome=ok", m) for m in messages)
    assert messages[-1] == "stopped"
    for secret in (SECRET, telegram.token, telegram.token.split(":")[1], openai_api.api_key):
        assert secret not in process.text


@pytest.mark.parametrize(
    ("env", "webhook", "expected"),
    [
        ({"PARLEY_WEBHOOK_URL": URL}, False, ["PARLEY_WEBHOOK_SECRET is not set: webhook mode needs one"]),
        ({}, True, ["PARLEY_WEBHOOK_URL is not set: --webhook needs", "PARLEY_WEBHOOK_SECRET is not set"]),
        (
            {"PARLEY_WEBHOOK_URL": "http://parley.example/hook", "PARLEY_WEBHOOK_SECRET": SECRET},
            False,
            ["PARLEY_WEBHOOK_URL must be an https:// URL"],
        ),
        (
            {"PARLEY_WEBHOOK_URL": URL, "PARLEY_WEBHOOK_SECRET": "short"},
            False,
            ["PARLEY_WEBHOOK_SECRET must be 16-256"],
        ),
        ({"PARLEY_LISTEN": "8080"}, False, ["PARLEY_LISTEN must be host:port"]),
        ({"PARLEY_METRICS_LISTEN": "localhost"}, False, ["PARLEY_METRICS_LISTEN must be host:port"]),
        ({"PARLEY_LOG_FORMAT": "xml"}, False, ["PARLEY_LOG_FORMAT must be text or json"]),
    ],
)
def test_operations_settings_are_checked(env: dict[str, str], webhook: bool, expected: list[str]) -> None:
    base = {"TELEGRAM_BOT_TOKEN": "123456:ABCdefGHIjklMNOpqr", "OPENAI_API_KEY": "sk-test"}
    with pytest.raises(ConfigError) as caught:
        load_settings(base | env, webhook=webhook)
    problems = caught.value.problems
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start) and "\n" not in problem


def test_webhook_settings_and_defaults() -> None:
    base = {"TELEGRAM_BOT_TOKEN": "123456:ABCdefGHIjklMNOpqr", "OPENAI_API_KEY": "sk-test"}
    polling = load_settings(base)
    assert not polling.operations.webhook
    assert (str(polling.operations.listen), str(polling.operations.metrics_listen), polling.operations.log_format) == (
        "0.0.0.0:8080",
        "127.0.0.1:9090",
        "text",
    )
    settings = load_settings(
        base | {"PARLEY_WEBHOOK_URL": URL, "PARLEY_WEBHOOK_SECRET": SECRET, "PARLEY_METRICS_LISTEN": "off"}
    )
    operations = settings.operations
    assert operations.webhook and operations.webhook_url == URL and operations.metrics_listen is None
    assert SECRET in settings.secrets and SECRET not in repr(settings)
    assert str(load_settings(base | {"PARLEY_LISTEN": "[::]:8443"}).operations.listen) == "[::]:8443"
