"""Storage shared by several processes, on both engines: each update taken in once, one open conversation
per (chat, user, topic) however many processes open it at once. A second `Storage` on the same database
stands in for a second process (its own connection or pool)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import NewTurn, Storage
from storage.migrations import MIGRATIONS, migrate
from storage.postgres import PostgresDatabase, is_postgres_url
from storage.sqlite import SqliteDatabase
from storage.updates import KEEP_SECONDS, PRUNE_EVERY


@pytest.fixture
async def two(database_target: Path | str) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two processes' views of one database."""
    first = await Storage.open(database_target)
    second = await Storage.open(database_target)
    yield first, second
    await first.close()
    await second.close()


async def test_an_update_posted_to_two_processes_at_once_is_taken_in_once(two: tuple[Storage, Storage]) -> None:
    first, second = two
    taken = await asyncio.gather(*(store.updates.record(7001) for store in (first, second) for _ in range(4)))
    assert sorted(taken) == [False] * 7 + [True]
    assert await second.updates.record(7002) is True
    assert await first.updates.record(7002) is False


async def test_update_ids_older_than_telegram_could_resend_are_pruned(two: tuple[Storage, Storage]) -> None:
    store, _ = two
    assert await store.updates.record(PRUNE_EVERY + 1, now=1000.0)
    assert await store.updates.record(PRUNE_EVERY + 2, now=1000.0 + KEEP_SECONDS - 10)
    assert await store.updates.record(2 * PRUNE_EVERY, now=1001.0 + KEEP_SECONDS)  # prunes the oldest
    assert [row[0] for row in await store.db.fetch_all("SELECT update_id FROM updates ORDER BY update_id")] == [
        PRUNE_EVERY + 2,
        2 * PRUNE_EVERY,
    ]


async def test_processes_opening_a_conversation_at_once_share_it(two: tuple[Storage, Storage]) -> None:
    first, second = two

    async def say(store: Storage, i: int) -> None:
        await store.turns.add([NewTurn(chat_id=9, user_id=9, role="user", kind="text", text=f"turn {i}")])

    await asyncio.gather(*(say(store, i) for i in range(6) for store in (first, second)))
    rows = await first.db.fetch_all("SELECT id FROM conversations WHERE chat_id = 9 AND ended_at IS NULL")
    assert len(rows) == 1
    assert len(await second.turns.recent(9, 9, 50)) == 12
    assert await first.turns.reset(9, 9)
    await say(second, 99)  # a new one opens after the reset
    assert [t.text for t in await first.turns.recent(9, 9, 50)] == ["turn 99"]


async def test_conversations_opened_twice_before_the_upgrade_leave_the_newest_open(database_target: Path | str) -> None:
    db = (
        await PostgresDatabase.open(database_target)
        if is_postgres_url(database_target)
        else await SqliteDatabase.open(database_target)
    )
    upgrade = next(i for i, m in enumerate(MIGRATIONS) if m.__name__ == "m011_several_processes")
    try:
        await migrate(db, MIGRATIONS[:upgrade])
        async with db.transaction() as tx:
            for _ in range(3):
                await tx.execute("INSERT INTO conversations (chat_id, user_id, started_at) VALUES (4, 4, 0)")
            await tx.execute("INSERT INTO conversations (chat_id, user_id, thread_id, started_at) VALUES (4, 4, 2, 0)")
    finally:
        await db.close()
    store = await Storage.open(database_target)
    try:
        open_ = await store.db.fetch_all("SELECT id, thread_id FROM conversations WHERE ended_at IS NULL ORDER BY id")
        assert open_ == [(3, 0), (4, 2)]
        await store.turns.add([NewTurn(chat_id=4, user_id=4, role="user", kind="text", text="after the upgrade")])
        assert (await store.turns.state(4, 4)).conversation_id == 3
    finally:
        await store.close()
