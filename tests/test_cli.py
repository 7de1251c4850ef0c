"""The `parley` command as a real process: configuration errors, clean stop, secrets kept out of logs."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import ParleyProcess, lab_env


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "parley: TELEGRAM_BOT_TOKEN is not set: copy .env.example to .env and fill it in"),
        ({"TELEGRAM_BOT_TOKEN": "123:abcdefghijklmnop"}, "parley: OPENAI_API_KEY is not set"),
        (
            {"TELEGRAM_BOT_TOKEN": "123:abcdefghijklmnop", "OPENAI_API_KEY": "sk-x", "PARLEY_VOICE": "robot"},
            "parley: PARLEY_VOICE is 'robot'",
        ),
    ],
)
async def test_config_errors_exit_2_with_one_plain_line(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    process = ParleyProcess(env, tmp_path)
    await process.start()
    assert await process.wait() == 2
    assert process.text.startswith(expected)
    assert "Traceback" not in process.text


async def test_env_file_is_read_from_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abcdefghijklmnop\nPARLEY_LOG_LEVEL=LOUD\n")
    process = ParleyProcess({}, tmp_path)
    await process.start()
    assert await process.wait() == 2
    lines = process.text.strip().splitlines()
    assert lines == [
        "parley: OPENAI_API_KEY is not set: copy .env.example to .env and fill it in",
        "parley: PARLEY_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'",
    ]


async def test_rejected_token_exits_2_without_showing_it(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    wrong = "999999:WRONG-token-abcdefghijklmnopqrstu"
    process = ParleyProcess(lab_env(telegram, openai_api, tmp_path / "p.db", TELEGRAM_BOT_TOKEN=wrong), tmp_path)
    await process.start()
    assert await process.wait() == 2
    assert "TELEGRAM_BOT_TOKEN was rejected by Telegram" in process.text
    assert wrong not in process.text and "Traceback" not in process.text


async def test_sigterm_stops_cleanly_after_a_full_turn_and_logs_hold_no_secrets(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    process = ParleyProcess(lab_env(telegram, openai_api, tmp_path / "p.db"), tmp_path)
    await process.start()
    try:
        ann = telegram.user(1001, "Ann")
        note = telegram.push_voice(1001, ann, make_voice_ogg(1.0))
        [reply] = await telegram.wait_sent(1001, timeout=30)
        assert reply.reply_to_message_id == note
        process.signal(signal.SIGTERM)
        assert await process.wait() == 0
    finally:
        await process.kill()
    log = process.text
    assert re.search(rf"chat=1001 message={note} job=\d+ kind=voice download=\d+ms convert=\d+ms", log)
    assert "outcome=ok" in log and "model=" in log
    # Logged at DEBUG, and still no secret anywhere.
    assert telegram.token not in log
    assert telegram.token.split(":")[1] not in log
    assert openai_api.api_key not in log
    assert "Traceback" not in log


async def test_unwritable_database_exits_2_with_a_plain_line(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    env = lab_env(telegram, openai_api, blocker / "parley.db")
    process = ParleyProcess(env, tmp_path)
    await process.start()
    assert await process.wait() == 2
    assert any(line.startswith("parley: PARLEY_DB: cannot open the database at") for line in process.text.splitlines())
    assert "Traceback" not in process.text


async def test_unreachable_telegram_exits_1_with_a_plain_line(openai_api: FakeOpenAI, tmp_path: Path) -> None:
    telegram = FakeTelegram()
    await telegram.start()
    url = telegram.url
    await telegram.stop()  # nothing listens there any more
    env = lab_env(telegram, openai_api, tmp_path / "p.db", TELEGRAM_API_URL=url)
    process = ParleyProcess(env, tmp_path)
    await process.start()
    assert await process.wait() == 1
    assert f"parley: could not reach Telegram at {url}" in process.text
    assert "Traceback" not in process.text and telegram.token not in process.text
