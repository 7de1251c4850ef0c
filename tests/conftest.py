"""Shared fixtures.

Lab fixtures first: started stand-ins of the Telegram Bot API and the OpenAI API on 127.0.0.1, and test
audio made once per session. Application fixtures go below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import RunningBot, lab_env, running_bot
from tests.lab import FakeOpenAI, FakeTelegram, make_voice_ogg

# ---------------------------------------------------------------------------------------------------------
# lab fixtures
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """A started FakeTelegram; fails the test at teardown if the fake itself crashed."""
    fake = FakeTelegram()
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
