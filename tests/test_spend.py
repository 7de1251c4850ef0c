"""Prices, the usage ledger and budgets, on a real SQLite database (no lab needed)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from parley.config import ConfigError, load_settings
from parley.prices import PriceTable, base_model
from parley.spend import BudgetExceeded, Limits, Spend
from storage import NewTurn, Storage, Usage
from tests.test_config import REQUIRED

ANN, BOB = 111, 222
NOV_30_LATE = datetime(2026, 11, 30, 23, 0, tzinfo=UTC).timestamp()
DEC_1_EARLY = datetime(2026, 12, 1, 1, 0, tzinfo=UTC).timestamp()


@pytest.fixture
async def storage(database_target: Path | str) -> AsyncIterator[Storage]:
    """The ledger on each engine: SQLite, then PostgreSQL."""
    db = await Storage.open(database_target)
    yield db
    await db.close()


class Clock:
    """An injected clock: tests move time, nothing sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def flat_prices() -> PriceTable:
    """1 USD per token of any kind: costs are token counts, easy to reason about."""
    kinds = {"text_in": 1e6, "text_out": 1e6, "audio_in": 1e6, "audio_out": 1e6}
    return PriceTable.parse(json.dumps({"taken": "test", "models": {"m": kinds}}), "test")


def spend(storage: Storage, clock: Clock, **limits: float) -> Spend:
    return Spend(storage.usage, flat_prices(), limits=Limits(**limits), now=clock)


async def charge(s: Spend, user_id: int, usd: int) -> None:
    await s.record(user_id=user_id, chat_id=user_id, purpose="reply", usage=Usage("m", prompt_tokens=usd))


# --- prices ------------------------------------------------------------------------------------------


def test_the_shipped_table_prices_every_kind_and_maps_snapshots() -> None:
    prices = PriceTable.shipped()
    for model in ("gpt-audio-1.5", "gpt-audio", "gpt-audio-mini", "gpt-4o-audio-preview", "gpt-4o-mini-audio-preview",
                  "gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1", "gpt-4o-mini"):  # fmt: skip
        assert prices.knows(model), model
    assert prices.taken == "2026-11-25"
    assert base_model("gpt-audio-2025-08-28") == "gpt-audio"
    assert prices.price("gpt-audio-mini-2025-12-15") == prices.price("gpt-audio-mini")
    # 1000 text in (200 of them cached, no cached price: full price), 500 audio in, 100 text out, 2000 audio out
    usage = Usage("gpt-audio-2025-08-28", prompt_tokens=1500, prompt_audio_tokens=500, cached_tokens=200,
                  completion_tokens=2100, completion_audio_tokens=2000)  # fmt: skip
    expected = (1000 * 2.5 + 500 * 32 + 100 * 10 + 2000 * 64) / 1e6
    assert prices.cost(usage) == pytest.approx(expected)
    # gpt-4o-mini has a cached price; whisper-1 is billed by the minute.
    mini = Usage("gpt-4o-mini-2024-07-18", prompt_tokens=1000, cached_tokens=400, completion_tokens=100)
    assert prices.cost(mini) == pytest.approx((600 * 0.15 + 400 * 0.075 + 100 * 0.6) / 1e6)
    assert prices.cost(Usage("whisper-1"), audio_seconds=90) == pytest.approx(0.009)
    # An unknown model (an Azure deployment name, say) is never free.
    assert prices.cost(Usage("my-deployment", prompt_tokens=1000)) == pytest.approx(1000 * 2.5 / 1e6)


def test_prices_can_be_overridden_and_a_bad_file_is_one_plain_line(tmp_path: Path) -> None:
    mine = tmp_path / "prices.json"
    mine.write_text(json.dumps({"taken": "2027-01-01", "models": {"gpt-audio": {"text_in": 1, "audio_out": 2}}}))
    settings = load_settings(REQUIRED | {"PARLEY_PRICES": str(mine)})
    assert PriceTable.load(settings.spend.prices_path).taken == "2027-01-01"
    mine.write_text('{"models": {"gpt-audio": {"text_in": "cheap"}}}')
    with pytest.raises(ConfigError) as caught:
        load_settings(REQUIRED | {"PARLEY_PRICES": str(mine)})
    [problem] = caught.value.problems
    assert problem.startswith("PARLEY_PRICES: ") and "must be numbers" in problem and "\n" not in problem


def test_o200k_counts_offline_with_tiktokens_own_definition(tmp_path: Path) -> None:
    """A fresh process with an empty tiktoken cache and every proxy pointing nowhere still counts tokens."""
    script = (
        "import tiktoken_ext.openai_public as op, parley.tokens as t\n"
        "print(t.o200k_base().encode('Hello world'))\n"
        "op.load_tiktoken_bpe = lambda *a, **k: t._o200k_ranks()\n"  # tiktoken's own recipe, our file
        "d = op.o200k_base()\n"
        "print(d['pat_str'] == t.O200K_PATTERN and d['special_tokens'] == t.O200K_SPECIAL)\n"
    )
    nowhere = "http://127.0.0.1:9"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "HTTPS_PROXY": nowhere, "HTTP_PROXY": nowhere,
           "https_proxy": nowhere, "http_proxy": nowhere}  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[13225, 2375]", "True"]
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded into the cache


# --- budgets -----------------------------------------------------------------------------------------


async def test_a_zero_budget_refuses_everything(storage: Storage) -> None:
    s = spend(storage, Clock(NOV_30_LATE), user_daily=0.0)
    with pytest.raises(BudgetExceeded) as caught:
        await s.reserve(ANN, 0.01)
    assert caught.value.allowance.scope == "daily" and caught.value.allowance.left == 0.0
    assert await s.held() == 0.0  # a refusal holds nothing


async def test_spending_exactly_up_to_the_limit_is_allowed_and_no_further(storage: Storage) -> None:
    s = spend(storage, Clock(NOV_30_LATE), user_daily=10.0)
    await charge(s, ANN, 7)
    reservation = await s.reserve(ANN, 3.0)  # 7 + 3 == 10: within
    await charge(s, ANN, 3)
    await s.release(reservation)
    with pytest.raises(BudgetExceeded) as caught:
        await s.reserve(ANN, 0.01)
    allowance = caught.value.allowance
    assert (allowance.limit, allowance.left) == (10.0, 0.0)
    assert allowance.resets_at == datetime(2026, 12, 1, tzinfo=ZoneInfo("UTC"))
    await s.reserve(BOB, 10.0)  # someone else's budget is their own


async def test_the_month_rolls_over(storage: Storage) -> None:
    clock = Clock(NOV_30_LATE)
    s = spend(storage, clock, user_monthly=5.0, monthly=8.0)
    await charge(s, ANN, 5)
    await charge(s, BOB, 2)
    with pytest.raises(BudgetExceeded) as mine:
        await s.reserve(ANN, 1.0)
    assert mine.value.allowance.scope == "monthly"
    with pytest.raises(BudgetExceeded) as everyone:
        await s.reserve(BOB, 2.0)  # Bob's own budget has room, the bot's (8, 7 spent) has not
    assert everyone.value.allowance.scope == "global" and everyone.value.allowance.left == pytest.approx(1.0)
    clock.now = DEC_1_EARLY
    await s.reserve(ANN, 5.0)
    await s.reserve(BOB, 3.0)


async def test_the_month_follows_the_configured_time_zone(storage: Storage) -> None:
    clock = Clock(NOV_30_LATE)  # 23:00 UTC on 30 Nov is already 1 Dec in Tokyo
    s = Spend(storage.usage, flat_prices(), limits=Limits(user_monthly=5.0), zone=ZoneInfo("Asia/Tokyo"), now=clock)
    clock.now = NOV_30_LATE - 3600 * 12
    await charge(s, ANN, 5)
    clock.now = NOV_30_LATE
    await s.reserve(ANN, 5.0)


async def test_concurrent_requests_cannot_race_past_a_limit(storage: Storage) -> None:
    s = spend(storage, Clock(NOV_30_LATE), user_daily=10.0)
    results = await asyncio.gather(*(s.reserve(ANN, 3.0) for _ in range(5)), return_exceptions=True)
    held = [r for r in results if not isinstance(r, BaseException)]
    assert len(held) == 3  # 3 x 3 = 9 fits in 10; a fourth would make 12
    assert all(isinstance(r, BudgetExceeded) for r in results if r not in held)
    assert await s.held() == pytest.approx(9.0)
    # Settling: the real cost goes into the ledger, the hold goes away; the total is what counts.
    for reservation in held:
        await charge(s, ANN, 2)
        await s.release(reservation)
    assert await s.held() == 0.0
    await s.reserve(ANN, 4.0)  # 6 spent, 4 left


async def test_exempt_users_are_never_refused_but_still_counted(storage: Storage) -> None:
    s = Spend(storage.usage, flat_prices(), limits=Limits(user_daily=0.0, monthly=1.0), exempt=lambda u: u == ANN,
              now=Clock(NOV_30_LATE))  # fmt: skip
    await s.reserve(ANN, 5.0)
    await charge(s, ANN, 5)
    with pytest.raises(BudgetExceeded) as caught:
        await s.reserve(BOB, 0.5)
    assert caught.value.allowance.scope == "global"  # the admin's spend counts against the bot's budget


# --- ledger and /forget ------------------------------------------------------------------------------


async def test_forget_pseudonymises_the_ledger_and_keeps_the_totals(storage: Storage) -> None:
    s = spend(storage, Clock(NOV_30_LATE))
    await storage.turns.add([NewTurn(chat_id=ANN, user_id=ANN, role="user", kind="text", text="hi")])
    await charge(s, ANN, 3)
    await s.record(user_id=ANN, chat_id=-100123, purpose="summary", usage=Usage("m", prompt_tokens=2))
    await charge(s, BOB, 4)
    await storage.privacy.forget_user(ANN, forgotten_key=s.forgotten_key(ANN), day_of=s.day_of)

    assert await storage.usage.rows_of(ANN) == 0
    assert await storage.usage.spent(0.0) == pytest.approx(9.0)  # totals stay
    rows = await storage.db.fetch_all("SELECT user_id, chat_id, cost_usd FROM usage_ledger ORDER BY id")
    pseudonym = rows[0][0]
    assert pseudonym < 0 and rows[1][0] == pseudonym  # one stable stand-in for all of Ann's rows
    assert rows[0][1] == pseudonym and rows[1][1] is None  # her private chat too; the group is dropped
    assert rows[2][:2] == (BOB, BOB)  # Bob untouched
    [top, *_] = await storage.usage.top_users(since=0.0)
    assert top.user_id == pseudonym and top.cost_usd == pytest.approx(5.0)
