"""Attacks by people (not by files) on the real bot: forwarded orders, other bots' captions, other members'
buttons, an admin in a group nobody allowed; and bad luck: a model answering garbage, Telegram refusing a
voice reply, a job whose code raises."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot
from parley.errors import ModelError, ModelUnavailable
from storage import Storage

pytestmark = pytest.mark.sees_all_group_messages  # privacy mode off: the group log needs every message

ADMIN, FRIEND, STRANGER, VICTIM = 111, 222, 333, 777
GROUP, NOT_ALLOWED = -1001, -1009
BOT = "@parley_test_bot"


def env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, **settings: str) -> dict[str, str]:
    settings.setdefault("PARLEY_ALLOWED", f"{FRIEND},{GROUP}")
    return lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ADMINS=str(ADMIN), **settings)


def rows(db: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, params).fetchall()


def command_entities(text: str) -> list[dict]:
    return [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]


async def test_a_forwarded_command_runs_nothing(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    admin, victim = telegram.user(ADMIN, "Admin"), telegram.user(VICTIM, "Vic")
    someone = telegram.user(STRANGER, "Mallory")
    async with running_bot(env(telegram, openai_api, tmp_path)):
        text = f"/allow {VICTIM}"
        origin = {"type": "user", "sender_user": someone, "date": int(time.time()) - 60}
        telegram.push_message(
            ADMIN, admin, {"text": text, "entities": command_entities(text), "forward_origin": origin}
        )
        [answer] = await telegram.wait_sent(ADMIN)  # a forwarded message is something to talk about …
        telegram.push_text(VICTIM, victim, "am I in?")
        [refusal] = await telegram.wait_sent(VICTIM)
    assert answer.text != texts.access_changed(str(VICTIM), True)
    assert refusal.text == texts.refused(VICTIM)  # … not an order: 777 is still refused
    assert rows(tmp_path / "parley.db", "SELECT * FROM access_overrides") == []


async def test_a_caption_for_another_bot_is_not_ours(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    async with running_bot(env(telegram, openai_api, tmp_path)):
        note = make_voice_ogg(1.0)
        theirs = telegram.push_voice(GROUP, friend, note, caption="/transcribe@other_bot", chat_type="supergroup")
        ours = telegram.push_voice(GROUP, friend, note, caption=f"/transcribe{BOT}", chat_type="supergroup")
        [transcript] = await telegram.wait_sent(GROUP)
        await telegram.wait_consumed()
    assert transcript.reply_to_message_id == ours  # ours is answered; the other bot's is only logged
    assert {m.reply_to_message_id for m in telegram.sent_to(GROUP)} == {ours}
    logged = rows(tmp_path / "parley.db", "SELECT message_id FROM group_messages")
    assert logged == [(theirs,)]


async def test_a_member_cannot_press_anothers_retry(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    friend, other = telegram.user(FRIEND, "Friend"), telegram.user(STRANGER, "Other")
    async with running_bot(env(telegram, openai_api, tmp_path)):
        openai_api.fail_next(500)
        text = f"{BOT} what's the capital of Peru?"
        mention = [{"type": "mention", "offset": 0, "length": len(BOT)}]
        asked = telegram.push_text(GROUP, friend, text, chat_type="supergroup", entities=mention)
        [failure] = await telegram.wait_sent(GROUP)
        [[button]] = failure.reply_markup["inline_keyboard"]
        calls = len(openai_api.chat_requests())

        query = telegram.push_callback(GROUP, other, failure.message_id, button["callback_data"])
        await telegram.wait_for(lambda: query in telegram.callback_answers)
        await telegram.wait_consumed()
        assert telegram.callback_answers[query]["text"] == texts.NOT_YOUR_BUTTON
        assert telegram.callback_answers[query]["show_alert"] is True
        assert len(openai_api.chat_requests()) == calls  # nothing re-run at the presser's cost

        telegram.push_callback(GROUP, friend, failure.message_id, button["callback_data"])  # the asker's own
        await telegram.wait_for(lambda: len(openai_api.chat_requests()) > calls)
        reply = (await telegram.wait_sent(GROUP, count=2))[1]
    assert reply.kind == "voice" and reply.reply_to_message_id == asked


async def test_an_admin_in_a_group_nobody_allowed_is_not_recorded(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    admin = telegram.user(ADMIN, "Admin")
    async with running_bot(env(telegram, openai_api, tmp_path)):
        telegram.push_text(NOT_ALLOWED, admin, "our secret plans", chat_type="supergroup")
        telegram.push_voice(NOT_ALLOWED, admin, make_voice_ogg(1.0), chat_type="supergroup")
        await telegram.wait_consumed()
        telegram.push_text(ADMIN, admin, "hello")  # something later, to know the group's updates were handled
        await telegram.wait_sent(ADMIN)
    assert rows(tmp_path / "parley.db", "SELECT COUNT(*) FROM group_messages") == [(0,)]
    assert [r for r in openai_api.requests if "transcriptions" in r.path] == []
    assert telegram.calls_of("getFile") == []


async def test_an_addressed_group_voice_note_is_transcribed_once(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    db = tmp_path / "parley.db"
    async with running_bot(env(telegram, openai_api, tmp_path)):
        mention = [{"type": "mention", "offset": 0, "length": len(BOT)}]
        telegram.push_text(GROUP, friend, f"{BOT} hello", chat_type="supergroup", entities=mention)
        [answer] = await telegram.wait_sent(GROUP)
        # A voice note replying to the bot's answer is addressed to it: a turn, and a line of the log.
        note = telegram.push_voice(
            GROUP, friend, make_voice_ogg(2.0), chat_type="supergroup", reply_to=answer.message_id
        )
        await telegram.wait_sent(GROUP, count=2)
        await telegram.wait_for(
            lambda: rows(db, "SELECT transcript_state FROM group_messages WHERE message_id = ?", note) == [("done",)]
        )
        await telegram.wait_consumed()
    transcriptions = [r for r in openai_api.requests if r.path.endswith("/audio/transcriptions")]
    assert len(transcriptions) == 1
    [(text,)] = rows(db, "SELECT text FROM group_messages WHERE message_id = ?", note)
    assert text


@pytest.mark.parametrize("stream", ["true", "false"])
async def test_a_garbled_model_answer_is_a_model_error_with_try_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture, stream: str
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    async with running_bot(env(telegram, openai_api, tmp_path, PARLEY_STREAM_REPLIES=stream)):
        openai_api.garble_next()
        asked = telegram.push_text(FRIEND, friend, "hello")
        [failure] = await telegram.wait_sent(FRIEND)
        [[button]] = failure.reply_markup["inline_keyboard"]
        telegram.push_callback(FRIEND, friend, failure.message_id, button["callback_data"])
        reply = (await telegram.wait_sent(FRIEND, count=2))[1]
    assert failure.text in {ModelError.user_message, ModelUnavailable.user_message} and button["text"] == texts.RETRY
    assert reply.kind == "voice" and reply.reply_to_message_id == asked
    assert not [r for r in caplog.records if r.exc_info]  # a model error, not a bug with a traceback


@pytest.mark.parametrize("fault", ["502", "429-streak"])
async def test_a_refused_voice_reply_still_reaches_the_person(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, fault: str
) -> None:
    friend = telegram.user(FRIEND, "Friend")
    async with running_bot(env(telegram, openai_api, tmp_path)):
        if fault == "502":
            telegram.fail_next("sendVoice", error_code=502)
        else:  # flood control for longer than the rate limiter's ten patient tries
            telegram.fail_next("sendVoice", error_code=429, retry_after=1, times=11)
        asked = telegram.push_text(FRIEND, friend, "tell me a story")
        [reply] = await telegram.wait_sent(FRIEND, timeout=40)
    assert len(openai_api.chat_requests()) == 1  # paid once …
    assert reply.reply_to_message_id == asked and (reply.caption or reply.text)  # … and it got through
    assert reply.kind == ("voice" if fault == "502" else "text")


async def test_a_job_that_raises_is_finished_and_its_sender_told(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    storage = await Storage.open(tmp_path / "parley.db")  # a row the code cannot read (a bug, or a bad upgrade)
    job_id = await storage.jobs.add(chat_id=FRIEND, source="message:41", kind="converse", payload={}, message_id=41)
    await storage.close()
    telegram.add_chat(FRIEND)
    async with running_bot(env(telegram, openai_api, tmp_path)):
        [told] = await telegram.wait_sent(FRIEND)
    assert told.text == texts.FAILED_UNEXPECTEDLY
    assert rows(tmp_path / "parley.db", "SELECT state FROM jobs WHERE id = ?", job_id) == [("failed",)]


async def test_an_allowed_username_follows_the_person_not_the_name(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path, PARLEY_ALLOWED="@friendly_one")):
        telegram.push_text(FRIEND, telegram.user(FRIEND, "Friend", username="friendly_one"), "hi")
        [first] = await telegram.wait_sent(FRIEND)
        # The friend renames; someone else takes the name.
        telegram.push_text(FRIEND, telegram.user(FRIEND, "Friend", username="friend_renamed"), "still me")
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Mallory", username="friendly_one"), "me too?")
        second = (await telegram.wait_sent(FRIEND, count=2))[1]
        [refusal] = await telegram.wait_sent(STRANGER)
    assert first.kind == "voice" and second.kind == "voice"  # renaming lost nothing …
    assert refusal.text == texts.refused(STRANGER)  # … and the name's new holder is not the friend
    assert rows(tmp_path / "parley.db", "SELECT username, user_id FROM username_bindings") == [
        ("@friendly_one", FRIEND)
    ]


async def test_a_denied_username_cannot_be_escaped_by_renaming(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    admin = telegram.user(ADMIN, "Admin")
    async with running_bot(env(telegram, openai_api, tmp_path, PARLEY_ALLOWED="*")):
        telegram.push_text(ADMIN, admin, "/deny @trolluser")
        await telegram.wait_sent(ADMIN)
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Troll", username="trolluser"), "let me in")
        [refusal] = await telegram.wait_sent(STRANGER)
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Troll", username="nice_person"), "I'm new here")
        telegram.push_text(FRIEND, telegram.user(FRIEND, "Friend"), "hello")  # a later update, to know
        await telegram.wait_sent(FRIEND)  # the renamed troll's was handled
        await telegram.wait_consumed()
    assert refusal.text == texts.refused(STRANGER)
    assert len(telegram.sent_to(STRANGER)) == 1  # refused again (told once within the hour)
    assert len(openai_api.chat_requests()) == 1  # only the friend's turn reached the model


async def test_anonymous_admins_share_no_conversation(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    anonymous = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}
    as_group = {"id": GROUP, "type": "supergroup", "title": "Lab supergroup"}
    text = f"{BOT} remember my secret plan"
    fields = {"text": text, "entities": [{"type": "mention", "offset": 0, "length": len(BOT)}]}
    async with running_bot(env(telegram, openai_api, tmp_path)):
        telegram.push_text(GROUP, telegram.user(FRIEND, "Friend"), "hello all", chat_type="supergroup")
        asked = telegram.push_message(
            GROUP, FRIEND, {**fields, "from": anonymous, "sender_chat": as_group}, chat_type="supergroup"
        )
        [answer] = await telegram.wait_sent(GROUP)
        await telegram.wait_consumed()
    assert answer.text == texts.ANONYMOUS_SENDER and answer.reply_to_message_id == asked
    assert openai_api.chat_requests() == []  # nothing paid, nothing remembered for the next anonymous admin
    assert rows(tmp_path / "parley.db", "SELECT COUNT(*) FROM turns") == [(0,)]
