"""`parley doctor` as a real process against the lab: one ✓/✗ line per check, exit 0 only when all pass."""

from __future__ import annotations

import re
import sqlite3
from importlib.metadata import EntryPoint
from pathlib import Path

from bot.doctor import check_tools
from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env
from parley.actions import GROUP
from parley.config import load_settings
from storage import Storage
from storage.migrations import MIGRATIONS

LIBOPUS_FROM_PYAV = r"✓ libopus: libopus \S+ in the codec workers \(/\S*/av\.libs/libopus\S*, bundled with PyAV\)"
"""PyAV's wheel is installed here, so the workers find the copy it bundles (the one FFmpeg's libraries use)."""


async def run_doctor(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, list[str]]:
    process = ParleyProcess(env, cwd)
    await process.start_command("doctor", *args)
    code = await process.wait(deadline=60)
    return code, process.text.strip().splitlines()


def no_secrets(lines: list[str], telegram: FakeTelegram, openai_api: FakeOpenAI) -> bool:
    text = "\n".join(lines)
    return all(s not in text for s in (telegram.token, telegram.token.split(":")[1], openai_api.api_key))


async def test_a_healthy_deployment_passes_every_check(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"
    await (await Storage.open(db)).close()  # a database made by `parley run`
    code, lines = await run_doctor(lab_env(telegram, openai_api, db), tmp_path)
    assert code == 0, lines
    assert lines[0] == "✓ configuration: valid (long polling; metrics off)"
    assert lines[1].startswith("✓ ffmpeg: /") and lines[1].endswith("with libopus and libmp3lame")
    assert re.fullmatch(LIBOPUS_FROM_PYAV, lines[2]), lines[2]
    assert lines[3] == f"✓ database: {db} writable, at the latest migration ({MIGRATIONS[-1].__name__})"
    assert lines[4] == f"✓ Telegram: reachable, token valid: @{telegram.bot_username} (id {telegram.bot_id})"
    assert lines[5].startswith("✓ Telegram groups: privacy mode on")
    assert lines[6] == "✓ Telegram webhook: none (long polling); 0 updates waiting"
    assert lines[7] == "✓ OpenAI: reachable, key valid, gpt-audio-1.5 and gpt-4o-mini-transcribe available"
    assert lines[8:] == [
        "✓ access: admins: none; also allowed: everyone (*)",
        "✓ tools: none enabled (PARLEY_TOOLS); installed: datetime, group_memory, reminders",
        "all checks passed",
    ]
    assert no_secrets(lines, telegram, openai_api)
    # It changed nothing and spent nothing: getMe and getWebhookInfo, the two model look-ups, no chat.
    assert {call.method for call in telegram.calls} == {"getMe", "getWebhookInfo"}
    assert [(r.method, r.path) for r in openai_api.requests] == [
        ("GET", "/v1/models/gpt-audio-1.5"),
        ("GET", "/v1/models/gpt-4o-mini-transcribe"),
    ]


async def test_live_makes_exactly_one_tiny_model_request(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    code, lines = await run_doctor(lab_env(telegram, openai_api, tmp_path / "new" / "parley.db"), tmp_path, "--live")
    assert code == 0, lines
    assert f"✓ database: {tmp_path / 'new' / 'parley.db'} does not exist yet" in lines[3]
    assert not (tmp_path / "new").exists()  # the doctor creates nothing
    [live] = [line for line in lines if line.startswith("✓ OpenAI live:")]
    assert "gpt-audio-1.5 answered in" in live and "s of audio" in live
    [chat] = openai_api.chat_requests()
    assert chat.json["modalities"] == ["text", "audio"]
    assert openai_api.transcription_requests() == []


async def test_each_broken_part_gets_a_cross_and_a_fix(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as old:  # a database from an older version: only the first migration applied
        old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        old.execute("INSERT INTO _migrations VALUES (?, 0)", (MIGRATIONS[0].__name__,))
    env = lab_env(telegram, openai_api, db, TELEGRAM_BOT_TOKEN="999999:WRONG-token-abcdefghijklmnopqrstu")
    env["PARLEY_MODEL"] = "gpt-audio-nonexistent"
    code, lines = await run_doctor(env, tmp_path)
    assert code == 1
    crosses = [line for line in lines if line.startswith("✗")]
    assert crosses == [
        f"✗ database: {db} is at migration 1 of {len(MIGRATIONS)} → take a `parley backup`, then start "
        "`parley run` once: it migrates the database at start-up",
        "✗ Telegram: the bot token was rejected → copy TELEGRAM_BOT_TOKEN again from BotFather",
        "✗ OpenAI: PARLEY_MODEL 'gpt-audio-nonexistent' is not available to this API key → choose a model the "
        "key can use for PARLEY_MODEL (see the README's model table)",
    ]
    assert lines[-1] == "some checks failed"
    assert "999999:WRONG-token" not in "\n".join(lines)
    assert no_secrets(lines, telegram, openai_api)


async def test_invalid_configuration_is_reported_and_the_network_left_alone(tmp_path: Path) -> None:
    code, lines = await run_doctor({"TELEGRAM_BOT_TOKEN": "123:abcdefghijklmnop"}, tmp_path)
    assert code == 1
    assert lines[0] == "✗ configuration: OPENAI_API_KEY is not set: copy .env.example to .env and fill it in"
    assert lines[1].startswith("✓ ffmpeg: ") and lines[2].startswith("✓ libopus: ")
    assert "✗ Telegram: not checked: fix the configuration first" in lines
    assert "✗ OpenAI: not checked: fix the configuration first" in lines
    assert "abcdefghijklmnop" not in "\n".join(lines)


async def test_on_azure_the_doctor_checks_azure(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    del env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"]
    env |= {
        "AZURE_OPENAI_ENDPOINT": openai_api.azure_endpoint,
        "AZURE_OPENAI_API_KEY": openai_api.azure_api_key,
        "PARLEY_MODEL": "voice-prod",
        "PARLEY_MODELS": "voice-prod",
    }
    openai_api.azure_deployments = {"voice-prod": "gpt-audio"}
    code, lines = await run_doctor(env, tmp_path, "--live")
    assert code == 0, lines
    assert any(line.startswith("✓ OpenAI live:") for line in lines)
    [chat] = openai_api.chat_requests()
    assert chat in openai_api.azure_requests()  # the Azure endpoint was asked, not api.openai.com's shape


async def test_a_retired_model_in_the_settings_is_named_with_its_date(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """OpenAI shut the 2024-12-17 audio previews down: a setting still naming one fails every call."""
    env = lab_env(
        telegram,
        openai_api,
        tmp_path / "parley.db",
        PARLEY_MODEL="gpt-4o-audio-preview-2024-12-17",
        PARLEY_MODELS="gpt-audio-1.5,gpt-4o-mini-audio-preview-2024-12-17",
    )
    code, lines = await run_doctor(env, tmp_path)
    assert code == 1
    retired = [line for line in lines if line.startswith("✗ models:")]
    assert retired == [
        "✗ models: PARLEY_MODEL names gpt-4o-audio-preview-2024-12-17 (retired 2026-07-23)"
        " → use gpt-audio-1.5 (or gpt-audio, gpt-audio-mini)",
        "✗ models: PARLEY_MODELS names gpt-4o-mini-audio-preview-2024-12-17 (retired 2026-07-23)"
        " → use gpt-audio-1.5 (or gpt-audio, gpt-audio-mini)",
    ]


async def test_on_postgresql_the_doctor_checks_the_server_and_never_shows_the_password(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "unused.db", DATABASE_URL=postgres_url)
    code, lines = await run_doctor(env, tmp_path)
    assert code == 0, lines
    assert lines[3].startswith("✓ database: postgresql://") and "`parley run` creates the tables" in lines[3]
    await (await Storage.open(postgres_url)).close()
    code, lines = await run_doctor(env, tmp_path)
    assert code == 0 and lines[3].endswith(f"at the latest migration ({MIGRATIONS[-1].__name__})"), lines

    unreachable = postgres_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2-secret@")
    unreachable = unreachable.replace("127.0.0.1", "127.0.0.2", 1).replace(":5432/", ":1/")
    code, lines = await run_doctor({**env, "DATABASE_URL": unreachable}, tmp_path)
    assert code == 1 and lines[3].startswith("✗ database: cannot connect to postgresql://postgres@"), lines
    assert "hunter2-secret" not in "\n".join(lines)


async def test_a_bot_nobody_may_use_fails_the_access_check_with_the_fix(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """The README's first run without PARLEY_ADMINS: everything works, and nobody can use the bot."""
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    del env["PARLEY_ALLOWED"]
    code, lines = await run_doctor(env, tmp_path)
    assert code == 1
    assert [line for line in lines if line.startswith("✗")] == [
        "✗ access: no admin and no allowlist: the bot refuses everyone → set PARLEY_ADMINS to your numeric user "
        "id (write to the bot: its reply tells you your id) and restart"
    ]
    code, lines = await run_doctor({**env, "PARLEY_ADMINS": "123456789"}, tmp_path)
    assert code == 0 and "✓ access: admins: 123456789; also allowed: nobody else (PARLEY_ALLOWED is empty)" in lines


async def test_the_doctor_lists_the_enabled_tools_and_refuses_unknown_ones(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_TOOLS="datetime,group_memory")
    code, lines = await run_doctor(env, tmp_path)
    assert code == 0, lines
    assert (
        "✓ tools: datetime (built in: current_time, set_timezone); "
        "group_memory (built in: search_group_log, read_group_log)"
    ) in lines
    env["PARLEY_TOOLS"] = "datetime,horoscope"
    code, lines = await run_doctor(env, tmp_path)
    assert code == 1
    [cross] = [line for line in lines if line.startswith("✗")]
    assert cross.startswith("✗ tools: PARLEY_TOOLS names 'horoscope', which is not an installed tool (datetime, ")
    assert cross.endswith("→ install the tool's package, or take it out of PARLEY_TOOLS")


def test_a_plugin_is_named_with_its_package(tmp_path: Path) -> None:
    installed = {
        "datetime": EntryPoint("datetime", "parley.actions.builtin.clock:TOOLS", GROUP),
        "shouting": EntryPoint("shouting", "tests.plugin_examples:factory", GROUP),
    }
    settings = load_settings(
        {"TELEGRAM_BOT_TOKEN": "123:abcdefghijklmnop", "OPENAI_API_KEY": "sk-test", "PARLEY_TOOLS": "shouting,datetime"}
    )
    finding = check_tools(settings, installed)
    assert finding.ok
    assert finding.detail == (
        "shouting (plugin tests.plugin_examples: echo, shout); datetime (built in: current_time, set_timezone)"
    )
