"""Storage against real databases: every engine-independent test runs on a SQLite file and on a real
PostgreSQL (the `database_target` fixture); the file-level guarantees of SQLite are tested on SQLite."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage import NewTurn, Preferences, Storage, Usage
from storage.connection import Database
from storage.groups import GroupMessage
from storage.migrations import MIGRATIONS, migrate
from storage.postgres import PostgresDatabase, is_postgres_url
from storage.sqlite import SqliteDatabase
from storage.usage import LedgerEntry

CONSTRAINT_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)


@pytest.fixture
async def storage(database_target: Path | str) -> AsyncIterator[Storage]:
    store = await Storage.open(database_target)
    yield store
    await store.close()


async def _database(target: Path | str) -> Database:
    return await PostgresDatabase.open(target) if is_postgres_url(target) else await SqliteDatabase.open(target)


async def _migrations(target: Path | str) -> list[str]:
    db = await _database(target)
    try:
        return [row[0] for row in await db.fetch_all("SELECT name FROM _migrations ORDER BY name")]
    finally:
        await db.close()


async def test_migrates_an_empty_database_and_is_idempotent(database_target: Path | str) -> None:
    store = await Storage.open(database_target)
    await store.close()
    store = await Storage.open(database_target)  # a second start applies nothing twice
    await store.close()
    assert await _migrations(database_target) == [m.__name__ for m in MIGRATIONS]


async def test_several_processes_starting_at_once_migrate_once(database_target: Path | str) -> None:
    """Four starters race on an empty database: each migration runs once, and every starter comes up."""
    stores = await asyncio.gather(*(Storage.open(database_target) for _ in range(4)))
    try:
        assert [await s.turns.count(1) for s in stores] == [0, 0, 0, 0]
    finally:
        for store in stores:
            await store.close()
    assert await _migrations(database_target) == [m.__name__ for m in MIGRATIONS]


async def test_starters_racing_on_new_sqlite_files_all_come_up(tmp_path: Path) -> None:
    """The switch to WAL is where starters on a new file collide (SQLite answers "locked" without waiting
    while another connection is midway through it): raced on many new files, every starter still comes up."""
    for round_ in range(40):
        path = tmp_path / f"new-{round_}.db"
        stores = await asyncio.gather(*(Storage.open(path) for _ in range(4)), return_exceptions=True)
        for store in stores:
            if isinstance(store, Storage):
                await store.close()
        assert [type(s).__name__ for s in stores if not isinstance(s, Storage)] == [], f"round {round_}"


async def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    store = await Storage.open(tmp_path / "fresh.db")
    await store.close()
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"users", "conversations", "turns"} <= tables


@pytest.mark.parametrize("released", range(1, len(MIGRATIONS)), ids=lambda n: f"from-{MIGRATIONS[n - 1].__name__}")
async def test_migrates_forward_from_every_earlier_version(database_target: Path | str, released: int) -> None:
    """A database last touched by an older Parley is brought forward in place, its data intact."""
    db = await _database(database_target)
    try:
        await migrate(db, MIGRATIONS[:released])
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO users (user_id, voice, created_at, last_seen_at) VALUES (5, 'coral', 0, 0)")
            await tx.execute("INSERT INTO conversations (chat_id, user_id, started_at) VALUES (5, 5, 0)")
            await tx.execute(
                "INSERT INTO turns (conversation_id, chat_id, user_id, role, kind, text, created_at)"
                " SELECT id, 5, 5, 'user', 'text', 'kept across upgrades', 0 FROM conversations"
            )
    finally:
        await db.close()
    store = await Storage.open(database_target)
    try:
        assert (await store.users.preferences(5)).voice == "coral"
        assert [t.text for t in await store.turns.recent(5, 5, 10)] == ["kept across upgrades"]
        assert await store.jobs.add(chat_id=5, source="message:1", kind="converse", payload={}) is not None
    finally:
        await store.close()
    assert await _migrations(database_target) == [m.__name__ for m in MIGRATIONS]


async def test_database_file_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "private.db"
    store = await Storage.open(path)
    await store.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_turns_are_kept_per_chat_and_user_in_order(storage: Storage) -> None:
    usage = Usage(model="gpt-audio", prompt_tokens=10, completion_tokens=20, completion_audio_tokens=15)
    await storage.turns.add(
        [
            NewTurn(chat_id=1, user_id=1, role="user", kind="voice", text="hello", audio_seconds=2.0),
            NewTurn(chat_id=1, user_id=1, role="assistant", kind="voice", text="hi there", usage=usage),
        ]
    )
    await storage.turns.add([NewTurn(chat_id=2, user_id=2, role="user", kind="text", text="other person")])
    turns = await storage.turns.recent(1, 1, limit=10)
    assert [(t.role, t.text) for t in turns] == [("user", "hello"), ("assistant", "hi there")]
    assert [t.text for t in await storage.turns.recent(2, 2, limit=10)] == ["other person"]
    assert [t.text for t in await storage.turns.recent(1, 1, limit=1)] == ["hi there"]


async def test_telegram_sized_ids_and_exact_times_survive(storage: Storage) -> None:
    """Supergroup ids need 64 bits, and times keep sub-second precision (PostgreSQL's REAL would not)."""
    chat = -1001234567890123
    [turn_id] = await storage.turns.add([NewTurn(chat_id=chat, user_id=2**40, role="user", kind="text", text="x")])
    [turn] = await storage.turns.recent(chat, 2**40, limit=1)
    assert turn.id == turn_id
    state = await storage.turns.state(chat, 2**40)
    assert state.last_turn_at == turn.created_at and turn.created_at % 1 != 0


async def test_a_replaced_attempt_leaves_only_the_new_turns(storage: Storage) -> None:
    first = [NewTurn(chat_id=1, user_id=1, role="user", kind="voice", text="...", message_id=7)]
    await storage.turns.add(first)
    await storage.turns.add(
        [*first, NewTurn(chat_id=1, user_id=1, role="assistant", kind="voice", text="answer", message_id=7)],
        replacing_message=7,
    )
    assert [t.text for t in await storage.turns.recent(1, 1, 10)] == ["...", "answer"]


async def test_reset_starts_a_new_conversation_but_keeps_the_old_turns(storage: Storage) -> None:
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="before")])
    assert await storage.turns.reset(1, 1) is True
    assert await storage.turns.reset(1, 1) is False  # nothing open any more
    assert await storage.turns.recent(1, 1, limit=10) == []
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="after")])
    assert [t.text for t in await storage.turns.recent(1, 1, limit=10)] == ["after"]
    assert await storage.turns.count(1) == 2


async def test_a_summary_covers_turns_up_to_its_mark(storage: Storage) -> None:
    ids = await storage.turns.add(
        [NewTurn(chat_id=1, user_id=1, role="user", kind="text", text=f"t{i}") for i in range(4)]
    )
    conversation = (await storage.turns.state(1, 1)).conversation_id
    assert conversation is not None
    await storage.turns.set_summary(conversation, "the gist", ids[1])
    await storage.turns.set_summary(conversation, "the gist, later", ids[2])
    state = await storage.turns.state(1, 1)
    assert (state.summary, state.through_turn_id) == ("the gist, later", ids[2])
    assert [t.text for t in await storage.turns.after(conversation, state.through_turn_id, 10)] == ["t3"]


async def test_preferences_are_one_record_updated_field_by_field(storage: Storage) -> None:
    assert await storage.users.preferences(1) == Preferences()
    await storage.users.update_preferences(1, voice="coral")
    await storage.users.update_preferences(1, reply_mode="text", model="gpt-audio-mini")
    await storage.users.touch(1, first_name="Ann", username="ann", language_code="en")  # keeps the choices
    assert await storage.users.preferences(1) == Preferences(voice="coral", model="gpt-audio-mini", reply_mode="text")
    with pytest.raises(ValueError):
        await storage.users.update_preferences(1, colour="red")


async def test_jobs_are_accepted_once_and_move_through_their_states(storage: Storage) -> None:
    job = await storage.jobs.add(chat_id=-100, source="message:1", kind="converse", payload={"text": "hi"})
    assert job is not None
    assert await storage.jobs.add(chat_id=-100, source="message:1", kind="converse", payload={}) is None
    started = await storage.jobs.start(job)
    assert started is not None and (started.state, started.attempts, started.payload) == ("working", 1, {"text": "hi"})
    await storage.jobs.mark_replied(job)
    await storage.jobs.finish(job, ok=False, error="boom")
    assert await storage.jobs.start(job) is None  # a failed job waits for Retry
    again = await storage.jobs.requeue(job, -100)
    assert again is not None and (again.state, again.replied, again.error) == ("queued", False, None)
    assert await storage.jobs.requeue(job, -100) is None
    await storage.jobs.finish(job, ok=True)
    finished = await storage.jobs.get(job)
    assert finished is not None and (finished.state, finished.payload) == ("done", {})
    assert await storage.jobs.counts() == {"done": 1}


async def test_group_log_usage_access_and_cache(storage: Storage) -> None:
    message = GroupMessage(-100, 10, None, 1, "Ann", "text", "hello", None, None, None, 1000.0)
    assert await storage.groups.record(message) is True
    assert await storage.groups.record(message) is False  # redelivered
    assert await storage.groups.edit(-100, 10, "hello, edited") is True
    await storage.groups.set_last_summarized(-100, 10)
    await storage.groups.set_last_summarized(-100, 5)  # never goes back
    assert await storage.groups.last_summarized(-100) == 10
    await storage.groups.set_digest(-100, "08:00", "Europe/Paris")
    assert [(d.chat_id, d.time, d.timezone) for d in await storage.groups.digests()] == [
        (-100, "08:00", "Europe/Paris")
    ]
    assert [m.text for m in await storage.groups.since(-100, 0.0)] == ["hello, edited"]

    usage = Usage(model="gpt-audio", prompt_tokens=100, completion_tokens=50, prompt_audio_tokens=40)
    await storage.usage.record(LedgerEntry(1, 1, "reply", usage, 0.25), now=1000.0)
    await storage.usage.record(LedgerEntry(1, -100, "summary", usage, 0.5), now=1900.5)
    assert await storage.usage.spent(0.0, user_id=1) == pytest.approx(0.75)
    [totals] = await storage.usage.by_model()
    assert (totals.calls, totals.text_in, totals.audio_in, totals.text_out, totals.cost_usd) == (2, 120, 80, 100, 0.75)
    assert await storage.usage.cost_by_quarter_hour(since=0.0) == [(900.0, 0.25), (1800.0, 0.5)]
    [top] = await storage.usage.top_users(since=0.0)
    assert (top.user_id, top.calls, top.cost_usd) == (1, 2, 0.75)

    await storage.access.set("@ann", allowed=True, changed_by=1)
    await storage.access.set("@ann", allowed=False, changed_by=1)
    assert await storage.access.overrides() == {"@ann": False}
    assert await storage.access.note_refusal(9, quiet_seconds=60, now=0.0) is True
    assert await storage.access.note_refusal(9, quiet_seconds=60, now=30.0) is False
    await storage.cache.put("k", "v1", user_id=1)
    await storage.cache.put("k", "v2", user_id=1)
    assert await storage.cache.get("k") == "v2"


async def test_forget_deletes_everything_about_the_user_only(storage: Storage) -> None:
    await storage.users.touch(1, first_name="Ann", username="ann", language_code="en")
    await storage.users.update_preferences(1, voice="coral")
    await storage.users.update_preferences(2, voice="sage")
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="secret")])
    await storage.turns.add([NewTurn(chat_id=2, user_id=2, role="user", kind="text", text="kept")])
    await storage.usage.record(LedgerEntry(1, 1, "reply", Usage(model="m", prompt_tokens=1), 1.0))
    report = await storage.privacy.forget_user(1, forgotten_key=-1)
    assert (report.turns, report.conversations, report.user_rows) == (1, 1, 1)
    assert await storage.turns.count(1) == 0
    assert (await storage.users.preferences(1)).voice is None
    assert (await storage.users.preferences(2)).voice == "sage"
    assert await storage.turns.count(2) == 1
    assert await storage.usage.rows_of(1) == 0
    assert await storage.usage.spent(0.0) == pytest.approx(1.0)  # the amount stays, under a pseudonym
    assert await storage.usage.spent(0.0, user_id=1, forgotten_key=-1) == pytest.approx(1.0)  # still counted
    assert (await storage.privacy.export_user(1))["conversations"] == []
    assert await storage.db.fetch_all("SELECT id FROM turns WHERE text = 'secret'") == []


async def test_concurrent_writers_do_not_interleave_transactions(storage: Storage) -> None:
    async def write(user: int) -> None:
        for i in range(20):
            await storage.turns.add(
                [
                    NewTurn(chat_id=user, user_id=user, role="user", kind="text", text=f"q{i}"),
                    NewTurn(chat_id=user, user_id=user, role="assistant", kind="text", text=f"a{i}"),
                ]
            )

    await asyncio.gather(*(write(user) for user in range(1, 11)))
    for user in range(1, 11):
        turns = await storage.turns.recent(user, user, limit=100)
        assert [t.text for t in turns] == [x for i in range(20) for x in (f"q{i}", f"a{i}")]


async def test_a_failed_transaction_leaves_nothing_behind(storage: Storage) -> None:
    with pytest.raises(CONSTRAINT_ERRORS):
        await storage.turns.add(
            [
                NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="first"),
                NewTurn(chat_id=1, user_id=1, role="narrator", kind="text", text="violates the CHECK"),
            ]
        )
    assert await storage.turns.count(1) == 0


async def test_forgotten_words_survive_in_no_file(tmp_path: Path) -> None:
    """Deleted rows must not linger in free pages or the write-ahead log."""
    store = await Storage.open(tmp_path / "parley.db")
    try:
        await store.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="my-secret-phrase " * 20)])
        await store.turns.add([NewTurn(chat_id=2, user_id=2, role="user", kind="text", text="someone else")])
        await store.privacy.forget_user(1, forgotten_key=-1)
        assert b"my-secret-phrase" not in _database_files(tmp_path)
        assert await store.turns.count(2) == 1
    finally:
        await store.close()


def _database_files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("parley.db"))


async def test_refusals_arriving_together_tell_the_person_once(storage: Storage) -> None:
    told = await asyncio.gather(*(storage.access.note_refusal(5, quiet_seconds=60, now=100.0) for _ in range(8)))
    assert sorted(told) == [False] * 7 + [True]
    assert await storage.access.note_refusal(5, quiet_seconds=60, now=159.0) is False
    assert await storage.access.note_refusal(5, quiet_seconds=60, now=160.0) is True
    [(refused,)] = await storage.db.fetch_all("SELECT refused FROM refusals WHERE user_id = 5")
    assert refused == 10


async def test_personas_are_kept_for_people_and_groups(storage: Storage) -> None:
    """A person's persona and own instructions live in their one preferences record; a group's beside its
    language, where choosing a built-in one keeps the group's own instructions for later."""
    await storage.users.update_preferences(1, persona="custom", persona_text="Answer like a pirate.")
    await storage.users.update_preferences(1, persona="storyteller")
    chosen = await storage.users.preferences(1)
    assert (chosen.persona, chosen.persona_text) == ("storyteller", "Answer like a pirate.")

    assert await storage.groups.persona(-100) == (None, None)
    await storage.groups.set_language(-100, "de")
    await storage.groups.set_persona(-100, "custom", "Keep it short.")
    await storage.groups.set_persona(-100, "coach")
    assert await storage.groups.persona(-100) == ("coach", "Keep it short.")
    assert await storage.groups.language(-100) == "de"
