"""Two real `parley run --webhook` processes on one PostgreSQL, as behind a load balancer: updates of several
chats posted to either at random, each more than once; one process SIGKILLed while replies are on their way.
Every message is answered exactly once, each chat's in order, and the dead process's jobs are finished by
the other once their leases run out."""

from __future__ import annotations

import asyncio
import random
import re
import signal
import time
from collections import Counter
from pathlib import Path

import asyncpg

from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env, running_bot
from tests.probe import free_port

CHATS = (5101, 5102, 5103, 5104)
ROUNDS = 3
LEASE_SECONDS = 3.0
SECRET = "webhook-secret-several-0123456789"
URL = "https://parley.example/telegram/hook"


async def _count_updates(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT COUNT(*) FROM updates"))
    finally:
        await connection.close()


async def _jobs(url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return list(
            await connection.fetch(
                "SELECT id, chat_id, message_id, state, attempts, leased_by, lease_until FROM jobs ORDER BY id"
            )
        )
    finally:
        await connection.close()


async def test_two_processes_answer_every_message_once_in_order_and_finish_a_dead_ones_jobs(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    rng = random.Random(15)
    ports = [free_port(), free_port()]
    addresses = [f"http://127.0.0.1:{port}" for port in ports]
    processes = [
        ParleyProcess(
            lab_env(
                telegram,
                openai_api,
                tmp_path / "unused.db",
                DATABASE_URL=postgres_url,
                PARLEY_WEBHOOK_URL=URL,
                PARLEY_WEBHOOK_SECRET=SECRET,
                PARLEY_LISTEN=f"127.0.0.1:{port}",
                PARLEY_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
                PARLEY_SLOW_NOTICE_SECONDS="120",
                PARLEY_LOG_LEVEL="INFO",
            ),
            tmp_path,
        )
        for port in ports
    ]
    people = {chat: telegram.user(chat, f"Person {chat}") for chat in CHATS}
    asked: dict[int, list[int]] = {chat: [] for chat in CHATS}

    def push_round(number: int) -> None:
        for chat in rng.sample(CHATS, len(CHATS)):
            asked[chat].append(telegram.push_text(chat, people[chat], f"round {number} in {chat}"))

    async def post(spread: list[str]) -> None:
        deliveries = await telegram.post_updates(*spread, copies=2)  # update i to spread[i], spread[i + 1]
        assert {d.status for d in deliveries} == {200}, deliveries

    try:
        await asyncio.gather(*(process.start("--webhook") for process in processes))
        await telegram.wait_calls("setWebhook", count=2, timeout=45)  # each listens before it sets the webhook

        # Round 1: every chat's first message is with the model (slow now) when one process dies.
        openai_api.latency = 5.0
        push_round(1)
        # Some updates reach both processes (the first to record one takes it), some one process twice.
        spread, turn = [addresses[0]] * 2 + [addresses[1]] * 2, rng.randrange(4)
        await post(spread[turn:] + spread[:turn])
        await openai_api.wait_for(lambda: len(openai_api.chat_requests()) >= len(CHATS), 30, what="round 1 asked")
        before = await _jobs(postgres_url)
        held = Counter(_pid(job) for job in before if job["leased_by"])
        victim = max(processes, key=lambda p: held[p.proc.pid if p.proc else 0])
        survivor = next(p for p in processes if p is not victim)
        assert victim.proc is not None and held[victim.proc.pid] >= 1, held
        assert sum(held.values()) == len(CHATS)  # every chat's first message in flight at once
        # Its leases as they stood a moment before it died (renewals since only made them longer).
        orphaned = {job["id"]: job["lease_until"] for job in before if _pid(job) == victim.proc.pid}
        victim.signal(signal.SIGKILL)
        killed_at, killed_at_wall = time.monotonic(), time.time()  # FakeTelegram stamps with the first clock
        assert await victim.wait() == -signal.SIGKILL
        died_with = {job["message_id"] for job in before if job["id"] in orphaned}
        assert not died_with & {m.reply_to_message_id for m in telegram.sent}  # mid-reply: none of them was out

        # Rounds 2 and 3 go to the survivor (the balancer saw the other one die); they wait their turn.
        openai_api.latency = 0.2
        alive = addresses[processes.index(survivor)]
        for number in range(2, ROUNDS + 1):
            push_round(number)
            await post([alive, alive])
        for chat in CHATS:
            await telegram.wait_for(
                lambda chat=chat: len([m for m in telegram.sent_to(chat) if m.kind == "voice"]) >= ROUNDS,
                45,
                what=f"chat {chat} answered {ROUNDS} times",
            )
        await asyncio.sleep(1.0)  # anything sent twice would show by now
        survivor.signal(signal.SIGTERM)
        assert await survivor.wait() == 0, survivor.text[-3000:]
    finally:
        for process in processes:
            await process.kill()

    for chat in CHATS:
        replies = [m for m in telegram.sent_to(chat) if m.kind == "voice"]
        assert [m.reply_to_message_id for m in replies] == asked[chat]  # each once, in the order asked
        assert [m.caption for m in replies] == [f"You said: round {n} in {chat}" for n in range(1, ROUNDS + 1)]
    assert all(m.kind == "voice" for m in telegram.sent)  # nothing else said: no failure, no "busy"
    jobs = await _jobs(postgres_url)
    assert len(jobs) == await _count_updates(postgres_url) == len(CHATS) * ROUNDS  # each taken in once
    assert {(job["state"], job["leased_by"]) for job in jobs} == {("done", None)}
    # The dead process's jobs: started there, then taken and finished by the survivor once the leases ran out.
    assert {job["id"]: job["attempts"] for job in jobs} == {
        job["id"]: 2 if job["id"] in orphaned else 1 for job in jobs
    }
    for job in (job for job in jobs if job["id"] in orphaned):
        assert re.search(rf"message={job['message_id']} job={job['id']} kind=\w+ .*outcome=ok", survivor.text)
        [reply] = [m for m in telegram.sent_to(job["chat_id"]) if m.reply_to_message_id == job["message_id"]]
        assert reply.at - killed_at + killed_at_wall > orphaned[job["id"]]


def _pid(job: asyncpg.Record) -> int:
    """The process id in a lease's holder (host:pid:nonce); 0 for none."""
    return int(job["leased_by"].split(":")[1]) if job["leased_by"] else 0


async def test_a_stopped_process_leaves_what_it_could_not_finish_to_the_others_at_once(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    """SIGTERM past the grace period: the job in flight is cancelled and its lease released, so another
    process takes it now, not when a long lease runs out."""
    env = lab_env(
        telegram,
        openai_api,
        tmp_path / "unused.db",
        DATABASE_URL=postgres_url,
        PARLEY_SHUTDOWN_SECONDS="0.5",
        PARLEY_JOB_LEASE_SECONDS="600",
    )
    openai_api.latency = 30
    async with running_bot(env):
        note = telegram.push_text(CHATS[0], telegram.user(CHATS[0], "Ann"), "a slow one")
        await openai_api.wait_for(lambda: len(openai_api.chat_requests()) >= 1, 15, what="the model asked")
    assert [(job["state"], job["attempts"], job["leased_by"]) for job in await _jobs(postgres_url)] == [
        ("working", 1, None)
    ]

    openai_api.latency = 0
    async with running_bot(env):
        [reply] = await telegram.wait_sent(CHATS[0], timeout=20)
    assert reply.reply_to_message_id == note
    assert [(job["state"], job["attempts"]) for job in await _jobs(postgres_url)] == [("done", 2)]


async def test_a_job_whose_lease_is_taken_over_stops_and_leaves_the_finishing_to_the_taker(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    """A process that stalled past its lease finds, at its next renewal, that another took the job: it stops
    there, says nothing to the chat, and does not mark the job finished."""
    env = lab_env(
        telegram, openai_api, tmp_path / "unused.db", DATABASE_URL=postgres_url, PARLEY_JOB_LEASE_SECONDS="1.5"
    )
    openai_api.latency = 20
    async with running_bot(env) as bot:
        telegram.push_text(CHATS[0], telegram.user(CHATS[0], "Ann"), "a slow one")
        await openai_api.wait_for(lambda: len(openai_api.chat_requests()) >= 1, 15, what="the model asked")
        connection = await asyncpg.connect(postgres_url)
        try:  # what another process does once the lease has run out
            await connection.execute("UPDATE jobs SET leased_by = 'other:1:x', lease_until = lease_until + 600")
        finally:
            await connection.close()
        await asyncio.wait_for(bot.services.scheduler.wait_idle(), timeout=10)  # stopped long before the model
    assert telegram.sent_to(CHATS[0]) == []
    assert [(job["state"], job["attempts"], job["leased_by"]) for job in await _jobs(postgres_url)] == [
        ("working", 1, "other:1:x")
    ]
