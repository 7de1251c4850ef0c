"""Group memory against the lab, with realistic group traffic: summaries whose points link to their messages,
questions about a summary (typed and spoken), /find with pages, /import of Telegram Desktop exports, weekly
digests. Hundreds of messages from several people: replies, forwards, voice notes, a forum with topics."""

from __future__ import annotations

import asyncio
import io
import random
import re
import sqlite3
import time
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot import texts
from bot.features.groups import find
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import RunningBot, lab_env, running_bot
from parley.i18n import formats
from parley.i18n.catalog import using
from storage.groups import GroupMessage
from tests.chat_exports import LINES, ExportBuilder, realistic_export
from tests.citing_model import CitingModel

pytestmark = pytest.mark.sees_all_group_messages  # privacy mode off: the group log needs every message

GROUP, FORUM = -1001987654321, -1001555000111
ANN, BOB, CAT, DAN = 11, 22, 33, 44
LINK = re.compile(r"^https://t\.me/c/(\d+)/(?:(\d+)/)?(\d+)$")


@pytest.fixture
def citing(openai_api: FakeOpenAI) -> CitingModel:
    model = CitingModel()
    openai_api.reply_text = model
    openai_api.transcript_text = lambda data, name: "What did they say about the budget?"
    return model


@pytest.fixture
async def bot(
    telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel, tmp_path: Path
) -> AsyncIterator[RunningBot]:
    telegram.add_chat(GROUP, chat_type="supergroup", title="Garden club")
    telegram.add_chat(FORUM, chat_type="supergroup", title="Garden forum", is_forum=True)
    telegram.set_member_status(GROUP, ANN, "administrator")
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=f"{GROUP},{FORUM},{ANN},{BOB}",
                  PARLEY_CHAT_RATE="1000/minute")  # fmt: skip
    async with running_bot(env) as running:
        yield running


def people(telegram: FakeTelegram) -> list[dict]:
    return [
        telegram.user(ANN, "Anna"),
        telegram.user(BOB, "Bob"),
        telegram.user(CAT, "Zoë"),
        telegram.user(DAN, "陈伟"),
    ]


def busy_day(telegram: FakeTelegram, chat: int, count: int, *, topics: tuple[int, ...] = (), seed: int = 5) -> None:
    """A busy group: several people, replies, forwards, voice notes; in a forum, spread over topics."""
    rng = random.Random(seed)
    who = people(telegram)
    sent: list[int] = []
    for index in range(count):
        user = rng.choice(who)
        topic = rng.choice(topics) if topics else None
        reply = rng.choice(sent[-10:]) if sent and rng.random() < 0.25 else None
        roll = rng.random()
        if roll < 0.08:
            message_id = telegram.push_voice(chat, user, make_voice_ogg(1.0), chat_type="supergroup", reply_to=reply,
                                             message_thread_id=topic)  # fmt: skip
        elif roll < 0.14:
            origin = {"type": "hidden_user", "sender_user_name": "City Council", "date": int(time.time()) - 3600}
            message_id = telegram.push_message(chat, user, {"text": rng.choice(LINES), "forward_origin": origin},
                                               chat_type="supergroup")  # fmt: skip
        else:
            message_id = telegram.push_text(chat, user, f"{rng.choice(LINES)} (#{index})", chat_type="supergroup",
                                            reply_to=reply, message_thread_id=topic)  # fmt: skip
        sent.append(message_id)


def logged(db: Path, chat: int) -> dict[int, tuple]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT message_id, author, thread_id, text, sent_at FROM group_messages WHERE chat_id = ?", (chat,)
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def remembered(db: Path, chat: int) -> int:
    """The bot's messages known to carry a summary or an answer (written just after they are sent)."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM group_summaries WHERE chat_id = ?", (chat,)).fetchone()[0]


def links(message) -> list[str]:
    return [e["url"] for e in message.entities if e["type"] == "text_link"]


async def test_a_busy_week_is_summarised_with_links_and_answered_when_asked(
    bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel
) -> None:
    busy_day(telegram, GROUP, 160)
    db = bot.settings.operations.db_path
    await telegram.wait_consumed()
    await telegram.wait_for(lambda: len(logged(db, GROUP)) == 160, 30, what="the log")
    anna = telegram.user(ANN, "Anna")
    asked = telegram.push_text(GROUP, anna, "/summary week", chat_type="supergroup")
    _status, voice, written = await telegram.wait_sent(GROUP, count=3, timeout=30)
    assert voice.kind == "voice" and voice.reply_to_message_id == asked
    assert voice.caption.startswith("Summary of 160 messages from 4 people")
    assert written.reply_to_message_id == voice.message_id
    assert [e["type"] for e in written.entities if e["type"].endswith("blockquote")] == ["expandable_blockquote"]
    assert not [e for e in written.entities if e["type"] in ("mention", "text_mention")]  # names notify nobody
    log = logged(db, GROUP)
    cited = [LINK.match(url) for url in links(written)]
    assert cited and all(cited)
    for match in cited:
        assert match is not None and match.group(1) == "1987654321" and match.group(2) is None
        assert int(match.group(3)) in log  # every link leads to a logged message of the span
    for author in {row[0] for row in log.values()}:
        assert author in written.text
    await telegram.wait_for(lambda: remembered(db, GROUP) == 2, 10, what="the summary's span remembered")

    telegram.push_text(GROUP, telegram.user(BOB, "Bob"), "What was said about the budget?", chat_type="supergroup",
                       reply_to=written.message_id)  # fmt: skip
    sent = await telegram.wait_sent(GROUP, count=6, timeout=30)
    answer, sources = sent[-2], sent[-1]
    assert answer.kind == "voice" and "budget" in answer.caption.casefold()
    assert sources.reply_to_message_id == answer.message_id
    for url in links(sources):
        match = LINK.match(url)
        assert match is not None and "budget" in (log[int(match.group(3))][2] or "").casefold()
    question = [r for r in openai_api.chat_requests() if (r.json.get("response_format") or {}).get("json_schema", {})
                .get("name") == "cited_answer"][-1]  # fmt: skip
    assert "What was said about the budget?" in question.json["messages"][-1]["content"]
    assert citing.calls.count("cited_answer") == 1
    await telegram.wait_for(lambda: remembered(db, GROUP) == 4, 10, what="the answer's span remembered")

    telegram.push_voice(GROUP, telegram.user(CAT, "Zoë"), make_voice_ogg(2.0), chat_type="supergroup",
                        reply_to=answer.message_id)  # fmt: skip  # a follow-up, spoken, to the answer
    sent = await telegram.wait_sent(GROUP, count=9, timeout=30)
    assert sent[-2].kind == "voice" and "budget" in sent[-2].caption.casefold()
    with sqlite3.connect(db) as ledger:
        purposes = [row[0] for row in ledger.execute("SELECT purpose FROM usage_ledger WHERE chat_id = ?", (GROUP,))]
    assert purposes.count("summary") == 2 + 2 + 2  # the summary, then each answer: cited text, then speech
    assert "transcription" in purposes  # the spoken question, and the group's voice notes


async def test_forum_summaries_link_into_their_topics(
    bot: RunningBot, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    busy_day(telegram, FORUM, 60, topics=(3, 4), seed=9)
    db = bot.settings.operations.db_path
    await telegram.wait_consumed()
    await telegram.wait_for(lambda: len(logged(db, FORUM)) == 60, 30, what="the log")
    telegram.push_text(FORUM, telegram.user(ANN, "Anna"), "/summary", chat_type="supergroup", message_thread_id=3)
    sent = await telegram.wait_sent(FORUM, count=3, timeout=30)
    assert all(m.message_thread_id == 3 for m in sent)  # answered in the topic it was asked in
    log = logged(db, FORUM)
    urls = links(sent[-1])
    assert urls
    topics = []
    for url in urls:
        match = LINK.match(url)
        assert match is not None and match.group(1) == "1555000111"
        topic = int(match.group(2)) if match.group(2) else None
        assert topic == log[int(match.group(3))][1]  # the link's topic is the message's (none: General)
        topics.append(topic)
    assert {3, 4} <= set(topics)


async def test_find_folds_accents_finds_chinese_and_pages(bot: RunningBot, telegram: FakeTelegram) -> None:
    busy_day(telegram, GROUP, 120, seed=2)
    db = bot.settings.operations.db_path
    await telegram.wait_consumed()
    await telegram.wait_for(lambda: len(logged(db, GROUP)) == 120, 30, what="the log")
    bob = telegram.user(BOB, "Bob")
    log = logged(db, GROUP)

    telegram.push_text(GROUP, bob, "/find CAFE greve", chat_type="supergroup")
    [found] = await telegram.wait_sent(GROUP)
    assert "Le café est fermé à cause de la grève" in found.text
    assert all("café" in log[int(LINK.match(u).group(3))][2] for u in links(found))  # type: ignore[union-attr]

    telegram.push_text(GROUP, bob, "/find 预算", chat_type="supergroup")
    chinese = (await telegram.wait_sent(GROUP, count=2))[-1]
    assert "我们下周三开会讨论预算" in chinese.text

    telegram.push_text(GROUP, bob, "/find the", chat_type="supergroup")
    first = (await telegram.wait_sent(GROUP, count=3))[-1]
    ids = [int(LINK.match(u).group(3)) for u in links(first)]  # type: ignore[union-attr]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)  # newest first
    [[older]] = first.reply_markup["inline_keyboard"]
    assert older["text"] == texts.FIND_OLDER
    telegram.push_callback(GROUP, bob, first.message_id, older["callback_data"])
    await telegram.wait_for(lambda: telegram.message(GROUP, first.message_id).edits, 10, what="page 2")
    page_two = telegram.message(GROUP, first.message_id)
    assert page_two.edits[-1] != first.text
    assert [b["text"] for b in page_two.reply_markup["inline_keyboard"][0]] == [texts.FIND_NEWER, texts.FIND_OLDER]

    telegram.push_text(GROUP, bob, "/find zebra", chat_type="supergroup")
    assert (await telegram.wait_sent(GROUP, count=4))[-1].text == texts.found_nothing("zebra")


def send_export(telegram: FakeTelegram, chat: int, user: dict, data: bytes, *, name: str, caption: str) -> int:
    file_id, unique = telegram.add_file(data, kind="document", mime_type="application/json", file_name=name)
    document = {"file_id": file_id, "file_unique_id": unique, "file_size": len(data), "file_name": name,
                "mime_type": "application/zip" if name.endswith(".zip") else "application/json"}  # fmt: skip
    fields: dict = {"document": document, "caption": caption}
    if caption.startswith("/"):
        fields["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}]
    return telegram.push_message(chat, user, fields, chat_type="private" if chat > 0 else "supergroup")


def export_of(bare_id: int, count: int, **kw: object) -> ExportBuilder:
    return realistic_export(count=count, bare_id=bare_id, start=time.time() - 20 * 86400, **kw)  # type: ignore[arg-type]


async def test_an_admin_imports_history_and_summary_and_find_cover_it(
    bot: RunningBot, telegram: FakeTelegram, tmp_path: Path
) -> None:
    anna, bob = telegram.user(ANN, "Anna"), telegram.user(BOB, "Bob")
    db = bot.settings.operations.db_path
    export = export_of(1987654321, 300)
    data = export.write(tmp_path / "result.json").read_bytes()
    written = {m["id"] for m in export.messages if m["type"] == "message" and m["id"] > 0}

    send_export(telegram, GROUP, bob, data, name="result.json", caption="/import")  # not an admin
    assert (await telegram.wait_sent(GROUP))[-1].text == texts.IMPORT_ADMINS_ONLY
    send_export(telegram, GROUP, anna, data, name="result.json", caption="/import")
    sent = await telegram.wait_sent(GROUP, count=3, timeout=30)
    status, done = sent[1], sent[2]
    assert status.text == texts.importing(0, None)
    assert done.text.startswith(f"Imported {len(written)} messages of “Garden club”")
    log = logged(db, GROUP)
    assert set(log) == written
    threads = {row[1] for row in log.values()}
    assert threads == {None}

    shared = send_export(telegram, GROUP, bob, data, name="result.json", caption="the export")  # the same again,
    telegram.push_text(GROUP, anna, "/import", chat_type="supergroup", reply_to=shared)  # by a reply to it
    again = (await telegram.wait_sent(GROUP, count=5, timeout=30))[-1]
    assert again.text.startswith("Imported 0 messages") and f"{len(written)} were already in my log" in again.text
    assert len(logged(db, GROUP)) == len(written)

    other = export_of(1122334455, 10, name="Another group").write(tmp_path / "other.json").read_bytes()
    send_export(telegram, GROUP, anna, other, name="result.json", caption="/import")
    assert (await telegram.wait_sent(GROUP, count=7))[-1].text == texts.import_wrong_chat("Another group")

    telegram.push_text(GROUP, bob, "/find 预算", chat_type="supergroup")
    found = (await telegram.wait_sent(GROUP, count=8))[-1]
    assert "我们下周三开会讨论预算" in found.text
    telegram.push_text(GROUP, bob, "/summary month", chat_type="supergroup")
    sent = await telegram.wait_sent(GROUP, count=11, timeout=30)
    assert sent[-2].caption.startswith(f"Summary of {len(written)} messages")


async def test_an_admin_imports_a_zipped_forum_export_in_private(
    bot: RunningBot, telegram: FakeTelegram, tmp_path: Path
) -> None:
    anna = telegram.user(ANN, "Anna")
    telegram.set_member_status(FORUM, ANN, "creator")
    export = export_of(1555000111, 200, forum=True, name="Garden forum")
    data = export.zip(tmp_path / "export.zip").read_bytes()
    send_export(telegram, ANN, anna, data, name="ChatExport_2026-11-20.zip", caption=f"/import {FORUM}")
    done = (await telegram.wait_sent(ANN, count=2, timeout=30))[-1]
    assert done.text.startswith("Imported 202 messages of “Garden forum”")
    log = logged(bot.settings.operations.db_path, FORUM)
    assert {message_id: row[1] for message_id, row in log.items()} == export.topic_of | {
        m["id"]: None for m in export.messages[-3:] if m["type"] == "message"
    }
    html = io.BytesIO()
    with zipfile.ZipFile(html, "w") as archive:
        archive.writestr("ChatExport_2026-11-20/messages.html", "<!DOCTYPE html><html></html>")
    send_export(telegram, ANN, anna, html.getvalue(), name="export.zip", caption=f"/import {FORUM}")
    refused = (await telegram.wait_sent(ANN, count=4, timeout=30))[-1]
    assert "Machine-readable JSON" in refused.text


async def test_import_refusals_and_reports_are_in_the_readers_language(
    bot: RunningBot, telegram: FakeTelegram, tmp_path: Path
) -> None:
    anna = telegram.user(ANN, "Anna", language_code="de")
    telegram.set_member_status(FORUM, ANN, "creator")
    html = io.BytesIO()
    with zipfile.ZipFile(html, "w") as archive:
        archive.writestr("ChatExport_2026-11-20/messages.html", "<!DOCTYPE html><html></html>")
    send_export(telegram, ANN, anna, html.getvalue(), name="export.zip", caption=f"/import {FORUM}")
    refused = (await telegram.wait_sent(ANN, count=2, timeout=30))[-1]
    assert refused.text == (
        "Dieser Export ist im HTML-Format. Exportiere den Chat noch einmal mit dem Format „Maschinenlesbares JSON“ "
        "und schick mir result.json (oder eine .zip des Exportordners)."
    )
    export = export_of(1555000111, 20, forum=True, name="Garden forum")
    send_export(telegram, ANN, anna, export.write(tmp_path / "result.json").read_bytes(), name="result.json",
                caption=f"/import {FORUM}")  # fmt: skip
    done = (await telegram.wait_sent(ANN, count=4, timeout=30))[-1]
    rows = logged(bot.settings.operations.db_path, FORUM)
    added = len(rows)
    zone = ZoneInfo(bot.settings.groups.timezone)
    sent = [row[3] for row in rows.values()]  # the logged messages: an export's service entries are not logged
    first, last = datetime.fromtimestamp(min(sent), zone), datetime.fromtimestamp(max(sent), zone)
    with using("de"):
        days = formats.full_date(first.date()), formats.full_date(last.date())
        assert done.text == texts.imported("Garden forum", added, 0, 0, *days)
    assert done.text.startswith(f"{added} Nachrichten aus „Garden forum“ vom {days[0]} bis {days[1]} importiert.")


async def test_weekly_digest_is_scheduled_and_shown(bot: RunningBot, telegram: FakeTelegram) -> None:
    anna, bob = telegram.user(ANN, "Anna"), telegram.user(BOB, "Bob")
    telegram.push_text(GROUP, bob, "/digest", chat_type="supergroup")
    assert (await telegram.wait_sent(GROUP))[-1].text == texts.digest_schedule(None)
    telegram.push_text(GROUP, anna, "/digest weekly mon 09:00 Europe/Berlin", chat_type="supergroup")
    done = (await telegram.wait_sent(GROUP, count=2))[-1]
    assert done.text == texts.digest_set("every Monday at 9:00\u202fAM (Europe/Berlin)")
    assert bot.app is not None and bot.app.job_queue is not None
    [job] = bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
    assert job.next_t is not None and job.next_t.astimezone(ZoneInfo("Europe/Berlin")).weekday() == 0
    assert job.data == "week"
    telegram.push_text(GROUP, bob, "/digest", chat_type="supergroup")
    assert (await telegram.wait_sent(GROUP, count=3))[-1].text == texts.digest_schedule(
        "every Monday at 9:00\u202fAM (Europe/Berlin)"
    )


async def test_group_memory_on_postgresql(
    telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel, tmp_path: Path, postgres_url: str
) -> None:
    """Import, search, summary and a question about it with the log in PostgreSQL (DATABASE_URL)."""
    telegram.add_chat(GROUP, chat_type="supergroup", title="Garden club")
    telegram.set_member_status(GROUP, ANN, "administrator")
    env = lab_env(telegram, openai_api, tmp_path / "unused.db", DATABASE_URL=postgres_url, PARLEY_ALLOWED=str(GROUP))
    anna, bob = telegram.user(ANN, "Anna"), telegram.user(BOB, "Bob")
    export = export_of(1987654321, 120)
    async with running_bot(env) as running:
        send_export(telegram, GROUP, anna, export.write(tmp_path / "result.json").read_bytes(), name="result.json",
                    caption="/import")  # fmt: skip
        done = (await telegram.wait_sent(GROUP, count=2, timeout=30))[-1]
        assert done.text.startswith("Imported 122 messages")
        assert len(await running.services.storage.groups.since(GROUP, 0.0)) == 122
        telegram.push_text(GROUP, bob, "/find CAFE", chat_type="supergroup")
        found = (await telegram.wait_sent(GROUP, count=3))[-1]
        assert "Le café est fermé" in found.text
        telegram.push_text(GROUP, bob, "/find 会議", chat_type="supergroup")
        assert "明日の会議は十時からです" in (await telegram.wait_sent(GROUP, count=4))[-1].text
        telegram.push_text(GROUP, bob, "/summary month", chat_type="supergroup")
        written = (await telegram.wait_sent(GROUP, count=7, timeout=30))[-1]
        assert links(written)
        groups = running.services.storage.groups
        for _ in range(100):  # the summary's span is remembered just after it is sent
            if await groups.summary_span(GROUP, written.message_id):
                break
            await asyncio.sleep(0.05)
        telegram.push_text(GROUP, bob, "And the budget?", chat_type="supergroup", reply_to=written.message_id)
        answer = (await telegram.wait_sent(GROUP, count=10, timeout=30))[-2]
        assert answer.kind == "voice" and "budget" in answer.caption.casefold()


async def test_without_a_voice_the_summary_still_arrives_in_writing(
    telegram: FakeTelegram, openai_api: FakeOpenAI, citing: CitingModel, tmp_path: Path
) -> None:
    """A basic group (no t.me/c links) that refuses voice messages: the header and the points as text."""
    basic = -4455667
    telegram.add_chat(basic, chat_type="group", title="Old group")
    telegram.forbid_voice(basic)
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=str(basic))
    async with running_bot(env):
        for user in people(telegram):
            telegram.push_text(basic, user, f"{user['first_name']} thinks the budget is fine", chat_type="group")
        telegram.push_text(basic, telegram.user(ANN, "Anna"), "/summary", chat_type="group")
        written = (await telegram.wait_sent(basic, count=2, timeout=30))[-1]
    assert written.kind == "text" and written.text.startswith("Summary of 4 messages from 4 people")
    assert "• 陈伟 said: 陈伟 thinks the budget is fine — 陈伟 [1]" in written.text
    assert [e["type"] for e in written.entities] == ["expandable_blockquote"]  # no links in a basic group


def test_found_messages_are_dated_and_named_the_readers_way() -> None:
    """/find's lines: the day and time as the reader writes them, and a photo called a photo in their language."""
    sent = datetime(2026, 12, 3, 18, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    photo = GroupMessage(GROUP, 77, None, BOB, "Bob", "photo", None, None, None, None, sent.timestamp())
    with using("de"):
        page = find.page_html(GROUP, "x", [photo], 0, ZoneInfo("Europe/Berlin"))
    assert page.endswith(f"<b>Bob</b>, <a href=\"https://t.me/c/{str(GROUP)[4:]}/77\">3. Dez., 18:00</a>\n[Foto]")
    with using("en"):
        assert texts.message_kind("video_note") == "video message" and texts.message_kind("dice") == "dice"
