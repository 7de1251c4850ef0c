"""Who may talk to the bot: allowlists, admins, rate limits, privacy and retention, against the lab."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
from pathlib import Path

import pytest

from bot import registry, texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot
from storage import NewTurn, Storage

ADMIN, FRIEND, STRANGER = 111, 222, 333
DAY = 86400


def env_for(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, **settings: str) -> dict[str, str]:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ADMINS=str(ADMIN), **settings)
    if "PARLEY_ALLOWED" not in settings:
        del env["PARLEY_ALLOWED"]  # the secure default: admins only
    return env


def stored_rows(db_path: Path, table: str, user_id: int) -> int:
    column = "chat_id" if table == "jobs" else "user_id"
    with sqlite3.connect(db_path) as db:
        return db.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (user_id,)).fetchone()[0]


async def test_a_stranger_costs_nothing_and_is_told_once(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    telegram.add_chat(ADMIN, first_name="Admin")  # the admin has started the bot
    async with running_bot(env_for(telegram, openai_api, tmp_path)):
        stranger = telegram.user(STRANGER, "Mallory")
        telegram.push_voice(STRANGER, stranger, make_voice_ogg(1.0))
        [refusal] = await telegram.wait_sent(STRANGER)
        telegram.push_text(STRANGER, stranger, "hello? anyone?")
        telegram.push_voice(STRANGER, stranger, make_voice_ogg(1.0))
        telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), "hello from the admin")
        notice, _served = await telegram.wait_sent(ADMIN, count=2)  # the admin hears of the stranger, is served …
        await telegram.wait_consumed()
    assert refusal.text == texts.refused(STRANGER) and str(STRANGER) in refusal.text
    assert notice.text == texts.stranger_wrote("Mallory", STRANGER)
    assert len(telegram.sent_to(STRANGER)) == 1  # … the stranger was told once, not three times
    assert telegram.calls_of("getFile") == []  # nothing downloaded
    assert len(openai_api.requests) == 1  # only the admin's turn reached the model
    db = tmp_path / "parley.db"
    assert [stored_rows(db, t, STRANGER) for t in ("turns", "users", "jobs")] == [0, 0, 0]


async def test_the_refusal_is_repeated_after_an_hour(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    storage = await Storage.open(tmp_path / "parley.db")
    assert await storage.access.note_refusal(STRANGER, quiet_seconds=3600, now=1000.0) is True
    assert await storage.access.note_refusal(STRANGER, quiet_seconds=3600, now=1000.0 + 3599) is False
    assert await storage.access.note_refusal(STRANGER, quiet_seconds=3600, now=1000.0 + 3600) is True
    await storage.close()


@pytest.mark.parametrize("entry", [str(FRIEND), "@Friendly_One"], ids=["by-id", "by-username"])
async def test_allowed_users_by_id_or_username(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, entry: str
) -> None:
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED=f"444, {entry}")):
        telegram.push_text(FRIEND, telegram.user(FRIEND, "Friend", username="friendly_one"), "hi")
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Mallory", username="mallory"), "hi")
        [answer] = await telegram.wait_sent(FRIEND)
        [refusal] = await telegram.wait_sent(STRANGER)
    assert answer.kind == "voice"
    assert refusal.text == texts.refused(STRANGER)


async def test_star_allows_everyone(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*")):
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Anyone"), "hi")
        [answer] = await telegram.wait_sent(STRANGER)
    assert answer.kind == "voice"


async def test_admin_allow_and_deny_take_effect_without_restart(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    admin, stranger = telegram.user(ADMIN, "Admin"), telegram.user(STRANGER, "Sam", username="sam_the_user")
    telegram.add_chat(ADMIN, first_name="Admin")  # the admin has started the bot
    async with running_bot(env_for(telegram, openai_api, tmp_path)):
        telegram.push_text(STRANGER, stranger, "let me in")
        await telegram.wait_sent(STRANGER)
        [notice] = await telegram.wait_sent(ADMIN)  # the admins hear of the stranger (their buttons: test_onboarding)
        assert notice.text == texts.stranger_wrote("Sam (@sam_the_user)", STRANGER)

        telegram.push_text(ADMIN, admin, f"/allow {STRANGER}")
        done = (await telegram.wait_sent(ADMIN, count=2))[1]
        assert done.text == texts.access_changed(str(STRANGER), True)
        telegram.push_text(STRANGER, stranger, "am I in now?")
        answer = (await telegram.wait_sent(STRANGER, count=2))[1]
        assert answer.kind == "voice"

        telegram.push_text(ADMIN, admin, "/deny @Sam_The_User")
        await telegram.wait_sent(ADMIN, count=3)
        telegram.push_text(STRANGER, stranger, "and now?")
        await telegram.wait_consumed()
        telegram.push_text(ADMIN, admin, "/users")
        report = (await telegram.wait_sent(ADMIN, count=4))[3]
    assert len(telegram.sent_to(STRANGER)) == 2  # denied again (and already told within the hour)
    assert len(openai_api.chat_requests()) == 1
    assert f"Allowed with /allow: {STRANGER}" in report.text
    assert "Denied with /deny: @sam_the_user" in report.text
    assert f"{STRANGER} @sam_the_user: last seen" in report.text
    async with running_bot(env_for(telegram, openai_api, tmp_path)):  # persisted across a restart
        telegram.push_text(ADMIN, admin, "/users")
        again = (await telegram.wait_sent(ADMIN, count=5))[4]
    assert "Denied with /deny: @sam_the_user" in again.text


async def test_admin_commands_are_for_admins_only(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    telegram.add_chat(ADMIN)  # the admin opened the bot before: Telegram refuses a chat scope for anyone else
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED=str(FRIEND))):
        telegram.push_text(FRIEND, friend, f"/allow {STRANGER}")
        telegram.push_text(FRIEND, friend, "/users")
        telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), "/allow not an id!")
        sent = await telegram.wait_sent(FRIEND, count=2)
        [usage] = await telegram.wait_sent(ADMIN)
    assert [m.text for m in sent] == [texts.ADMIN_ONLY, texts.ADMIN_ONLY]
    assert usage.text == texts.ALLOW_USAGE
    admin_menu = telegram.commands({"type": "chat", "chat_id": ADMIN})
    assert {"allow", "deny", "users"} <= {c["command"] for c in admin_menu}
    assert "allow" not in {c["command"] for c in telegram.commands()}


async def test_rate_limit_holds_across_a_burst(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*", PARLEY_USER_RATE="3/minute")
    friend = telegram.user(FRIEND, "Friend")
    async with running_bot(env):
        ids = [telegram.push_text(FRIEND, friend, f"message {i}") for i in range(7)]  # one getUpdates batch
        admin_ids = [telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), f"admin {i}") for i in range(5)]
        await telegram.wait_sent(ADMIN, count=5)  # admins are not limited
        sent = await telegram.wait_sent(FRIEND, count=4)
        await telegram.wait_consumed()
    voices = [m for m in sent if m.kind == "voice"]
    notices = [m for m in telegram.sent_to(FRIEND) if m.kind == "text"]
    assert [m.reply_to_message_id for m in voices] == ids[:3]
    assert len(notices) == 1 and notices[0].text.startswith("Slow down a little")
    assert len(openai_api.chat_requests()) == 3 + len(admin_ids)


async def test_cheap_read_only_commands_are_answered_over_the_rate(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*", PARLEY_USER_RATE="2/minute")
    friend = telegram.user(FRIEND, "Friend")
    async with running_bot(env) as bot:
        for i in range(3):
            telegram.push_text(FRIEND, friend, f"message {i}")
        sent = await telegram.wait_sent(FRIEND, count=3)
        assert [m.kind for m in sent].count("voice") == 2
        [notice] = [m for m in sent if m.kind == "text"]
        assert notice.text == "Slow down a little: you've sent a lot of messages. Try again in a minute."
        for command in ("/help", "/usage", "/start", "/settings"):
            telegram.push_text(FRIEND, friend, command)
        help_, usage, start, settings = (await telegram.wait_sent(FRIEND, count=7))[3:]
        telegram.push_text(FRIEND, friend, "/voice")  # a command that changes things is still held to the rate
        telegram.push_text(FRIEND, friend, "still there?")
        await telegram.wait_consumed()
        await bot.services.scheduler.wait_idle()
    assert help_.text == registry.help_text() and start.text == texts.START
    assert usage.text.startswith("Your usage (days and months in UTC):")
    labels = [row[0]["text"] for row in settings.reply_markup["inline_keyboard"]]
    assert labels[0] == "Voice: alloy" and len(labels) == 5  # the settings screen, voice first
    assert len(telegram.sent_to(FRIEND)) == 7 and len(openai_api.chat_requests()) == 2


async def test_a_long_wait_is_said_in_words_in_the_readers_language(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*", PARLEY_USER_RATE="1/hour")
    friend, stranger = telegram.user(FRIEND, "Friend"), telegram.user(STRANGER, "Fremder", language_code="de")
    async with running_bot(env):
        for who, chat in ((friend, FRIEND), (stranger, STRANGER)):
            telegram.push_text(chat, who, "hello")
            telegram.push_text(chat, who, "hello again")
        [english] = [m for m in await telegram.wait_sent(FRIEND, count=2) if m.kind == "text"]
        [german] = [m for m in await telegram.wait_sent(STRANGER, count=2) if m.kind == "text"]
    assert english.text == "Slow down a little: you've sent a lot of messages. Try again in 1 hour."
    assert german.text == (
        "Langsam, bitte: Du hast sehr viele Nachrichten geschickt. Versuch es in 1 Stunde noch einmal."
    )


async def test_export_sends_the_users_data_as_json(parley, telegram: FakeTelegram) -> None:
    ann = telegram.user(FRIEND, "Ann", username="ann")
    telegram.push_text(FRIEND, ann, "/voice coral")
    telegram.push_text(FRIEND, ann, "remember the blue door")
    telegram.push_text(FRIEND, ann, "/export")
    document = (await telegram.wait_sent(FRIEND, count=3))[2]
    assert document.kind == "document" and document.caption == texts.EXPORT_CAPTION
    data = json.loads(document.data)
    assert data["user"]["id"] == FRIEND and data["user"]["voice"] == "coral"
    [conversation] = data["conversations"]
    assert [t["text"] for t in conversation["turns"]] == ["remember the blue door", "You said: remember the blue door"]
    [usage] = data["usage"]  # what their turn cost, too
    assert usage["purpose"] == "reply" and usage["model"].startswith("gpt-audio") and usage["cost_usd"] > 0


async def test_raw_audio_is_not_kept_by_default(parley, telegram: FakeTelegram) -> None:
    telegram.push_voice(FRIEND, telegram.user(FRIEND, "Ann"), make_voice_ogg(1.0))
    await telegram.wait_sent(FRIEND)
    assert await parley.services.storage.privacy.kept_audio_count() == 0


async def test_raw_audio_kept_when_asked_and_forgotten_with_the_user(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*", PARLEY_KEEP_AUDIO="true")
    note = make_voice_ogg(1.0)
    ann = telegram.user(FRIEND, "Ann")
    async with running_bot(env) as bot:
        telegram.push_voice(FRIEND, ann, note)
        await telegram.wait_sent(FRIEND)
        with sqlite3.connect(tmp_path / "parley.db") as db:
            [(kept,)] = db.execute("SELECT data FROM kept_audio WHERE user_id = ?", (FRIEND,)).fetchall()
        assert kept == note
        report = await bot.services.engine.forget(FRIEND)
        assert report.turns == 2
        assert await bot.services.storage.privacy.kept_audio_count() == 0


async def test_retention_deletes_exactly_what_is_due(database_target: Path | str) -> None:
    storage = await Storage.open(database_target)
    now = time.time()
    ids = await storage.turns.add(
        [NewTurn(chat_id=1, user_id=1, role="user", kind="text", text=f"turn {i}") for i in range(6)]
    )
    ages = {ids[0]: 40, ids[1]: 31, ids[2]: 29.9, ids[3]: 10, ids[4]: 0, ids[5]: 30.01}
    async with storage.db.transaction() as db:
        for turn_id, days in ages.items():
            await db.execute("UPDATE turns SET created_at = ? WHERE id = ?", (now - days * DAY, turn_id))
    for turn_id in (ids[2], ids[3]):  # audio kept 8 and 20 days ago is beyond a 7-day audio retention
        await storage.privacy.keep_audio(turn_id, 1, b"ogg")
    async with storage.db.transaction() as db:
        await db.execute("UPDATE kept_audio SET created_at = ? WHERE turn_id = ?", (now - 8 * DAY, ids[3]))
        await db.execute("UPDATE kept_audio SET created_at = ? WHERE turn_id = ?", (now - 2 * DAY, ids[2]))
    done = await storage.jobs.add(chat_id=1, source="message:1", kind="converse", payload={})
    queued = await storage.jobs.add(chat_id=1, source="message:2", kind="converse", payload={})
    assert done and queued
    await storage.jobs.finish(done, ok=True)
    async with storage.db.transaction() as db:
        await db.execute("UPDATE jobs SET updated_at = ?", (now - 60 * DAY,))

    report = await storage.privacy.apply_retention(days=30, audio_days=7, now=now)

    remaining = [t.text for t in await storage.turns.recent(1, 1, 100)]
    assert remaining == ["turn 2", "turn 3", "turn 4"]
    assert (report.turns, report.audio, report.jobs) == (3, 1, 1)
    assert await storage.privacy.kept_audio_count() == 1
    assert [j.id for j in await storage.jobs.unfinished()] == [queued]  # work still owed is never deleted
    await storage.close()


async def test_retention_runs_at_start_up_and_on_its_schedule(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db_path = tmp_path / "parley.db"
    storage = await Storage.open(db_path)
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="ancient")])
    async with storage.db.transaction() as db:
        await db.execute("UPDATE turns SET created_at = ?", (time.time() - 100 * DAY,))
    await storage.close()
    env = env_for(telegram, openai_api, tmp_path, PARLEY_RETENTION_DAYS="30")
    async with running_bot(env, retention_every=0.5) as bot:
        assert await bot.services.storage.turns.count(1) == 0  # gone at start-up
        await bot.services.storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="x")])
        async with bot.services.storage.db.transaction() as db:
            await db.execute("UPDATE turns SET created_at = ?", (time.time() - 31 * DAY,))
        await telegram.wait_for(lambda: _turns(db_path) == 0, 5, what="the scheduled retention run")


def _turns(db_path: Path) -> int:
    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]


async def test_database_and_its_journal_are_private(parley, telegram: FakeTelegram) -> None:
    telegram.push_text(FRIEND, telegram.user(FRIEND, "Ann"), "hi")
    await telegram.wait_sent(FRIEND)
    db_path = parley.settings.operations.db_path
    for path in (db_path, db_path.with_name(db_path.name + "-wal")):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


async def test_forget_keeps_totals_and_does_not_reset_budgets(tmp_path: Path) -> None:
    from parley.prices import PriceTable
    from parley.spend import Spend
    from storage import Usage

    storage = await Storage.open(tmp_path / "parley.db")
    spend = Spend(storage.usage, PriceTable.shipped())
    usage = Usage(model="gpt-audio", prompt_tokens=2000, completion_tokens=3000, completion_audio_tokens=2500)
    cost = await spend.record(user_id=FRIEND, chat_id=FRIEND, purpose="reply", usage=usage)
    assert cost > 0
    before_user = await storage.usage.spent(0, user_id=FRIEND)
    before_all = await storage.usage.spent(0)
    await storage.privacy.forget_user(FRIEND, forgotten_key=spend.forgotten_key(FRIEND))
    with sqlite3.connect(tmp_path / "parley.db") as db:
        assert db.execute("SELECT COUNT(*) FROM usage_ledger WHERE user_id = ?", (FRIEND,)).fetchone()[0] == 0
    assert await storage.usage.spent(0) == pytest.approx(before_all)  # the totals stay …
    assert await storage.usage.spent(0, user_id=FRIEND, forgotten_key=spend.forgotten_key(FRIEND)) == pytest.approx(
        before_user
    )  # … and so does the budget
    await storage.privacy.apply_retention(days=30, audio_days=7, now=time.time() + 40 * DAY)
    assert await storage.usage.spent(0, user_id=FRIEND, forgotten_key=spend.forgotten_key(FRIEND)) == 0  # until no
    # budget period can see it
    await storage.close()
