"""Typed jobs and callback data: rows written by an older Parley still load, and no button outgrows Telegram."""

from __future__ import annotations

import asyncio

import pytest

from bot.buttons import Press
from bot.callbacks import CallbackDataError
from bot.features.groups.payloads import Summarize
from bot.features.preferences import ModelChoice, VoiceChoice, model_keyboard
from bot.registry import ROUTES
from bot.replies import Retry
from parley.jobs import MemoryBudget


def test_callback_data_packs_and_unpacks_within_64_bytes() -> None:
    assert VoiceChoice("coral").pack() == "voice:coral"
    assert Retry.unpack("retry:12") == Retry(12)
    with pytest.raises(CallbackDataError):
        ModelChoice("m" * 60).pack()  # 66 bytes: Telegram would refuse the whole keyboard
    with pytest.raises(CallbackDataError):
        Retry.unpack("retry:twelve")
    with pytest.raises(CallbackDataError):
        VoiceChoice.unpack("model:coral")


def test_a_model_name_too_long_for_a_button_gets_no_button() -> None:
    keyboard = model_keyboard(("gpt-audio", "x" * 70), "gpt-audio")
    assert [b.callback_data for row in keyboard.inline_keyboard for b in row] == ["model:gpt-audio"]


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("converse", {"message": {"message_id": 7}}),  # private: no "text" key
        ("converse", {"message": {"message_id": 7}, "text": None}),
        ("summary", {"span": "", "digest": True}),  # a scheduled digest
        ("retry", {"user_id": 1, "message_id": 9, "data": "retry:5", "job_id": 5}),  # before taps were "button"
        ("usage", {"user_id": 1, "name": None}),  # /usage once shared /model's payload
        ("say", {"what": "help"}),
        ("forget", {}),
    ],
)
def test_rows_written_by_older_versions_still_load(kind: str, payload: dict) -> None:
    job = ROUTES[kind].payload.from_json(payload)
    assert type(job).from_json(job.to_json()) == job


def test_every_route_reads_back_what_it_writes() -> None:
    assert ROUTES["retry"].payload is Press
    digest = Summarize(digest=True)
    assert Summarize.from_json(digest.to_json()) == digest
    assert {route.kind for route in ROUTES.values()} <= set(ROUTES)


def test_one_table_makes_the_menus_and_help() -> None:
    from bot.registry import COMMANDS, Menu, help_text, menu

    everyone = [c.command for c in menu(Menu.EVERYONE)]
    assert everyone[:3] == ["start", "help", "voice"] and "stats" not in everyone
    admins = {c.command for c in menu(Menu.ADMINS)}
    assert {"allow", "deny", "users", "stats"} <= admins and "summary" not in admins
    assert "summary" not in {c.command for c in menu(Menu.PRIVATE_CHATS)}
    assert {"forget", "allow", "usage"}.isdisjoint({c.command for c in menu(Menu.GROUP_CHATS)})
    # Each scope's /help names every command of its menu that has a help line, and nothing else's.
    for which in (Menu.PRIVATE_CHATS, Menu.GROUP_CHATS, Menu.ADMINS):
        shown = {c.command for c in menu(which)}
        for c in COMMANDS:
            if c.help:
                assert (f"/{c.name}" in help_text(which)) == (c.name in shown), (which, c.name)


async def test_the_memory_budget_serves_in_order_and_never_strands_a_large_share() -> None:
    budget = MemoryBudget(100)
    await budget.take(60)
    order: list[str] = []

    async def job(name: str, amount: int) -> None:
        async with budget.share(amount):
            order.append(name)
            await asyncio.sleep(0.01)

    big = asyncio.create_task(job("big", 500))  # larger than the whole budget: runs once nothing is held
    await asyncio.sleep(0)
    small = asyncio.create_task(job("small", 10))  # would fit now, but waits its turn behind the big one
    await asyncio.sleep(0.05)
    assert order == [] and budget.held == 60
    budget.release(60)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.held == 0


async def test_a_wait_for_memory_given_up_hands_the_share_on() -> None:
    budget = MemoryBudget(100)
    await budget.take(100)
    waiting = asyncio.create_task(budget.take(50))
    after = asyncio.create_task(budget.take(50))
    await asyncio.sleep(0.01)
    waiting.cancel()
    budget.release(100)
    await after
    assert budget.held == 50
    with pytest.raises(asyncio.CancelledError):
        await waiting
