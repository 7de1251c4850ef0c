"""Costs follow what is decoded, not what is declared: attacks on the budgets and the queue, against the real
bot. A document declares no duration, a WAV header can claim any sample rate, and a group member can post
voice notes faster than anyone reads them."""

from __future__ import annotations

import sqlite3
import struct
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg, make_wav
from lab.harness import lab_env, running_bot

pytestmark = pytest.mark.sees_all_group_messages  # privacy mode off: the group log needs every message

ANN, STRANGERS = 11, (41, 42, 43, 44)
GROUP = -1001


@pytest.fixture(scope="module")
def forty_minutes() -> bytes:
    """A 40-minute recording (OGG/Opus at the encoder's defaults): what a long meeting sent as a file is."""
    return make_voice_ogg(2400.0)


def spent(db: Path, user_id: int) -> float:
    with sqlite3.connect(db) as connection:
        row = connection.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage_ledger WHERE user_id = ?", (user_id,))
        return float(row.fetchone()[0])


def _answers(telegram: FakeTelegram, asked: int) -> list:
    """What the bot said in answer to `asked`, its passing status messages left out."""
    status = {texts.working("Transcribing", None), texts.working("Listening", None)}
    return [m for m in telegram.sent_to(ANN) if m.reply_to_message_id == asked and m.text not in status]


def env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, **settings: str) -> dict[str, str]:
    settings.setdefault("PARLEY_ALLOWED", "*")
    return lab_env(telegram, openai_api, tmp_path / "parley.db", **settings)


def as_document(telegram: FakeTelegram, data: bytes, mime: str, name: str) -> dict:
    """Audio sent as a file: a document, which carries no duration at all."""
    file_id, unique_id = telegram.add_file(data, kind="document", mime_type=mime, file_name=name)
    return {"file_id": file_id, "file_unique_id": unique_id, "mime_type": mime, "file_name": name,
            "file_size": len(data)}  # fmt: skip


@pytest.mark.parametrize("command", ["/transcribe", "/tone"])
async def test_a_long_document_declaring_no_duration_is_refused_by_the_budget(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, forty_minutes: bytes, command: str
) -> None:
    ann = telegram.user(ANN, "Ann")
    settings = {"PARLEY_USER_DAILY_BUDGET_USD": "0.10"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        document = as_document(telegram, forty_minutes, "audio/ogg", "meeting.ogg")
        asked = telegram.push_message(ANN, ann, {"document": document, "caption": command})
        await telegram.wait_for(lambda: bool(_answers(telegram, asked)), timeout=60)
    [answer] = _answers(telegram, asked)
    assert "daily budget" in answer.text
    assert openai_api.chat_requests() == []  # refused before any model call
    assert spent(tmp_path / "parley.db", ANN) == 0.0


async def test_a_wav_claiming_one_hertz_costs_no_more_than_the_budget(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    wav = bytearray(make_wav(1.5, rate=8000))  # 24 KB of real audio …
    wav[24:32] = struct.pack("<II", 1, 2)  # … whose header says 1 sample (2 bytes) a second: 12,000 s
    ann = telegram.user(ANN, "Ann")
    async with running_bot(env(telegram, openai_api, tmp_path, PARLEY_USER_DAILY_BUDGET_USD="0.10")):
        document = as_document(telegram, bytes(wav), "audio/wav", "note.wav")
        asked = telegram.push_message(ANN, ann, {"document": document, "caption": "/transcribe"})
        await telegram.wait_for(lambda: bool(_answers(telegram, asked)), timeout=60)
    answers = _answers(telegram, asked)
    assert answers[0].text  # a plain answer …
    assert len(openai_api.chat_requests()) <= 1  # … and not eleven calls of 1,100 s each
    assert spent(tmp_path / "parley.db", ANN) <= 0.10


async def test_group_transcription_obeys_the_members_budget_and_the_chats_rate(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann = telegram.user(ANN, "Ann")
    note = make_voice_ogg(1.0)
    db = tmp_path / "parley.db"
    settings = {"PARLEY_ALLOWED": f"{GROUP}", "PARLEY_USER_DAILY_BUDGET_USD": "0", "PARLEY_CHAT_RATE": "3/minute"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        for _ in range(4):  # Ann has no budget left, and the chat takes three a minute
            telegram.push_voice(GROUP, ann, note, chat_type="supergroup")
        await telegram.wait_consumed()
        await telegram.wait_for(lambda: _states(db) == ["failed"] * 4, timeout=30)
    with sqlite3.connect(db) as connection:
        [(jobs,)] = connection.execute("SELECT COUNT(*) FROM jobs WHERE kind = 'transcribe_log'").fetchall()
    assert jobs == 3  # the fourth was over the chat's rate: never queued
    assert [r for r in openai_api.requests if r.path.endswith("/audio/transcriptions")] == []  # none paid
    assert telegram.sent_to(GROUP) == []  # background work says nothing in the group


def _states(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT transcript_state FROM group_messages ORDER BY id")]


async def test_a_flood_of_group_voice_notes_does_not_make_private_chats_busy(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann = telegram.user(ANN, "Ann")
    note = make_voice_ogg(1.0)
    openai_api.latency = 0.3
    settings = {"PARLEY_MAX_QUEUE": "8", "PARLEY_CHAT_RATE": "100/minute"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        for _ in range(40):
            telegram.push_voice(GROUP, ann, note, chat_type="supergroup")
        for stranger in STRANGERS:
            telegram.push_text(stranger, telegram.user(stranger, f"S{stranger}"), "hello?")
        answers = [(await telegram.wait_sent(s, timeout=60))[0] for s in STRANGERS]
    assert all(a.kind == "voice" for a in answers)  # nobody was told "busy"
    assert not [m for m in telegram.sent if m.text == texts.BUSY]
