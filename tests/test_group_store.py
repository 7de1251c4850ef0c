"""The group log's search, imports, summary spans and digests, on both engines: a real SQLite file (FTS5) and a
real PostgreSQL (a tsvector and its GIN index)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.memory import message_link
from parley.actions import Toolbox, ToolCall, load
from parley.actions.scope import CallerScope
from storage import Storage
from storage.groups import UNNAMED, Digest, GroupMessage
from storage.migrations import MIGRATIONS, migrate
from storage.sqlite import SqliteDatabase

GROUP, OTHER = -1001987654321, -1001000000002


def said(message_id: int, text: str | None, *, at: float | None = None, user: int = 5, chat: int = GROUP,
         kind: str = "text") -> GroupMessage:  # fmt: skip
    return GroupMessage(chat, message_id, None, user, f"user {user}", kind, text, None, None, None,
                        at if at is not None else 1000.0 + message_id)  # fmt: skip


@pytest.fixture
async def storage(database_target: Path | str) -> AsyncIterator[Storage]:
    store = await Storage.open(database_target)
    yield store
    await store.close()


async def test_find_folds_case_and_accents_and_reads_cjk(storage: Storage) -> None:
    groups = storage.groups
    for message in [
        said(1, "Le café est fermé à cause de la grève"),
        said(2, "我们下周三开会讨论预算。"),
        said(3, "明日の会議は十時からです。"),
        said(4, "the CAFE on the corner"),
        said(5, "café talk elsewhere", chat=OTHER),
        said(6, None, kind="voice"),
    ]:
        assert await groups.record(message)
    found, more = await groups.find(GROUP, "Café", limit=10)
    assert [m.message_id for m in found] == [4, 1] and not more  # newest first, this group only
    assert [m.message_id for m in (await groups.find(GROUP, "预算", limit=10))[0]] == [2]
    assert [m.message_id for m in (await groups.find(GROUP, "会議 十時", limit=10))[0]] == [3]
    assert (await groups.find(GROUP, "算预", limit=10))[0] == []
    assert (await groups.find(GROUP, "...", limit=10)) == ([], False)


async def test_find_pages_and_follows_edits_and_transcripts(storage: Storage) -> None:
    groups = storage.groups
    for i in range(1, 13):
        await groups.record(said(i, f"budget line {i}"))
    page, more = await groups.find(GROUP, "budget", limit=5)
    assert [m.message_id for m in page] == [12, 11, 10, 9, 8] and more
    page, more = await groups.find(GROUP, "budget", limit=5, offset=10)
    assert [m.message_id for m in page] == [2, 1] and not more
    await groups.edit(GROUP, 12, "the venue is booked")
    assert [m.message_id for m in (await groups.find(GROUP, "venue", limit=5))[0]] == [12]
    assert 12 not in [m.message_id for m in (await groups.find(GROUP, "budget", limit=20))[0]]
    await groups.record(said(20, None, kind="voice"))
    await groups.set_transcript(GROUP, 20, "we meet at the library", ok=True)
    assert [m.message_id for m in (await groups.find(GROUP, "library", limit=5))[0]] == [20]


async def test_an_import_keeps_each_id_once_and_live_messages_win(storage: Storage) -> None:
    groups = storage.groups
    await groups.record(said(2, "as seen live"))
    batch = [said(i, f"imported {i}") for i in range(1, 6)]
    assert await groups.record_many(batch) == 4
    assert await groups.record_many(batch) == 0
    texts = {m.message_id: m.text for m in await groups.since(GROUP, 0)}
    assert texts == {1: "imported 1", 2: "as seen live", 3: "imported 3", 4: "imported 4", 5: "imported 5"}
    assert [m.message_id for m in (await groups.find(GROUP, "imported", limit=10))[0]] == [5, 4, 3, 1]


async def test_spans_neighbours_and_summary_memory(storage: Storage) -> None:
    groups = storage.groups
    await groups.record_many([said(i, f"m{i}", at=100.0 * i) for i in range(1, 11)])
    assert [m.message_id for m in await groups.between(GROUP, 300.0, 600.0)] == [3, 4, 5]
    assert [m.message_id for m in await groups.around(GROUP, 5, 2, 3)] == [3, 4, 5, 6, 7, 8]
    assert await groups.around(GROUP, 99, 2, 2) == []
    await groups.remember_summary(GROUP, [70, 71], 300.0, 500.0)
    span = await groups.summary_span(GROUP, 71)
    assert span is not None and (span.first_at, span.last_at) == (300.0, 500.0)
    assert await groups.summary_span(OTHER, 71) is None
    await groups.prune(before=600.0)  # retention: the messages and the summaries over them go
    assert await groups.summary_span(GROUP, 70) is None
    assert [m.message_id for m in (await groups.find(GROUP, "m7", limit=5))[0]] == [7]


async def test_digest_schedules(storage: Storage) -> None:
    groups = storage.groups
    assert await groups.digest(GROUP) is None
    await groups.set_digest(GROUP, "09:00", "Europe/Berlin", 0)
    await groups.set_digest(OTHER, "18:30", "UTC")
    assert await groups.digest(GROUP) == Digest(GROUP, "09:00", "Europe/Berlin", 0)
    assert sorted(await groups.digests(), key=lambda d: d.chat_id) == [
        Digest(GROUP, "09:00", "Europe/Berlin", 0),
        Digest(OTHER, "18:30", "UTC", None),
    ]
    await groups.set_digest(GROUP, None, None)
    assert await groups.digest(GROUP) is None


async def test_forgetting_someone_takes_their_words_out_of_search(storage: Storage) -> None:
    groups = storage.groups
    await groups.record(said(1, "my secret is pineapple", user=7))
    await groups.record(said(2, "pineapple pizza is fine", user=8))
    await storage.privacy.forget_user(7, forgotten_key=-7)
    assert [m.message_id for m in (await groups.find(GROUP, "pineapple", limit=5))[0]] == [2]
    assert (await groups.find(GROUP, "secret", limit=5))[0] == []


async def test_forgetting_someone_unnames_the_forwards_of_their_messages(storage: Storage) -> None:
    """Another member's forward of their message stays (it is the forwarder's) but says no longer whose."""
    groups = storage.groups
    forward = replace(said(1, "the venue is booked", user=8), forwarded_from="Zeb Quux", forwarded_from_id=7)
    other = replace(said(2, "bring snacks", user=8), forwarded_from="Dan", forwarded_from_id=9)
    await groups.record(forward)
    await groups.record(other)
    await storage.privacy.forget_user(7, forgotten_key=-7)
    assert await groups.last(GROUP, 5) == [replace(forward, forwarded_from=UNNAMED, forwarded_from_id=None), other]


async def test_an_older_log_becomes_searchable_on_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = await SqliteDatabase.open(path)
    try:
        before = [m for m in MIGRATIONS if m.__name__ < "m010_group_memory"]
        await migrate(db, before)
        async with db.transaction() as tx:
            await tx.execute(
                """INSERT INTO group_messages (chat_id, message_id, user_id, author, kind, text, sent_at)
                   VALUES (?, 1, 5, 'Zoë', 'text', 'Rendez-vous au café', 100)""",
                (GROUP,),
            )
    finally:
        await db.close()
    store = await Storage.open(path)
    try:
        assert [m.message_id for m in (await store.groups.find(GROUP, "cafe", limit=5))[0]] == [1]
        await store.groups.record(said(2, "another café"))  # the triggers index what comes after
        assert [m.message_id for m in (await store.groups.find(GROUP, "cafe", limit=5))[0]] == [2, 1]
    finally:
        await store.close()


async def test_the_models_group_memory_tools_read_this_log(storage: Storage) -> None:
    """The built-in search_group_log/read_group_log tools, run by the Toolbox over the caller's scope."""
    await storage.groups.record_many(
        [
            said(i, text, at=100.0 * i)
            for i, text in enumerate(["hello", "the budget is 1,200 €", "ok", "Budget: approved"], 1)
        ]
    )
    await storage.groups.record(said(9, "budget elsewhere", chat=OTHER))
    box = Toolbox(load(["group_memory"]))
    scope = CallerScope(storage, is_admin=lambda _user: False, link=message_link, now=lambda: 1000.0)
    where = await scope.context(chat_id=GROUP, user_id=5)
    found = json.loads((await box.run(ToolCall("c1", "search_group_log", '{"query": "budget"}'), where)).content)
    assert [(m["message_id"], m["link"]) for m in found["matches"]] == [
        (4, "https://t.me/c/1987654321/4"),
        (2, "https://t.me/c/1987654321/2"),
    ]
    around = json.loads(
        (await box.run(ToolCall("c2", "read_group_log", '{"message_id": 2, "before": 1, "after": 1}'), where)).content
    )
    assert [m["text"] for m in around["messages"]] == ["hello", "the budget is 1,200 €", "ok"]
