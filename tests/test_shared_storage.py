"""Storage shared by several processes, on both engines: each update taken in once, one open conversation
per (chat, user, topic) however many processes open it at once. A second `Storage` on the same database
stands in for a second process (its own connection or pool)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from storage import NewTurn, Storage
from storage.migrations import MIGRATIONS, migrate
from storage.postgres import PostgresDatabase, is_postgres_url
from storage.sqlite import SqliteDatabase
from storage.updates import KEEP_SECONDS, PRUNE_EVERY


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


# --- jobs taken with leases ------------------------------------------------------------------------------


async def _jobs(store: Storage, chat_id: int, count: int, *, lane: str = "", first: int = 1) -> list[int]:
    ids = []
    for n in range(first, first + count):
        job_id = await store.jobs.add(chat_id=chat_id, source=f"message:{n}", kind="converse", payload={}, lane=lane)
        assert job_id is not None
        ids.append(job_id)
    return ids


async def test_only_the_oldest_unfinished_job_of_a_chats_lane_can_be_taken(two: tuple[Storage, Storage]) -> None:
    store, _ = two
    one, two_ = await _jobs(store, 1, 2)
    [other] = await _jobs(store, 2, 1)
    [background] = await _jobs(store, 1, 1, lane="background", first=10)
    assert [j.id for j in await store.jobs.claimable(10)] == [one, other, background]
    assert await store.jobs.take(two_, owner="a", lease=30, max_attempts=3) is None  # behind `one`
    taken = await store.jobs.take(one, owner="a", lease=30, max_attempts=3)
    assert taken is not None and taken.started and (taken.row.state, taken.row.attempts) == ("working", 1)
    assert await store.jobs.take(one, owner="b", lease=30, max_attempts=3) is None  # held
    assert await store.jobs.take(two_, owner="b", lease=30, max_attempts=3) is None  # still behind it
    assert await store.jobs.take(background, owner="b", lease=30, max_attempts=3) is not None  # beside it
    assert [j.id for j in await store.jobs.claimable(10)] == [other]
    assert await store.jobs.finish(one, ok=True, owner="a")
    assert [j.id for j in await store.jobs.claimable(10, chat_id=1)] == [two_]
    assert await store.jobs.take(two_, owner="b", lease=30, max_attempts=3) is not None


async def test_a_job_is_taken_by_one_of_many_at_once(two: tuple[Storage, Storage]) -> None:
    first, _ = two
    [job] = await _jobs(first, 1, 1)
    takers = [store.jobs.take(job, owner=f"p{i}", lease=30, max_attempts=3) for i in range(4) for store in two]
    taken = [t for t in await asyncio.gather(*takers) if t is not None]
    assert len(taken) == 1 and taken[0].row.attempts == 1


async def test_a_dead_processs_lease_runs_out_and_another_takes_over(two: tuple[Storage, Storage]) -> None:
    first, second = two
    [job, after] = await _jobs(first, 1, 2)
    assert await first.jobs.take(job, owner="dead", lease=0.5, max_attempts=3) is not None
    assert await first.jobs.renew(job, owner="dead", lease=0.5)
    assert await second.jobs.take(job, owner="alive", lease=30, max_attempts=3) is None
    assert await second.jobs.claimable(10) == []
    await asyncio.sleep(0.6)
    assert [j.id for j in await second.jobs.claimable(10)] == [job]
    again = await second.jobs.take(job, owner="alive", lease=30, max_attempts=3)
    assert again is not None and again.started and again.row.attempts == 2
    assert not await first.jobs.renew(job, owner="dead", lease=0.5)  # the lease is gone: stop
    assert not await first.jobs.finish(job, ok=True, owner="dead")  # … and leave the finishing to the taker
    assert await second.jobs.finish(job, ok=True, owner="alive")
    assert await second.jobs.take(after, owner="alive", lease=30, max_attempts=3) is not None


async def test_a_released_job_is_taken_at_once_and_a_replied_one_is_not_run_again(
    two: tuple[Storage, Storage],
) -> None:
    first, second = two
    [replied, exhausted, plain] = [(await _jobs(first, chat, 1))[0] for chat in (1, 2, 3)]
    for job in (replied, exhausted, plain):
        assert await first.jobs.take(job, owner="stopping", lease=300, max_attempts=3) is not None
    await first.jobs.mark_replied(replied)
    for _ in range(2):
        await first.jobs.start(exhausted)
    assert await first.jobs.release("someone else") == 0
    assert await first.jobs.release("stopping") == 3
    done = await second.jobs.take(replied, owner="next", lease=30, max_attempts=3)
    assert done is not None and not done.started and done.row.replied  # only to be finished
    spent = await second.jobs.take(exhausted, owner="next", lease=30, max_attempts=3)
    assert spent is not None and not spent.started and spent.row.attempts == 3  # to be given up on
    run = await second.jobs.take(plain, owner="next", lease=30, max_attempts=3)
    assert run is not None and run.started and run.row.attempts == 2


async def test_workers_in_two_processes_run_each_chats_jobs_once_in_order_one_at_a_time(
    two: tuple[Storage, Storage],
) -> None:
    """Four workers per process take whatever is claimable, like the dispatchers' pollers: every job runs
    once, each chat's in the order accepted, never two of one chat at once; chats overlap."""
    chats = {chat: await _jobs(two[0], chat, 6) for chat in (1, 2, 3)}
    ran: dict[int, list[int]] = {chat: [] for chat in chats}
    running: dict[int, int] = dict.fromkeys(chats, 0)
    most_at_once = 0
    total = sum(len(ids) for ids in chats.values())

    async def worker(store: Storage, name: str) -> None:
        nonlocal most_at_once
        while sum(len(r) for r in ran.values()) < total:
            for job in await store.jobs.claimable(4):
                taken = await store.jobs.take(job.id, owner=name, lease=30, max_attempts=3)
                if taken is None:
                    continue
                running[job.chat_id] += 1
                assert running[job.chat_id] == 1, f"two jobs of chat {job.chat_id} at once"
                most_at_once = max(most_at_once, sum(running.values()))
                ran[job.chat_id].append(job.id)
                await asyncio.sleep(0.01)
                running[job.chat_id] -= 1
                assert await store.jobs.finish(job.id, ok=True, owner=name)
            await asyncio.sleep(0.005)

    workers = [worker(store, f"{i}-{n}") for i, store in enumerate(two) for n in range(4)]
    await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
    assert ran == chats
    assert most_at_once > 1
