"""What several processes sharing one database must agree on, on both engines: rate limits, budgets and their
reservations, and scheduled work that runs once. Each "process" is a Storage of its own (its own connection
or pool) on the same SQLite file or PostgreSQL schema; the bot tests run the real bot beside another one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.harness import lab_env, running_bot
from parley.access import Rate, RateLimiter
from parley.periods import Schedule
from parley.prices import PriceTable
from parley.spend import HOLD_SECONDS, BudgetExceeded, Limits, Spend
from storage import Storage, Usage
from tests.citing_model import CitingModel

ANN, BOB = 111, 222
GROUP, OTHER_GROUP = -1001, -1002


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    """A bot with privacy mode off: it sees every group message, as digests need."""
    async with FakeTelegram(can_read_all_group_messages=True) as fake:
        yield fake
    assert not fake.internal_errors, "\n".join(fake.internal_errors)


@pytest.fixture
def citing(openai_api: FakeOpenAI) -> CitingModel:
    """The summary model answers cited-points requests with JSON, as the real one does for a schema."""
    model = CitingModel()
    openai_api.reply_text = model
    return model


def flat_prices() -> PriceTable:
    """1 USD per token of any kind: costs are token counts."""
    kinds = {"text_in": 1e6, "text_out": 1e6, "audio_in": 1e6, "audio_out": 1e6}
    return PriceTable.parse(json.dumps({"taken": "test", "models": {"m": kinds}}), "test")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- rate limits -------------------------------------------------------------------------------------


async def test_a_rate_limit_holds_across_two_processes(two: tuple[Storage, Storage]) -> None:
    rate = Rate.parse("5/minute")
    here, there = (RateLimiter(rate, s.rates, "user") for s in two)
    now = 1_000_000.0
    # A burst spread over both processes at once: five go ahead in all, not five in each.
    verdicts = await asyncio.gather(*((here if i % 2 else there).hit(ANN, now) for i in range(12)))
    assert sum(v.wait is None for v in verdicts) == 5
    refused = [v for v in verdicts if v.wait is not None]
    assert len(refused) == 7 and sum(v.warn for v in refused) == 1  # one "slow down" for the burst, anywhere
    assert {v.wait for v in refused} == {60}  # until the burst's first message leaves the window
    assert (await there.hit(BOB, now)).wait is None  # someone else's window is their own
    assert (await here.hit(ANN, now + 30)).wait is not None
    # A minute after the burst began, its first hits have left the window, seen from either process.
    assert (await here.hit(ANN, now + 60.5)).wait is None
    assert (await there.hit(ANN, now + 60.6)).wait is None
    assert (await there.hit(ANN, now + 60.7)).wait is None
    assert await two[0].rates.count() == 2
    assert await two[1].rates.prune(now + 3600) == 2  # windows nothing counts in any more go
    assert await two[0].rates.count() == 0


async def test_forget_takes_a_persons_rate_windows(two: tuple[Storage, Storage]) -> None:
    limiter = RateLimiter(Rate.parse("5/minute"), two[0].rates, "user")
    await limiter.hit(ANN, time.time())
    await limiter.hit(BOB, time.time())
    await two[1].privacy.forget_user(ANN, forgotten_key=-1)
    assert await two[0].rates.count() == 1


# --- budgets -----------------------------------------------------------------------------------------


async def test_budgets_and_reservations_hold_across_two_processes(two: tuple[Storage, Storage]) -> None:
    clock = Clock(1_000_000.0)
    here, there = (Spend(s.usage, flat_prices(), limits=Limits(user_daily=10.0, monthly=16.0), now=clock) for s in two)
    results = await asyncio.gather(*((here if i % 2 else there).reserve(ANN, 3.0) for i in range(8)),
                                   return_exceptions=True)  # fmt: skip
    held = [r for r in results if not isinstance(r, BaseException)]
    assert len(held) == 3  # 9 of Ann's 10: a fourth would make 12, whichever process asked
    assert all(isinstance(r, BudgetExceeded) for r in results if r not in held)
    assert await here.held() == await there.held() == pytest.approx(9.0)
    with pytest.raises(BudgetExceeded) as caught:
        await there.reserve(BOB, 8.0)  # Bob's own budget has room; the bot's (16, 9 held) has not
    assert caught.value.allowance.scope == "global"
    # One call settles in the other process: its real cost in the ledger, its hold released.
    await there.record(user_id=ANN, chat_id=ANN, purpose="reply", usage=Usage("m", prompt_tokens=1))
    await there.release(held[0])
    assert await here.held() == pytest.approx(6.0)
    assert [a.used for a in await here.allowances(ANN)] == pytest.approx([7.0, 7.0])
    await here.reserve(ANN, 3.0)  # 1 spent + 6 held + 3 = 10: exactly within


async def test_a_hold_left_by_a_process_that_died_runs_out(database_target: Path | str) -> None:
    clock = Clock(1_000_000.0)
    dying = await Storage.open(database_target)
    await Spend(dying.usage, flat_prices(), limits=Limits(user_daily=5.0), now=clock).reserve(ANN, 4.0)
    await dying.close()  # gone without releasing
    survivor = await Storage.open(database_target)
    try:
        spend = Spend(survivor.usage, flat_prices(), limits=Limits(user_daily=5.0), now=clock)
        with pytest.raises(BudgetExceeded):
            await spend.reserve(ANN, 2.0)
        clock.now += HOLD_SECONDS + 1
        await spend.reserve(ANN, 2.0)
        assert await survivor.usage.prune_holds(clock.now) == 1  # the dead one's; the new hold stays
        assert await spend.held() == pytest.approx(2.0)
    finally:
        await survivor.close()


async def test_without_budgets_nothing_is_held_or_written(two: tuple[Storage, Storage]) -> None:
    spend = Spend(two[0].usage, flat_prices(), now=Clock(1_000_000.0))
    reservation = await spend.reserve(ANN, 1e9)
    assert await two[1].usage.held(1_000_000.0) == 0.0
    await spend.release(reservation)


# --- scheduled work ----------------------------------------------------------------------------------


async def test_a_slot_of_scheduled_work_is_claimed_once_across_processes(two: tuple[Storage, Storage]) -> None:
    here, there = two
    claims = await asyncio.gather(
        *((here if i % 2 else there).schedule.claim("digest:-1001", 86400.0, claimer=f"p{i % 2}") for i in range(10))
    )
    assert claims.count(True) == 1
    assert not await there.schedule.claim("digest:-1001", 86400.0 - 1)  # a clock behind: an earlier slot
    assert await there.schedule.claim("digest:-1001", 2 * 86400.0)  # the next day's
    assert not await here.schedule.claim("digest:-1001", 2 * 86400.0)
    assert await here.schedule.claim("digest:-1002", 86400.0)  # each task has its own slots
    assert await here.schedule.last("digest:-1001") == 2 * 86400.0


# --- the bot, beside another process ------------------------------------------------------------------


def _env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, target: Path | str, **more: str) -> dict:
    where = {"DATABASE_URL": target} if isinstance(target, str) else {"PARLEY_DB": str(target)}
    return lab_env(telegram, openai_api, tmp_path / "unused.db", **where, **more)


async def test_the_bot_counts_messages_another_process_let_through(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, database_target: Path | str
) -> None:
    """Another process answered three of Ann's messages this minute: here, her rate (3/minute) is used up."""
    other = await Storage.open(database_target)
    try:
        elsewhere = RateLimiter(Rate.parse("3/minute"), other.rates, "user")
        for _ in range(3):
            assert (await elsewhere.hit(ANN)).wait is None
        async with running_bot(_env(telegram, openai_api, tmp_path, database_target, PARLEY_USER_RATE="3/minute")):
            telegram.push_text(ANN, telegram.user(ANN, "Ann"), "one more")
            [notice] = await telegram.wait_sent(ANN)
            await telegram.wait_consumed()
        assert notice.text.startswith("Slow down a little")
        assert openai_api.chat_requests() == []
        assert (await elsewhere.hit(ANN)).wait is not None  # … and what was refused here stays refused there
    finally:
        await other.close()


async def test_a_digest_is_posted_by_one_process_and_follows_changes_made_in_another(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, database_target: Path | str, citing: CitingModel
) -> None:
    ann, bob = telegram.user(11, "Ann"), telegram.user(22, "Bob")
    for group in (GROUP, OTHER_GROUP):
        telegram.add_chat(group, chat_type="supergroup")
    telegram.set_member_status(GROUP, 11, "administrator")
    other = await Storage.open(database_target)
    try:
        async with running_bot(_env(telegram, openai_api, tmp_path, database_target)) as bot:
            queue = bot.app.job_queue if bot.app is not None else None
            assert queue is not None
            telegram.push_text(GROUP, ann, "/digest 18:30 Europe/Berlin", chat_type="supergroup")
            set_ = (await telegram.wait_sent(GROUP))[-1]
            assert set_.text == texts.digest_set("every day at 6:30\u202fPM (Europe/Berlin)")
            for group in (GROUP, OTHER_GROUP):
                telegram.push_text(group, bob, "the day's talk: we ship on Monday", chat_type="supergroup")
            await telegram.wait_consumed()
            [timer] = queue.get_jobs_by_name(f"digest:{GROUP}")
            # The other process's timer fired first and claimed this occurrence: nothing is posted here.
            slot = Schedule("18:30", "Europe/Berlin").nearest(time.time())
            assert await other.schedule.claim(f"digest:{GROUP}", slot, claimer="elsewhere")
            await timer.run(bot.app)
            await telegram.wait_consumed()
            # Turned off through the other process: this one's timer goes, and posts nothing.
            await other.groups.set_digest(GROUP, None, None)
            await timer.run(bot.app)
            await telegram.wait_for(lambda: not queue.get_jobs_by_name(f"digest:{GROUP}"), 5)
            # Set through the other process for another group: this one's next sync takes it up, and posts it
            # once however often its timer fires.
            await other.groups.set_digest(OTHER_GROUP, "07:15", "UTC")
            [sync] = queue.get_jobs_by_name("digest-sync")
            await sync.run(bot.app)
            [timer] = queue.get_jobs_by_name(f"digest:{OTHER_GROUP}")
            assert timer.next_t is not None and (timer.next_t.hour, timer.next_t.minute) == (7, 15)
            await timer.run(bot.app)
            await telegram.wait_for(lambda: any(m.kind == "voice" for m in telegram.sent_to(OTHER_GROUP)), 20)
            await timer.run(bot.app)
            await telegram.wait_consumed()
            await sync.run(bot.app)  # in step already: the timer stays as it is
            assert queue.get_jobs_by_name(f"digest:{OTHER_GROUP}") == (timer,)
    finally:
        await other.close()
    assert [m for m in telegram.sent_to(GROUP) if m.kind == "voice"] == []
    assert len([m for m in telegram.sent_to(OTHER_GROUP) if m.kind == "voice"]) == 1
