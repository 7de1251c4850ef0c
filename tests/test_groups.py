"""Group chats against the lab: answering only when addressed, the group log, spoken summaries, digests."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import RunningBot, lab_env, running_bot
from tests.citing_model import CitingModel

pytestmark = pytest.mark.sees_all_group_messages  # privacy mode off: the group log needs every message

GROUP, FORUM, OTHER_GROUP = -1001, -1002, -1003
ANN, BOB, CAT = 11, 22, 33
BOT = "@parley_test_bot"


def mentioning(text: str) -> list[dict]:
    return [{"type": "mention", "offset": text.index(BOT), "length": len(BOT)}]


def say(telegram: FakeTelegram, user: dict, text: str, *, chat: int = GROUP, **kwargs) -> int:
    entities = mentioning(text) if BOT in text and not text.startswith("/") else None
    chat_type = "supergroup"
    return telegram.push_text(chat, user, text, chat_type=chat_type, entities=entities, **kwargs)


def log_rows(db_path: Path, chat: int = GROUP) -> list[tuple]:
    with sqlite3.connect(db_path) as db:
        return db.execute(
            "SELECT author, kind, text, transcript_state FROM group_messages WHERE chat_id = ? ORDER BY id", (chat,)
        ).fetchall()


def age_messages(db_path: Path, hours: float, *, chat: int = GROUP) -> None:
    """Pretend everything logged so far was said `hours` ago (the stand-in stamps messages with now)."""
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE group_messages SET sent_at = sent_at - ? WHERE chat_id = ?", (hours * 3600, chat))


@pytest.fixture
def citing(openai_api: FakeOpenAI) -> CitingModel:
    """The summary model answers cited-points requests with JSON, as the real one does for a schema."""
    model = CitingModel()
    openai_api.reply_text = model
    return model


@pytest.fixture
async def group_bot(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> AsyncIterator[RunningBot]:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=f"{GROUP},{FORUM},{ANN}")
    async with running_bot(env) as bot:
        yield bot


async def test_only_addressed_messages_are_answered(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
    say(telegram, ann, "morning all, who's bringing the cake?")
    asked = say(telegram, bob, f"{BOT} what's a good cake?")
    [answer] = await telegram.wait_sent(GROUP)
    reply_to_bot = say(telegram, ann, "and a cheap one?", reply_to=answer.message_id)
    note = telegram.push_voice(GROUP, ann, make_voice_ogg(1.0), chat_type="supergroup", reply_to=answer.message_id)
    sent = await telegram.wait_sent(GROUP, count=3)
    await telegram.wait_consumed()
    assert [m.reply_to_message_id for m in sent] == [asked, reply_to_bot, note]
    assert all(m.kind == "voice" for m in sent)
    first = openai_api.chat_requests()[0].json["messages"]
    assert first[-1] == {"role": "user", "content": "what's a good cake?"}  # the mention is not part of it
    assert len(openai_api.chat_requests()) == 3  # the unaddressed greeting cost nothing


async def test_each_member_has_their_own_context(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
    say(telegram, ann, f"{BOT} my secret word is pineapple")
    await telegram.wait_sent(GROUP)
    say(telegram, bob, f"{BOT} what is my secret word?")
    await telegram.wait_sent(GROUP, count=2)
    telegram.push_text(ANN, ann, "and in private?")
    await telegram.wait_sent(ANN)
    bobs, private = openai_api.chat_requests()[1].json["messages"], openai_api.chat_requests()[2].json["messages"]
    assert [m["role"] for m in bobs] == ["system", "user"]
    assert [m["role"] for m in private] == ["system", "user"]  # the group conversation stays in the group


async def test_forum_topics_are_kept_apart_and_answered_in_place(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    telegram.add_chat(FORUM, chat_type="supergroup", is_forum=True)
    ann = telegram.user(ANN, "Ann")
    say(telegram, ann, f"{BOT} topic one: remember 42", chat=FORUM, message_thread_id=5)
    await telegram.wait_sent(FORUM)
    say(telegram, ann, f"{BOT} topic two: what did I say?", chat=FORUM, message_thread_id=9)
    sent = await telegram.wait_sent(FORUM, count=2)
    assert [m.message_thread_id for m in sent] == [5, 9]
    assert [m["role"] for m in openai_api.chat_requests()[1].json["messages"]] == ["system", "user"]


async def test_group_talk_is_recorded_with_transcripts_and_edits(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann, bob = telegram.user(ANN, "Ann", username="ann"), telegram.user(BOB, "Bob")
    typo = say(telegram, ann, "lets meet at 5")
    telegram.push_voice(GROUP, bob, make_voice_ogg(2.0), chat_type="supergroup")
    telegram.push_edit(GROUP, typo, "let's meet at 6")
    db = group_bot.settings.operations.db_path
    await telegram.wait_for(lambda: len(log_rows(db)) == 2 and log_rows(db)[1][3] == "done", 10, what="transcript")
    assert log_rows(db) == [
        ("Ann", "text", "let's meet at 6", None),
        ("Bob", "voice", "transcript of 2.0 s", "done"),
    ]
    assert telegram.sent_to(GROUP) == []  # recorded, not answered
    assert openai_api.chat_requests() == []


async def test_summary_covers_exactly_the_span_and_names_the_speakers(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel
) -> None:
    ann, bob, cat = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob"), telegram.user(CAT, "Cat")
    db = group_bot.settings.operations.db_path
    say(telegram, ann, "old news from yesterday morning")
    await telegram.wait_consumed()
    await telegram.wait_for(lambda: len(log_rows(db)) == 1, 5)
    age_messages(db, 30)
    say(telegram, bob, "we decided on Friday for the launch")
    say(telegram, cat, "who books the room?")
    await telegram.wait_consumed()
    await telegram.wait_for(lambda: len(log_rows(db)) == 3, 5)
    age_messages(db, 1)  # now: old one 31 h ago, two within the last 3 h

    asked = say(telegram, ann, "/summary 3h")
    status, summary, written = await telegram.wait_sent(GROUP, count=3)
    points, spoken = openai_api.chat_requests()  # cited points from the log, then the voice speaks them
    material = points.json["messages"][-1]["content"]
    assert "Bob: we decided on Friday for the launch" in material
    assert "Cat: who books the room?" in material
    assert "old news" not in material and "/summary" not in material
    assert "Bob said: we decided on Friday for the launch" in spoken.json["messages"][-1]["content"]
    assert summary.kind == "voice" and summary.reply_to_message_id == asked
    assert summary.caption.startswith("Summary of 2 messages from 2 people")
    assert written.reply_to_message_id == summary.message_id  # the cited points follow the voice
    assert (
        written.text
        == "• Bob said: we decided on Friday for the launch — Bob [1]\n• Cat said: who books the room? — Cat [1]"
    )
    assert status.text == texts.reading(2, None)
    await telegram.wait_for(lambda: telegram.message(GROUP, status.message_id).deleted, 5, what="status deleted")

    say(telegram, bob, "/summary 200")  # the last N messages, whatever their age
    await telegram.wait_sent(GROUP, count=6)
    assert "old news from yesterday morning" in openai_api.chat_requests()[2].json["messages"][-1]["content"]

    say(telegram, cat, "one more thing: bring snacks")
    await telegram.wait_consumed()
    say(telegram, cat, "/summary")  # since the last summary
    await telegram.wait_sent(GROUP, count=9)
    latest = openai_api.chat_requests()[4].json["messages"][-1]["content"]
    assert "bring snacks" in latest and "Friday" not in latest


async def test_large_spans_are_summarised_in_chunks_with_progress(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, citing: CitingModel
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_SUMMARY_CHUNK_TOKENS="200")
    ann = telegram.user(ANN, "Ann")
    async with running_bot(env):
        for i in range(40):
            say(telegram, ann, f"message number {i} about the quarterly planning and the budget")
        await telegram.wait_consumed()
        say(telegram, ann, "/summary 40")
        status, summary, _ = await telegram.wait_sent(GROUP, count=3)
    requests = openai_api.chat_requests()
    chunks = [r for r in requests if r.json["model"] == "gpt-4o-mini"]
    assert len(chunks) >= 3
    assert all("modalities" not in r.json for r in chunks)  # the cheap text model reads the chunks
    assert requests[-1].json["model"] == "gpt-audio-1.5"  # the audio model speaks the result
    combined = requests[-1].json["messages"][-1]["content"]
    for chunk in chunks:  # every chunk's point reaches the voice (one speaker: one point a chunk)
        first = chunk.json["messages"][-1]["content"].splitlines()[0].split(": ", 1)[1]
        assert f"Ann said: {first}" in combined
    assert status.edits[-1] == texts.reading(40, (len(chunks), len(chunks)))
    assert summary.kind == "voice"


async def test_summary_explains_privacy_mode(openai_api: FakeOpenAI, tmp_path: Path, citing: CitingModel) -> None:
    async with FakeTelegram(can_read_all_group_messages=False) as telegram:
        env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=str(GROUP))
        async with running_bot(env):
            say(telegram, telegram.user(ANN, "Ann"), "/summary@parley_test_bot")
            sent = await telegram.wait_sent(GROUP, count=2)
    assert sent[0].text == texts.PRIVACY_MODE
    assert "BotFather" in sent[0].text


async def test_summary_requests_are_rate_limited_per_chat(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, citing: CitingModel
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_SUMMARY_RATE="2/10minutes")
    ann = telegram.user(ANN, "Ann")
    async with running_bot(env):
        say(telegram, ann, "something to summarise")
        for _ in range(4):
            say(telegram, ann, "/summary 10")
        await telegram.wait_consumed()
        await telegram.wait_for(lambda: len(openai_api.chat_requests()) == 2 * 2, 10)  # points + speech, twice
        await telegram.wait_for(lambda: any(m.text and "enough summaries" in m.text for m in telegram.sent), 5)
    notices = [m for m in telegram.sent_to(GROUP) if m.text and "enough summaries" in m.text]
    assert len(notices) == 1
    assert len(openai_api.chat_requests()) == 2 * 2


async def test_digest_is_for_group_admins_fires_at_its_time_and_survives_restart(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, citing: CitingModel
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
    telegram.add_chat(GROUP, chat_type="supergroup")
    telegram.set_member_status(GROUP, ANN, "administrator")
    async with running_bot(env) as bot:
        say(telegram, bob, "/digest 18:30")
        say(telegram, ann, "/digest 18:30 Europe/Berlin")
        refused, done = await telegram.wait_sent(GROUP, count=2)
        assert refused.text == texts.DIGEST_ADMINS_ONLY
        assert done.text == texts.digest_set("every day at 6:30\u202fPM (Europe/Berlin)")
    say(telegram, bob, "the day's talk: we ship on Monday")
    async with running_bot(env) as bot:  # restored from SQLite at start-up
        assert bot.app is not None and bot.app.job_queue is not None
        [job] = bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
        fires_at = job.next_t.astimezone(ZoneInfo("Europe/Berlin"))
        assert (fires_at.hour, fires_at.minute) == (18, 30)
        assert fires_at - dt.datetime.now(ZoneInfo("Europe/Berlin")) <= dt.timedelta(days=1)
        await telegram.wait_consumed()
        await job.run(bot.app)  # the JobQueue's clock reaches 18:30
        sent = await telegram.wait_sent(GROUP, count=5)
        assert sent[-2].kind == "voice" and sent[-2].caption.startswith("Summary of 1 message")
        assert sent[-1].text == "• Bob said: the day's talk: we ship on Monday — Bob [1]"
        await job.run(bot.app)  # the same day's digest is never posted twice
        await telegram.wait_consumed()
        say(telegram, ann, "/digest off")
        await telegram.wait_sent(GROUP, count=6)
        await telegram.wait_for(lambda: not bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}"), 5)
    assert telegram.sent_to(GROUP)[-1].text == texts.DIGEST_OFF
    assert len([m for m in telegram.sent_to(GROUP) if m.kind == "voice"]) == 1


async def test_only_allowed_groups_are_served_and_recorded(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=str(GROUP))
    stranger = telegram.user(CAT, "Cat")  # not on any list: in an allowed group, every member may talk
    async with running_bot(env) as bot:
        say(telegram, stranger, f"{BOT} hello from the allowed group")
        say(telegram, stranger, f"{BOT} hello from elsewhere", chat=OTHER_GROUP)
        say(telegram, stranger, "just chatting elsewhere", chat=OTHER_GROUP)
        [answer] = await telegram.wait_sent(GROUP)
        await telegram.wait_consumed()
        db = bot.settings.operations.db_path
    assert answer.kind == "voice"
    # Not silence where the bot was addressed: one notice how to switch it on (the chatter alone gets none).
    [notice] = telegram.sent_to(OTHER_GROUP)
    assert notice.text == texts.group_not_enabled(OTHER_GROUP)
    assert log_rows(db, OTHER_GROUP) == []  # nothing of a group that is not allowed is stored
    assert len(openai_api.chat_requests()) == 1


async def test_private_commands_are_redirected_in_groups(group_bot: RunningBot, telegram: FakeTelegram) -> None:
    say(telegram, telegram.user(ANN, "Ann"), "/forget")
    [answer] = await telegram.wait_sent(GROUP)
    assert answer.text == texts.PRIVATE_ONLY_BUTTON
    [button] = [b for row in answer.reply_markup["inline_keyboard"] for b in row]
    assert button == {"text": "Open private chat", "url": f"https://t.me/{telegram.bot_username}?start=forget"}


async def test_forwarded_messages_are_credited_to_their_origin(
    group_bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel
) -> None:
    ann = telegram.user(ANN, "Ann")
    dan = telegram.user(44, "Dan", username="dan")
    origin = {"type": "user", "sender_user": dan, "date": int(time.time()) - 600}
    telegram.push_message(GROUP, ann, {"text": "the venue is booked", "forward_origin": origin}, chat_type="supergroup")
    say(telegram, ann, "/summary 10")
    await telegram.wait_sent(GROUP, count=2)
    material = openai_api.chat_requests()[0].json["messages"][-1]["content"]
    assert "Ann (forwarded from Dan): the venue is booked" in material


async def test_group_log_has_its_own_retention(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    db = tmp_path / "parley.db"
    env = lab_env(telegram, openai_api, db, PARLEY_GROUP_RETENTION_DAYS="7")
    ann = telegram.user(ANN, "Ann")
    async with running_bot(env):
        say(telegram, ann, "said ten days ago")
        await telegram.wait_for(lambda: len(log_rows(db)) == 1, 5)
    age_messages(db, 10 * 24)
    async with running_bot(env):
        say(telegram, ann, "said today")
        await telegram.wait_for(lambda: len(log_rows(db)) >= 1 and log_rows(db)[-1][2] == "said today", 5)
    assert [row[2] for row in log_rows(db)] == ["said today"]


async def test_summaries_are_paid_for_through_the_ledger(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, citing: CitingModel
) -> None:
    db = tmp_path / "parley.db"
    env = lab_env(telegram, openai_api, db, PARLEY_SUMMARY_CHUNK_TOKENS="200")
    ann = telegram.user(ANN, "Ann")
    async with running_bot(env):
        for i in range(30):
            say(telegram, ann, f"point number {i} about the offsite agenda and who drives")
        await telegram.wait_consumed()
        say(telegram, ann, "/summary 30")
        await telegram.wait_sent(GROUP, count=2)
    with sqlite3.connect(db) as ledger:
        rows = ledger.execute("SELECT user_id, chat_id, purpose, model FROM usage_ledger").fetchall()
    calls = openai_api.chat_requests()
    assert len(rows) == len(calls) >= 3  # every chunk and the spoken result
    assert {(user, chat, purpose) for user, chat, purpose, _ in rows} == {(ANN, GROUP, "summary")}
