"""Shared fixtures.

Lab fixtures first: started stand-ins of the Telegram Bot API and the OpenAI API on 127.0.0.1, and test
audio made once per session. Application fixtures go below.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lab import FakeOpenAI, FakeTelegram, make_voice_ogg
from lab.harness import RunningBot, lab_env, running_bot
from parley.logs import quiet_noisy_loggers
from storage import Storage
from tests import postgres

# ---------------------------------------------------------------------------------------------------------
# lab fixtures
# ---------------------------------------------------------------------------------------------------------

SEES_ALL = "sees_all_group_messages"


@pytest.fixture
async def telegram(request: pytest.FixtureRequest) -> AsyncIterator[FakeTelegram]:
    """A started FakeTelegram; fails the test at teardown if the fake itself crashed. Under the
    `sees_all_group_messages` mark, the bot's privacy mode is off (the group log needs every message)."""
    fake = FakeTelegram(can_read_all_group_messages=request.node.get_closest_marker(SEES_ALL) is not None)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.internal_errors, "FakeTelegram crashed:\n" + "\n".join(fake.internal_errors)


@pytest.fixture
async def openai_api() -> AsyncIterator[FakeOpenAI]:
    """A started FakeOpenAI; fails the test at teardown if the fake itself crashed."""
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.internal_errors, "FakeOpenAI crashed:\n" + "\n".join(fake.internal_errors)


@pytest.fixture(scope="session")
def voice_ogg() -> bytes:
    """A 2 s OGG/Opus voice note (440 Hz tone), made once per test session."""
    return make_voice_ogg(2.0)


# ---------------------------------------------------------------------------------------------------------
# application fixtures
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
async def parley(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> AsyncIterator[RunningBot]:
    """The real Parley, running in this event loop against the lab, with a fresh database."""
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "parley.db")) as bot:
        yield bot


LAB_SECRETS = (
    FakeTelegram().token,
    FakeTelegram().token.split(":", 1)[1],
    FakeOpenAI().api_key,
)


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    """Every log record of the whole run, at DEBUG and before any redaction, is searched for the lab's
    secrets: the app must not log them at all (the redacting formatter is only the second wall)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    collector = Collect(logging.DEBUG)
    collector.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(collector)
    quiet_noisy_loggers()  # as the app does at start-up
    yield
    root.removeHandler(collector)
    root.setLevel(level)
    # (A run of pure unit tests logs nothing; any run that starts the bot logs plenty.)
    leaks = [line for line in lines if any(secret in line for secret in LAB_SECRETS)]
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks[:5])


# ---------------------------------------------------------------------------------------------------------
# databases: every storage test runs on SQLite and on a real PostgreSQL (tests/postgres.py finds or starts it)
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """The URL of this test session's own PostgreSQL database (created here, dropped at the end)."""
    with postgres.server() as admin, postgres.session_database(admin) as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_database: str) -> str:
    """A URL whose connections see a new, empty schema of their own."""
    return await postgres.fresh_schema(postgres_database)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's database lives: a fresh SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "parley.db"
    return await postgres.fresh_schema(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def two(database_target: Path | str) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two processes' views of one database, on each engine: a Storage each, with its own connection or pool."""
    first = await Storage.open(database_target)
    second = await Storage.open(database_target)
    yield first, second
    await first.close()
    await second.close()
