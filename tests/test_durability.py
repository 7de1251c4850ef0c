"""Nothing lost, nothing answered twice: durable jobs across crashes, stops, redeliveries and retries."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from bot import texts
from bot.dispatch import MAX_ATTEMPTS
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import ParleyProcess, lab_env, running_bot
from parley.errors import ModelUnavailable
from storage import Storage

CHAT = 1001


def job_states(db_path: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(db_path) as db:
        return list(db.execute("SELECT kind, state, attempts FROM jobs ORDER BY id"))


async def model_call_started(openai_api: FakeOpenAI, count: int = 1) -> None:
    await openai_api.wait_for(
        lambda: len(openai_api.chat_requests()) >= count, 15, what=f"{count} chat request(s) started"
    )


async def settle(telegram: FakeTelegram) -> None:
    """Let the bot consume everything pending and finish what it was doing."""
    await telegram.wait_consumed()
    await asyncio.sleep(1.0)


async def test_sigkill_mid_job_then_restart_gives_exactly_one_reply(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    openai_api.latency = 3.0
    first = ParleyProcess(env, tmp_path)
    await first.start()
    try:
        note = telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), make_voice_ogg(1.0))
        await model_call_started(openai_api)
        first.signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    finally:
        await first.kill()
    assert telegram.sent_to(CHAT) == []  # the crash came before any reply
    assert job_states(tmp_path / "parley.db") == [("converse", "working", 1)]

    openai_api.latency = 0.2
    second = ParleyProcess(env, tmp_path)
    await second.start()
    try:
        [reply] = await telegram.wait_sent(CHAT, timeout=30)
        await settle(telegram)
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0
    finally:
        await second.kill()
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    assert len(telegram.sent_to(CHAT)) == 1  # resumed once, redelivery (if any) ignored
    assert job_states(tmp_path / "parley.db") == [("converse", "done", 2)]


async def test_a_redelivered_update_is_not_answered_twice(parley, telegram: FakeTelegram) -> None:
    note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello once")
    await telegram.wait_sent(CHAT)
    original = telegram.message(CHAT, note)
    telegram.push_raw_update({"message": original.payload})
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "a new message")
    sent = await telegram.wait_sent(CHAT, count=2)
    await settle(telegram)
    assert [m.caption for m in telegram.sent_to(CHAT)] == ["You said: hello once", "You said: a new message"]
    assert sent[1].caption == "You said: a new message"


async def test_sigterm_finishes_the_job_in_flight_and_keeps_the_rest_for_next_start(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    openai_api.latency = 1.5
    ann = telegram.user(CHAT, "Ann")
    first = ParleyProcess(env, tmp_path)
    await first.start()
    try:
        one = telegram.push_text(CHAT, ann, "one")
        two = telegram.push_text(CHAT, ann, "two")
        await model_call_started(openai_api)
        await telegram.wait_consumed()  # both accepted before the stop
        first.signal(signal.SIGTERM)
        assert await first.wait() == 0
    finally:
        await first.kill()
    [answered] = telegram.sent_to(CHAT)  # the job in flight was finished …
    assert answered.reply_to_message_id == one
    assert [state for _, state, _ in job_states(tmp_path / "parley.db")] == ["done", "queued"]  # … the rest kept

    openai_api.latency = 0
    second = ParleyProcess(env, tmp_path)
    await second.start()
    try:
        sent = await telegram.wait_sent(CHAT, count=2, timeout=30)
        await settle(telegram)
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0
    finally:
        await second.kill()
    assert [m.reply_to_message_id for m in sent] == [one, two]
    assert len(telegram.sent_to(CHAT)) == 2


async def test_sigterm_past_the_grace_period_exits_cleanly_and_resumes_later(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_SHUTDOWN_SECONDS="0.5")
    openai_api.latency = 30
    async with running_bot(env):
        note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "slow one")
        await model_call_started(openai_api)
    assert telegram.sent_to(CHAT) == []
    assert job_states(tmp_path / "parley.db") == [("converse", "working", 1)]

    openai_api.latency = 0
    async with running_bot(env):
        [reply] = await telegram.wait_sent(CHAT)
    assert reply.reply_to_message_id == note


async def test_a_job_that_keeps_killing_the_process_is_given_up(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db_path = tmp_path / "parley.db"
    storage = await Storage.open(db_path)
    message = {"message_id": 7, "date": int(time.time()), "chat": {"id": CHAT, "type": "private"}, "text": "x"}
    job_id = await storage.jobs.add(chat_id=CHAT, source="message:7", kind="converse", payload={"message": message})
    assert job_id is not None
    for _ in range(MAX_ATTEMPTS):
        await storage.jobs.start(job_id)
    await storage.close()
    telegram.add_chat(CHAT)
    async with running_bot(lab_env(telegram, openai_api, db_path)):
        [notice] = await telegram.wait_sent(CHAT)
    assert notice.text == texts.GAVE_UP
    assert openai_api.requests == []
    assert job_states(db_path) == [("converse", "failed", MAX_ATTEMPTS)]


async def test_a_full_queue_answers_busy_instead_of_growing(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_MAX_QUEUE="2")
    openai_api.latency = 1.0
    ann = telegram.user(CHAT, "Ann")
    async with running_bot(env):
        ids = [telegram.push_text(CHAT, ann, f"message {i}") for i in range(4)]
        sent = await telegram.wait_sent(CHAT, count=4)
    busy = [m for m in sent if m.text == texts.BUSY]
    answered = [m for m in sent if m.kind == "voice"]
    assert [m.reply_to_message_id for m in busy] == ids[2:]
    assert [m.reply_to_message_id for m in answered] == ids[:2]
    assert len(openai_api.chat_requests()) == 2


async def test_retry_button_runs_the_failed_job_again(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    openai_api.fail_next(500)
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    [failure] = await telegram.wait_sent(CHAT)
    assert failure.text == ModelUnavailable.user_message
    [[button]] = failure.reply_markup["inline_keyboard"]
    assert button["text"] == texts.RETRY

    telegram.push_callback(CHAT, ann, failure.message_id, button["callback_data"])
    reply = (await telegram.wait_sent(CHAT, count=2))[1]
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    # "Trying again…" replaced the failure (and its button) while the job ran, and went once it was answered.
    await telegram.wait_for(lambda: telegram.message(CHAT, failure.message_id).deleted, what="status taken back")
    shown = telegram.message(CHAT, failure.message_id)
    assert shown.edits == [texts.RETRYING] == ["Trying again…"] and "reply_markup" not in shown.payload
    assert [m.kind for m in telegram.sent_to(CHAT) if not m.deleted] == ["voice"]

    # A second tap on the same (now answered) job, from a client that still shows it, does nothing but say so.
    edits = len(telegram.calls_of("editMessageText"))
    telegram.push_callback(CHAT, ann, failure.message_id, button["callback_data"])
    await telegram.wait_for(lambda: len(telegram.calls_of("editMessageText")) > edits, what="the tap settled")
    assert telegram.calls_of("editMessageText")[-1].params["text"] == texts.RETRY_GONE
    assert len(openai_api.chat_requests()) == 2
    assert len(telegram.sent_to(CHAT)) == 2


async def test_a_retry_that_fails_again_leaves_only_the_new_failure(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    openai_api.fail_next(500, times=2)
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    [first] = await telegram.wait_sent(CHAT)
    [[button]] = first.reply_markup["inline_keyboard"]
    telegram.push_callback(CHAT, ann, first.message_id, button["callback_data"])
    second = (await telegram.wait_sent(CHAT, count=2))[1]
    assert second.text == ModelUnavailable.user_message and second.reply_to_message_id == note
    await telegram.wait_for(lambda: telegram.message(CHAT, first.message_id).deleted, what="first failure taken back")
    [[again]] = second.reply_markup["inline_keyboard"]
    telegram.push_callback(CHAT, ann, second.message_id, again["callback_data"])
    reply = (await telegram.wait_sent(CHAT, count=3))[2]
    await telegram.wait_for(lambda: telegram.message(CHAT, second.message_id).deleted, what="second failure taken back")
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    assert [m.kind for m in telegram.sent_to(CHAT) if not m.deleted] == ["voice"]
    assert len(openai_api.chat_requests()) == 3


async def test_slow_reply_gets_one_status_message_that_goes_away(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_SLOW_NOTICE_SECONDS="1")
    openai_api.latency = 3.5
    async with running_bot(env):
        note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "take your time")
        sent = await telegram.wait_sent(CHAT, count=2)
    status, reply = sent
    assert status.text.startswith("Still working on your reply") and status.reply_to_message_id == note
    assert len(status.edits) >= 1  # edited as time passed, not repeated
    assert telegram.message(CHAT, status.message_id).deleted
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    assert len(telegram.sent_to(CHAT)) == 2


async def test_model_retries_honour_retry_after(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_MODEL_RETRIES="1")
    openai_api.fail_next(429, retry_after=2)
    async with running_bot(env):
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
        [reply] = await telegram.wait_sent(CHAT, timeout=30)
    assert reply.kind == "voice"
    limited, accepted = openai_api.chat_requests()
    assert accepted.started - limited.finished >= 2.0  # waited as told, not the SDK's default backoff


@pytest.mark.parametrize("busy_writer", [False, True], ids=["idle", "while-writing"])
async def test_backup_is_a_consistent_copy(tmp_path: Path, busy_writer: bool) -> None:
    from storage import NewTurn

    db_path = tmp_path / "parley.db"
    storage = await Storage.open(db_path)
    for i in range(50):
        await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text=f"turn {i}")])

    async def keep_writing() -> None:
        for i in range(200):
            await storage.turns.add([NewTurn(chat_id=2, user_id=2, role="user", kind="text", text=f"more {i}")])

    writer = asyncio.create_task(keep_writing()) if busy_writer else None
    process = ParleyProcess({"PARLEY_DB": str(db_path)}, tmp_path)
    await process.start_command("backup", str(tmp_path / "copy.db"))
    assert await process.wait() == 0, process.text
    if writer:
        await writer
    await storage.close()
    assert stat.S_IMODE(os.stat(tmp_path / "copy.db").st_mode) == 0o600  # as private as the original
    with sqlite3.connect(tmp_path / "copy.db") as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert copy.execute("SELECT COUNT(*) FROM turns WHERE user_id = 1").fetchone()[0] == 50
        more = copy.execute("SELECT text FROM turns WHERE user_id = 2 ORDER BY id").fetchall()
    assert [t for (t,) in more] == [f"more {i}" for i in range(len(more))]  # a prefix: consistent


async def test_backup_refuses_to_overwrite(tmp_path: Path) -> None:
    storage = await Storage.open(tmp_path / "parley.db")
    await storage.close()
    (tmp_path / "exists.db").write_text("precious")
    process = ParleyProcess({"PARLEY_DB": str(tmp_path / "parley.db")}, tmp_path)
    await process.start_command("backup", str(tmp_path / "exists.db"))
    assert await process.wait() == 2
    assert "already exists" in process.text
    assert (tmp_path / "exists.db").read_text() == "precious"


async def test_a_crash_between_remembering_and_delivering_leaves_one_pair_of_turns(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db_path = tmp_path / "parley.db"
    env = lab_env(telegram, openai_api, db_path)
    telegram.delay("sendVoice", 5.0)  # the turns are stored, the reply is still on its way …
    first = ParleyProcess(env, tmp_path)
    await first.start()
    try:
        note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "remember me once")
        await telegram.wait_calls("sendVoice")
        await telegram.wait_for(lambda: _turn_count(db_path) == 2, 5, what="turns stored")
        first.signal(signal.SIGKILL)  # … when the process dies
        await first.wait()
    finally:
        await first.kill()
    telegram.delay("sendVoice", 0)
    second = ParleyProcess(env, tmp_path)
    await second.start()
    try:
        # The first process's reply may still reach Telegram (it was on the wire when the process died), so
        # the second process is known to have answered only when its own bookkeeping says so.
        await telegram.wait_for(lambda: _unfinished_jobs(db_path) == 0, 30, what="the resumed job finished")
        assert any(m.kind == "voice" and m.reply_to_message_id == note for m in telegram.sent)
        await settle(telegram)
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0
    finally:
        await second.kill()
    with sqlite3.connect(db_path) as db:
        turns = db.execute("SELECT role, text FROM turns ORDER BY id").fetchall()
    assert turns == [("user", "remember me once"), ("assistant", "You said: remember me once")]


def _turn_count(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]


def _unfinished_jobs(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'working')").fetchone()[0]
