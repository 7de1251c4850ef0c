"""Storage against real SQLite files: migrations, turns, conversations, forgetting."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from storage import NewTurn, Storage, Usage
from storage.migrations import MIGRATIONS, migrate
from storage.sqlite import SqliteDatabase


@pytest.fixture
async def storage(tmp_path: Path):
    store = await Storage.open(tmp_path / "parley.db")
    yield store
    await store.close()


async def test_migrates_an_empty_database_and_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = await Storage.open(path)
    await store.close()
    store = await Storage.open(path)  # a second start applies nothing twice
    await store.close()
    with sqlite3.connect(path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM _migrations ORDER BY rowid")]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert names == [m.__name__ for m in MIGRATIONS]
    assert {"users", "conversations", "turns"} <= tables
    assert journal == "wal"


@pytest.mark.parametrize("released", range(1, len(MIGRATIONS)), ids=lambda n: f"from-{MIGRATIONS[n - 1].__name__}")
async def test_migrates_forward_from_every_earlier_version(tmp_path: Path, released: int) -> None:
    """A database last touched by an older Parley is brought forward in place, its data intact."""
    path = tmp_path / "old.db"
    db = await SqliteDatabase.open(path)
    try:
        await migrate(db, MIGRATIONS[:released])
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO users (user_id, voice, created_at, last_seen_at) VALUES (5, 'coral', 0, 0)")
            await tx.execute("INSERT INTO conversations (id, chat_id, user_id, started_at) VALUES (1, 5, 5, 0)")
            await tx.execute(
                "INSERT INTO turns (conversation_id, chat_id, user_id, role, kind, text, created_at)"
                " VALUES (1, 5, 5, 'user', 'text', 'kept across upgrades', 0)"
            )
    finally:
        await db.close()
    store = await Storage.open(path)
    try:
        assert (await store.users.preferences(5)).voice == "coral"
        assert [t.text for t in await store.turns.recent(5, 5, 10)] == ["kept across upgrades"]
        assert await store.jobs.add(chat_id=5, source="message:1", kind="converse", payload={}) is not None
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT name FROM _migrations ORDER BY rowid")] == [
            m.__name__ for m in MIGRATIONS
        ]


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


async def test_reset_starts_a_new_conversation_but_keeps_the_old_turns(storage: Storage) -> None:
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="before")])
    assert await storage.turns.reset(1, 1) is True
    assert await storage.turns.reset(1, 1) is False  # nothing open any more
    assert await storage.turns.recent(1, 1, limit=10) == []
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="after")])
    assert [t.text for t in await storage.turns.recent(1, 1, limit=10)] == ["after"]
    assert await storage.turns.count(1) == 2


async def test_forget_deletes_everything_about_the_user_only(storage: Storage) -> None:
    await storage.users.touch(1, first_name="Ann", username="ann", language_code="en")
    await storage.users.update_preferences(1, voice="coral")
    await storage.users.update_preferences(2, voice="sage")
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="secret")])
    await storage.turns.add([NewTurn(chat_id=2, user_id=2, role="user", kind="text", text="kept")])
    report = await storage.privacy.forget_user(1)
    assert (report.turns, report.conversations, report.user_rows) == (1, 1, 1)
    assert await storage.turns.count(1) == 0
    assert (await storage.users.preferences(1)).voice is None
    assert (await storage.users.preferences(2)).voice == "sage"
    assert await storage.turns.count(2) == 1
    with sqlite3.connect(storage.path) as db:
        assert db.execute("SELECT COUNT(*) FROM turns WHERE text = 'secret'").fetchone()[0] == 0


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
    with pytest.raises(sqlite3.IntegrityError):
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
        await store.privacy.forget_user(1)
        assert b"my-secret-phrase" not in _database_files(tmp_path)
        assert await store.turns.count(2) == 1
    finally:
        await store.close()


def _database_files(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("parley.db"))
