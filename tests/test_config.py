"""Settings: defaults, validation with one plain line per problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from parley.config import DEFAULT_VOICES, ConfigError, declared, load_settings, read_environment

TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345678"
REQUIRED = {"TELEGRAM_BOT_TOKEN": TOKEN, "OPENAI_API_KEY": "sk-test"}


def test_defaults() -> None:
    settings = load_settings(REQUIRED)
    assert settings.model.name == "gpt-audio-1.5"
    assert settings.model.transcribe_model == "gpt-4o-mini-transcribe"
    assert settings.model.voice == "alloy"
    assert settings.model.voices == DEFAULT_VOICES
    assert settings.telegram.base_url == "https://api.telegram.org/bot"
    assert settings.telegram.base_file_url == "https://api.telegram.org/file/bot"
    assert settings.operations.db_path == Path("parley.db")
    assert settings.model.base_url is None
    assert "short" in settings.model.system_prompt


def test_everything_is_configurable() -> None:
    settings = load_settings(
        REQUIRED
        | {
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "OPENAI_BASE_URL": "http://127.0.0.1:9000/v1",
            "PARLEY_DB": "/data/x.db",
            "PARLEY_MODEL": "gpt-4o-audio-preview-2024-12-17",
            "PARLEY_TRANSCRIBE_MODEL": "whisper-1",
            "PARLEY_VOICES": "Coral, sage,coral",
            "PARLEY_VOICE": "sage",
            "PARLEY_SYSTEM_PROMPT": "Be brief.",
        }
    )
    assert settings.telegram.base_url == "http://127.0.0.1:8081/bot"
    assert settings.model.base_url == "http://127.0.0.1:9000/v1"
    assert settings.operations.db_path == Path("/data/x.db")
    assert settings.model.name == "gpt-4o-audio-preview-2024-12-17"
    assert settings.model.voices == ("coral", "sage")
    assert settings.model.voice == "sage"
    assert settings.model.system_prompt == "Be brief."


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, ["TELEGRAM_BOT_TOKEN is not set: copy .env.example to .env", "OPENAI_API_KEY is not set"]),
        ({"OPENAI_API_KEY": "sk"}, ["TELEGRAM_BOT_TOKEN is not set"]),
        (REQUIRED | {"TELEGRAM_BOT_TOKEN": "not-a-token"}, ["TELEGRAM_BOT_TOKEN does not look like a bot token"]),
        (REQUIRED | {"TELEGRAM_API_URL": "api.telegram.org"}, ["TELEGRAM_API_URL must be an http:// or https:// URL"]),
        (REQUIRED | {"PARLEY_VOICE": "robot"}, ["PARLEY_VOICE is 'robot', which is not one of PARLEY_VOICES"]),
        (REQUIRED | {"PARLEY_VOICES": " , "}, ["PARLEY_VOICES must be a comma-separated list"]),
        (REQUIRED | {"PARLEY_MODEL_RETRIES": "two"}, ["PARLEY_MODEL_RETRIES must be a whole number, got 'two'"]),
        (REQUIRED | {"PARLEY_MODEL_TIMEOUT_SECONDS": "0"}, ["PARLEY_MODEL_TIMEOUT_SECONDS must be at least 1"]),
        (REQUIRED | {"PARLEY_LOG_LEVEL": "LOUD"}, ["PARLEY_LOG_LEVEL must be one of"]),
    ],
)
def test_each_problem_is_one_plain_line(env: dict[str, str], expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    problems = caught.value.problems
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)
        assert "\n" not in problem


def test_secrets_stay_out_of_repr() -> None:
    settings = load_settings(REQUIRED)
    assert TOKEN not in repr(settings) and "sk-test" not in repr(settings)
    assert set(settings.secrets) == {TOKEN, "sk-test"}


def test_env_file_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nOPENAI_API_KEY=sk-from-file\nPARLEY_VOICE=coral\n")
    monkeypatch.setenv("PARLEY_VOICE", "sage")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = load_settings(read_environment(env_file))
    assert settings.model.api_key == "sk-from-file"
    assert settings.model.voice == "sage"


def test_every_setting_is_declared_once_and_documented() -> None:
    """The declarations, .env.example and the README's configuration table name the same variables, and the
    settings code names no variable it does not declare."""
    root = Path(__file__).resolve().parent.parent
    names = [spec.env for spec in declared()]
    assert len(names) == len(set(names)), "a variable is declared twice"
    assert {"TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "PARLEY_DB", "PARLEY_WORKERS"} <= set(names)
    assert all(spec.doc.strip() and "\n" not in spec.doc for spec in declared())
    code = "".join(path.read_text() for path in (root / "parley" / "config").glob("*.py"))
    mentioned = set(re.findall(r'"((?:PARLEY|TELEGRAM|OPENAI|AZURE)_[A-Z_]+)"', code))
    assert mentioned <= set(names), f"read but not declared: {sorted(mentioned - set(names))}"
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    for name in names:
        assert re.search(rf"^#? ?{name}=", example, re.MULTILINE), f"{name} missing from .env.example"
        assert f"| `{name}` |" in readme, f"{name} missing from the README's configuration table"
    in_example = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    in_readme = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert in_example == set(names), f"not declared: {sorted(in_example - set(names))}"
    assert in_readme == set(names), f"not declared: {sorted(in_readme - set(names))}"


def test_every_secret_stays_out_of_repr() -> None:
    secrets = {
        "AZURE_OPENAI_ENDPOINT": "https://example.openai.azure.com",
        "AZURE_OPENAI_API_KEY": "azure-key-1234567890",
        "PARLEY_WEBHOOK_URL": "https://bot.example.com/telegram",
        "PARLEY_WEBHOOK_SECRET": "webhook-secret-1234567890",
    }
    settings = load_settings(REQUIRED | secrets)
    expected = {TOKEN, "sk-test", "azure-key-1234567890", "webhook-secret-1234567890"}
    assert set(settings.secrets) == expected
    shown = repr(settings) + "".join(repr(getattr(settings, group)) for group in ("telegram", "model", "operations"))
    assert not any(secret in shown for secret in expected)
    assert "example.openai.azure.com" in shown  # the repr still shows what is not secret
