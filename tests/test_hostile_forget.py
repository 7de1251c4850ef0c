"""/forget leaves nothing: after it, no table's text and no byte of the database files (nor its write-ahead
log) holds the person's words, username or name, in their private chat or in a group, whatever state their
jobs were left in; and what their budgets still need this month is kept under no id of theirs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot

pytestmark = pytest.mark.sees_all_group_messages  # privacy mode off: the group log needs every message

ZEB, OTHER = 4242, 5353
GROUP = -1001
BOT = "@parley_test_bot"
NAME, USERNAME = "Zebulonius", "zebulon_quux"
WORDS = ("alphasecret", "bravosecret", "charliesecret", "deltasecret")


def everything_in(db: Path) -> tuple[list[tuple[str, str, object]], list[tuple[str, str, int]]]:
    """Every text value of every table (table, column, value), and every integer equal to an id of his."""
    texts_found: list[tuple[str, str, object]] = []
    ids_found: list[tuple[str, str, int]] = []
    with sqlite3.connect(db) as connection:
        tables = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str | bytes):
                        texts_found.append((table, column, value))
                    elif value == ZEB:
                        ids_found.append((table, column, value))
    return texts_found, ids_found


async def test_forget_leaves_no_words_name_or_username_anywhere(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"
    zeb = telegram.user(ZEB, NAME, username=USERNAME)
    other = telegram.user(OTHER, "Olga", username="olga_o")
    mention = [{"type": "mention", "offset": 0, "length": len(BOT)}]
    async with running_bot(lab_env(telegram, openai_api, db, PARLEY_ALLOWED=str(GROUP))):
        telegram.push_text(ZEB, zeb, f"let me in {WORDS[0]}")  # refused: a refusal record
        await telegram.wait_sent(ZEB)
    allowed = lab_env(
        telegram, openai_api, db, PARLEY_ALLOWED=f"{GROUP},{ZEB},{OTHER}", PARLEY_USER_DAILY_BUDGET_USD="5"
    )
    async with running_bot(allowed) as bot:
        telegram.push_text(ZEB, zeb, f"my private words {WORDS[0]}")
        await telegram.wait_sent(ZEB, count=2)
        note = telegram.push_voice(ZEB, zeb, make_voice_ogg(1.0))
        await telegram.wait_sent(ZEB, count=3)
        telegram.push_text(ZEB, zeb, "/transcribe", reply_to=note)  # the transcript cache
        await telegram.wait_for(lambda: any(m.text and m.text.startswith("I heard") for m in telegram.sent_to(ZEB)))
        said = telegram.push_text(GROUP, zeb, f"in the group {WORDS[1]}", chat_type="supergroup")
        spoken = telegram.push_voice(GROUP, zeb, make_voice_ogg(1.0), chat_type="supergroup")  # for the log
        telegram.push_text(GROUP, other, "/transcribe", chat_type="supergroup", reply_to=spoken)  # his words
        await telegram.wait_for(lambda: any(m.text and m.text.startswith("I heard") for m in telegram.sent_to(GROUP)))
        telegram.push_text(GROUP, other, "quoting him", chat_type="supergroup", reply_to=said)
        openai_api.fail_next(500)  # a conversation job in the group, left failed (with Try again)
        telegram.push_text(GROUP, zeb, f"{BOT} {WORDS[2]}", chat_type="supergroup", entities=mention)
        await telegram.wait_for(lambda: any(m.reply_markup for m in telegram.sent_to(GROUP)))
        await telegram.wait_for(lambda: _transcribed(db), timeout=20)
        await telegram.wait_consumed()
        # One more of his being answered (slowly) in the group while he asks to be forgotten.
        openai_api.latency = 2.0
        calls = len(openai_api.chat_requests())
        telegram.push_text(GROUP, zeb, f"{BOT} still talking {WORDS[3]}", chat_type="supergroup", entities=mention)
        await openai_api.wait_for(lambda: len(openai_api.chat_requests()) > calls)

        await forget(telegram, zeb)
        spent_after = await bot.services.engine.spend.allowances(ZEB)
        assert any(m.kind == "voice" and "still talking" in (m.caption or "") for m in telegram.sent_to(GROUP))

    found, ids = everything_in(db)
    needles = (*WORDS, NAME.lower(), USERNAME)
    leaks = [(t, c) for t, c, v in found if any(n.encode() in _bytes(v).lower() for n in needles)]
    assert leaks == [], [v for t, c, v in found if any(n.encode() in _bytes(v).lower() for n in needles)]
    files = _database_files(tmp_path)
    assert [n for n in needles if n.encode() in files.lower()] == []
    # His id is left only where a redelivered update is recognised: job rows of his private chat, emptied.
    assert {(t, c) for t, c, _ in ids} <= {("jobs", "chat_id")}
    with sqlite3.connect(db) as connection:
        payloads = connection.execute("SELECT DISTINCT payload FROM jobs WHERE chat_id = ?", (ZEB,)).fetchall()
        keys = connection.execute("SELECT DISTINCT user_id FROM forgotten_spend").fetchall()
    assert payloads == [("{}",)]
    assert keys and all(key != ZEB for (key,) in keys)  # kept under no id of his …
    with sqlite3.connect(db) as connection:
        [(all_spend,)] = connection.execute("SELECT SUM(cost_usd) FROM usage_ledger").fetchall()
        [(olgas,)] = connection.execute("SELECT SUM(cost_usd) FROM usage_ledger WHERE user_id = ?", (OTHER,))
    assert [a.used for a in spent_after] == pytest.approx([all_spend - olgas])  # … yet all of it still counted
    assert b"Olga" in files  # the other member's words and name are still there


async def test_forget_unnames_other_members_forwards_of_their_messages(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """Olga forwards one of Zeb's messages and one of Dan's into the group; Zeb's /forget leaves Olga's
    message (and Dan's name) in the log, but nothing that says the first was Zeb's."""
    db = tmp_path / "parley.db"
    zeb = telegram.user(ZEB, NAME, username=USERNAME)
    olga = telegram.user(OTHER, "Olga", username="olga_o")
    dan = telegram.user(6464, "Dan Danson", username="dan_d")
    async with running_bot(lab_env(telegram, openai_api, db, PARLEY_ALLOWED=f"{GROUP},{ZEB},{OTHER}")):
        for who, text in ((zeb, "the venue is booked"), (dan, "bring snacks")):
            origin = {"type": "user", "sender_user": who, "date": 1_700_000_000}
            telegram.push_message(GROUP, olga, {"text": text, "forward_origin": origin}, chat_type="supergroup")
        await telegram.wait_for(lambda: len(_forwards(db)) == 2)
        assert _forwards(db) == [("the venue is booked", NAME, ZEB), ("bring snacks", "Dan Danson", 6464)]

        await forget(telegram, zeb)

    assert _forwards(db) == [("the venue is booked", "someone", None), ("bring snacks", "Dan Danson", 6464)]
    files = _database_files(tmp_path)
    assert NAME.encode() not in files and b"Dan Danson" in files


def _forwards(db: Path) -> list[tuple[str, str, int | None]]:
    with sqlite3.connect(db) as connection:
        return connection.execute(
            "SELECT text, forwarded_from, forwarded_from_id FROM group_messages WHERE forwarded_from IS NOT NULL"
            " ORDER BY message_id"
        ).fetchall()


async def forget(telegram: FakeTelegram, zeb: dict) -> None:
    """/forget in his private chat, confirmed, and done."""
    telegram.push_text(ZEB, zeb, "/forget")
    await telegram.wait_for(lambda: any(m.text == texts.FORGET_CONFIRM for m in telegram.sent_to(ZEB)))
    [confirm] = [m for m in telegram.sent_to(ZEB) if m.text == texts.FORGET_CONFIRM]
    telegram.push_callback(ZEB, zeb, confirm.message_id, "forget:yes")
    await telegram.wait_for(lambda: telegram.message(ZEB, confirm.message_id)["text"] != texts.FORGET_CONFIRM)
    await telegram.wait_consumed()


def _transcribed(db: Path) -> bool:
    with sqlite3.connect(db) as connection:
        states = connection.execute("SELECT transcript_state FROM group_messages WHERE kind = 'voice'").fetchall()
    return states == [("done",)]


def _database_files(folder: Path) -> bytes:
    """The database, its write-ahead log and anything else SQLite keeps beside it."""
    return b"".join(p.read_bytes() for p in folder.glob("parley.db*"))


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


async def test_export_holds_the_summary_transcripts_failed_messages_and_refusals(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"
    zeb = telegram.user(ZEB, NAME, username=USERNAME)
    async with running_bot(lab_env(telegram, openai_api, db, PARLEY_ALLOWED=str(GROUP))):
        telegram.push_text(ZEB, zeb, "let me in")  # refused: a refusal record
        await telegram.wait_sent(ZEB)
    allowed = lab_env(telegram, openai_api, db, PARLEY_ALLOWED=str(ZEB), PARLEY_HISTORY_TURNS="2")
    async with running_bot(allowed):
        for words in ("my cat is Tom", "I live in Oslo", "third"):
            telegram.push_text(ZEB, zeb, words)
        await openai_api.wait_for(lambda: any(r.json["model"] == "gpt-4o-mini" for r in openai_api.chat_requests()))
        note = telegram.push_voice(ZEB, zeb, make_voice_ogg(1.0))
        telegram.push_text(ZEB, zeb, "/transcribe", reply_to=note)
        await telegram.wait_for(lambda: any(m.text and m.text.startswith("I heard") for m in telegram.sent_to(ZEB)))
        await telegram.wait_consumed()
        openai_api.fail_next(500)
        telegram.push_text(ZEB, zeb, f"this one fails {WORDS[3]}")
        await telegram.wait_for(lambda: any(m.reply_markup for m in telegram.sent_to(ZEB)))
        telegram.push_text(ZEB, zeb, "/export")
        await telegram.wait_for(lambda: any(m.kind == "document" for m in telegram.sent_to(ZEB)))
    [document] = [m for m in telegram.sent_to(ZEB) if m.kind == "document"]
    data = json.loads(document.data)
    summaries = [c["summary_of_earlier_turns"] for c in data["conversations"] if c["summary_of_earlier_turns"]]
    assert summaries and "my cat is Tom" in summaries[0]
    [transcript] = data["transcripts_of_your_recordings"]
    assert transcript["text"].startswith("I heard")
    [unanswered] = data["messages_not_answered"]
    assert unanswered["state"] == "failed" and WORDS[3] in unanswered["text"]
    [refusal] = data["refusals"]
    assert refusal["times_refused"] == 1
