"""Spend control end to end: the real bot against the lab — ledger, /usage, /stats, budgets, /model, limits."""

from __future__ import annotations

import re
import sqlite3
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot import texts
from bot.charts import daily_costs_png
from lab import FakeOpenAI, FakeTelegram, make_voice_ogg
from lab.harness import lab_env, running_bot
from parley.i18n import formats
from parley.i18n.catalog import using
from parley.i18n.locales import SHIPPED
from parley.prices import PriceTable
from parley.spend import Allowance
from storage import Usage

ADMIN, ANN, BEA = 111, 222, 333
WHOLE = r"Sorry, this message would cost about \$0\.\d\d, more than {budget}, so I can't answer it\."
"""A refusal to someone whose whole budget is smaller than the message (a pattern: the estimate is the model's)."""


def ledger(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            """SELECT user_id, chat_id, model, purpose, prompt_text_tokens, prompt_audio_tokens,
                      completion_text_tokens, completion_audio_tokens, cost_usd FROM usage_ledger ORDER BY id"""
        ).fetchall()


def env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, **settings: str) -> dict[str, str]:
    return lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ADMINS=str(ADMIN), **settings)


async def test_every_call_is_in_the_ledger_and_usage_shows_it(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path)):
        ann = telegram.user(ANN, "Ann", username="ann")
        telegram.push_voice(ANN, ann, make_voice_ogg(2.0))
        await telegram.wait_sent(ANN, count=1)
        await openai_api.wait_requests(1, kind="transcriptions")
        telegram.push_text(ANN, ann, "/usage")
        report = (await telegram.wait_sent(ANN, count=2))[1].text

    rows = ledger(tmp_path / "parley.db")
    assert sorted(r[3] for r in rows) == ["reply", "transcription"]
    prices = PriceTable.shipped()
    for user_id, chat_id, model, purpose, text_in, audio_in, text_out, audio_out, cost in rows:
        assert (user_id, chat_id) == (ANN, ANN)
        # the lab's usage, as the API reported it, priced by kind
        [request] = [r for r in openai_api.requests if r.kind == ("chat" if purpose == "reply" else "transcriptions")]
        usage = request.usage
        if purpose == "reply":
            assert model == "gpt-audio-1.5"
            assert audio_in == usage["prompt_tokens_details"]["audio_tokens"] == 20  # 2 s of audio
            assert audio_out == usage["completion_tokens_details"]["audio_tokens"] > 0
            assert text_in + audio_in == usage["prompt_tokens"]
        else:
            assert model == "gpt-4o-mini-transcribe"
            assert audio_in == usage["input_token_details"]["audio_tokens"]
        expected = prices.cost(Usage(model, text_in + audio_in, text_out + audio_out, audio_in, audio_out))
        assert cost == pytest.approx(expected) and cost > 0
    total = sum(r[-1] for r in rows)
    assert report.startswith("Your usage (days and months in UTC):")
    assert f"Today: {sum(sum(r[4:8]) for r in rows):,} tokens" in report
    assert texts.money(total) in report
    assert "\n• gpt-audio-1.5: 158 tokens (50 audio), $0.0029 in 1 call\n" in report
    assert report.endswith("• gpt-4o-mini-transcribe: 25 tokens (20 audio), $0.0001 in 1 call")


async def test_over_budget_is_refused_plainly_without_a_model_call(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    settings = {"PARLEY_USER_DAILY_BUDGET_USD": "0", "PARLEY_MONTHLY_BUDGET_USD": "100"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        telegram.push_voice(ANN, telegram.user(ANN, "Ann"), make_voice_ogg(2.0))
        [refusal] = await telegram.wait_sent(ANN)
        telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), "hi")  # admins are exempt by default
        [answer] = await telegram.wait_sent(ADMIN)
        telegram.push_text(ANN, telegram.user(ANN, "Ann"), "/usage")
        usage = (await telegram.wait_sent(ANN, count=2))[1].text
    whole = WHOLE.format(budget=r"your whole daily budget of \$0\.00")
    assert re.fullmatch(whole, refusal.text), refusal.text
    assert answer.kind == "voice"
    assert [r.json["messages"][-1]["content"] for r in openai_api.chat_requests()] == ["hi"]  # Ann's cost nothing
    assert openai_api.transcription_requests() == []
    assert "• daily budget: $0.00, $0.00 left" in usage


async def test_a_budget_too_small_for_a_message_is_not_called_reached(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """Someone who spent nothing hears what the message would cost and that the budget is smaller, in cents."""
    settings = {"PARLEY_USER_DAILY_BUDGET_USD": "0.01"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        telegram.push_voice(ANN, telegram.user(ANN, "Ann"), make_voice_ogg(2.0))
        [refusal] = await telegram.wait_sent(ANN)
        telegram.push_text(ANN, telegram.user(ANN, "Ann"), "/usage")
        usage = (await telegram.wait_sent(ANN, count=2))[1].text
        telegram.push_voice(BEA, telegram.user(BEA, "Bea", language_code="de"), make_voice_ogg(2.0))
        [german] = await telegram.wait_sent(BEA)
    whole = WHOLE.format(budget=r"your whole daily budget of \$0\.01")
    assert re.fullmatch(whole, refusal.text), refusal.text
    assert "reached" not in refusal.text and "0.0100" not in refusal.text
    assert "• daily budget: $0.01, $0.01 left, starts over" in usage
    assert re.fullmatch(
        r"Tut mir leid, diese Nachricht würde etwa 0,\d\d\xa0\$ kosten, mehr als dein gesamtes Tagesbudget von "
        r"0,01\xa0\$, deshalb kann ich sie nicht beantworten\.",
        german.text,
    ), german.text
    assert openai_api.requests == []


RESETS = " It starts over on Dec 3, 12:00\u202fAM UTC."


@pytest.mark.parametrize(
    ("scope", "limit", "used", "estimate", "expected"),
    [
        ("daily", 0.01, 0.006, 0.05,
         "Sorry, this message would cost about $0.05, but only $0.004 of your daily budget of $0.01 is left." + RESETS),
        ("monthly", 0.02, 0.0075, 0.0133,  # both would read $0.01: written with the digits that tell them apart
         "Sorry, this message would cost about $0.0133, but only $0.0125 of your monthly budget of $0.02 is left."
         + RESETS),
        ("daily", 0.01, 0.01, 0.05,
         "Sorry, you've used up your daily budget of $0.01 (this message would cost about $0.05)." + RESETS),
        ("global", 12.5, 0.0, 20.0,
         "Sorry, this message would cost about $20.00, more than this bot's whole monthly budget of $12.50, so I "
         "can't answer it."),
    ],
)  # fmt: skip
def test_budget_refusals_say_the_cost_and_what_is_left(
    scope: str, limit: float, used: float, estimate: float, expected: str
) -> None:
    allowance = Allowance(scope, limit, used, datetime(2026, 12, 3, tzinfo=UTC))
    assert texts.over_budget(allowance, estimate) == expected


async def test_admins_can_be_held_to_budgets_too(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    settings = {"PARLEY_MONTHLY_BUDGET_USD": "0", "PARLEY_BUDGET_ADMINS": "true"}
    async with running_bot(env(telegram, openai_api, tmp_path, **settings)):
        telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), "hi")
        [refusal] = await telegram.wait_sent(ADMIN)
    whole = WHOLE.format(budget=r"this bot's whole monthly budget of \$0\.00")
    assert re.fullmatch(whole, refusal.text), refusal.text
    assert openai_api.requests == []


async def test_long_voice_notes_are_refused_before_download_and_after_conversion(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path, PARLEY_MAX_VOICE_SECONDS="3")):
        ann = telegram.user(ANN, "Ann")
        telegram.push_voice(ANN, ann, make_voice_ogg(2.0), duration=4)  # declared too long: not even fetched
        [first] = await telegram.wait_sent(ANN)
        assert telegram.calls_of("getFile") == []
        telegram.push_voice(ANN, ann, make_voice_ogg(6.0), duration=2)  # a lie, found out after conversion
        second = (await telegram.wait_sent(ANN, count=2))[1]
        assert len(telegram.calls_of("getFile")) == 1
        telegram.push_voice(ANN, ann, make_voice_ogg(3.0), duration=3)  # at the limit: fine
        third = (await telegram.wait_sent(ANN, count=3))[2]
    assert (
        first.text
        == second.text
        == texts.voice_too_long(3)
        == ("That voice message is too long: I take voice messages of up to 3 seconds. Please send a shorter one.")
    )
    assert third.kind == "voice"
    assert len(openai_api.chat_requests()) == 1
    assert texts.voice_too_long(300).endswith("up to 5 minutes. Please send a shorter one.")
    assert texts.voice_too_long(90).endswith("up to 90 seconds. Please send a shorter one.")


async def test_stats_for_admins_as_text_and_chart(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path)):
        telegram.push_text(ANN, telegram.user(ANN, "Ann", username="ann"), "hello")
        await telegram.wait_sent(ANN)
        telegram.push_text(ANN, telegram.user(ANN, "Ann", username="ann"), "/stats")
        refused = (await telegram.wait_sent(ANN, count=2))[1]
        admin = telegram.user(ADMIN, "Admin")
        telegram.push_text(ADMIN, admin, "/stats")
        report, chart = await telegram.wait_sent(ADMIN, count=2)
    assert refused.text == texts.ADMIN_ONLY
    [cost] = [r[-1] for r in ledger(tmp_path / "parley.db")]
    assert f"1. @ann ({ANN}): {texts.money(cost)}, 1 call" in report.text
    assert f"Last 30 days: {texts.money(cost)}, by day:" in report.text
    assert "Prices as of Nov 25, 2026." in report.text
    assert chart.kind == "photo" and chart.caption == texts.STATS_CHART_CAPTION
    [upload] = telegram.calls_of("sendPhoto")
    assert upload.ok


@pytest.mark.parametrize("locale", SHIPPED)
def test_the_stats_chart_draws_every_language_without_missing_glyphs(locale: str) -> None:
    """Dates and sums on the chart are the reader's; none of them is a box for want of a glyph."""
    days = [(date(2026, 11, 4) + timedelta(days=n), 0.0042 * n) for n in range(30)]
    with using(locale), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        png = daily_costs_png(days, formats.short_day, texts.money)
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert not [str(w.message) for w in caught if "missing from font" in str(w.message)]


async def test_model_choice_is_per_user_and_kept(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    settings = env(telegram, openai_api, tmp_path)
    ann = telegram.user(ANN, "Ann")
    async with running_bot(settings):
        telegram.push_text(ANN, ann, "/model")
        [listing] = await telegram.wait_sent(ANN)
        telegram.push_text(ANN, ann, "/model gpt-5")
        telegram.push_callback(ANN, ann, listing.message_id, "model:gpt-audio-mini")
        await telegram.wait_for(
            lambda: telegram.message(ANN, listing.message_id)["text"] == texts.model_set("gpt-audio-mini")
        )
    async with running_bot(settings):
        telegram.push_text(ANN, ann, "hello")
        telegram.push_text(ADMIN, telegram.user(ADMIN, "Admin"), "hello")
        await telegram.wait_sent(ADMIN)
        await telegram.wait_sent(ANN, count=3)
    offered = ("gpt-audio-1.5", "gpt-audio", "gpt-audio-mini")
    assert listing.text == texts.model_list("gpt-audio-1.5", offered)
    buttons = [b["callback_data"] for row in listing.reply_markup["inline_keyboard"] for b in row]
    assert buttons == ["model:gpt-audio-1.5", "model:gpt-audio", "model:gpt-audio-mini"]
    assert telegram.sent_to(ANN)[1].text == texts.model_unknown("gpt-5", offered)
    assert sorted(r.json["model"] for r in openai_api.chat_requests()) == ["gpt-audio-1.5", "gpt-audio-mini"]
    models = {int(r[0]): r[2] for r in ledger(tmp_path / "parley.db")}
    assert models == {ANN: "gpt-audio-mini-2025-10-06", ADMIN: "gpt-audio-1.5"}
