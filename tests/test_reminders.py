"""Reminders: created through the tool for the caller only, stored durably, fired once across processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from parley.actions import Toolbox, ToolCall, load
from parley.actions.scheduler import MAX_ATTEMPTS, ReminderScheduler
from parley.actions.scope import CallerScope
from storage import Storage
from storage.reminders import Reminder

BERLIN = ZoneInfo("Europe/Berlin")
ANN, BOB, GROUP = 11, 12, -1001234
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=BERLIN).timestamp()  # a Sunday afternoon


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def storage(database_target: Path | str) -> AsyncIterator[Storage]:
    """On SQLite and on PostgreSQL."""
    opened = await Storage.open(database_target)
    yield opened
    await opened.close()


def scope(storage: Storage, clock: Clock) -> CallerScope:
    return CallerScope(storage, is_admin=lambda _user: False, now=clock)


async def use(storage: Storage, clock: Clock, name: str, arguments: dict, *, user: int = ANN, chat: int = ANN) -> dict:
    toolbox = Toolbox(load(["datetime", "reminders"]))
    context = await scope(storage, clock).context(chat_id=chat, user_id=user)
    outcome = await toolbox.run(ToolCall("call_1", name, json.dumps(arguments)), context)
    result = json.loads(outcome.content)
    assert outcome.ok == ("error" not in result)
    return result


async def test_a_reminder_is_scheduled_in_the_persons_zone_and_the_result_says_exactly_when(
    storage: Storage,
) -> None:
    clock = Clock()
    await storage.users.update_preferences(ANN, timezone="Europe/Berlin")
    result = await use(storage, clock, "create_reminder", {"text": "call mum", "date": "2026-11-30", "time": "09:00"})
    assert result == {
        "scheduled": True, "id": result["id"], "text": "call mum", "next": "Monday 30 November 2026 at 09:00",
        "repeats": "once", "timezone": "Europe/Berlin",
    }  # fmt: skip
    [stored] = await storage.reminders.pending(ANN, ANN, 10)
    assert stored.due_at == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN).timestamp()
    weekly = await use(
        storage, clock, "create_reminder",
        {"text": "bins out", "date": "2026-11-30", "time": "08:00", "repeat": "weekly"},
    )  # fmt: skip
    assert (weekly["next"], weekly["repeats"]) == ("Monday 30 November 2026 at 08:00", "every week on Monday")
    soon = await use(storage, clock, "create_reminder", {"text": "tea", "in_minutes": 20})
    assert soon["next"] == "Sunday 29 November 2026 at 15:20"


async def test_without_a_timezone_nothing_is_scheduled_and_the_model_is_told_to_ask(storage: Storage) -> None:
    clock = Clock()
    result = await use(storage, clock, "create_reminder", {"text": "call mum", "in_minutes": 5})
    assert "timezone is not known" in result["error"] and "do not guess" in result["error"]
    assert await storage.reminders.pending(ANN, ANN, 10) == []
    set_zone = await use(storage, clock, "set_timezone", {"zone": "Asia/Tokyo"})
    assert set_zone["timezone"] == "Asia/Tokyo"
    assert (await storage.users.preferences(ANN)).timezone == "Asia/Tokyo"
    bogus = await use(storage, clock, "set_timezone", {"zone": "Mars/Olympus"})
    assert "not a timezone" in bogus["error"]


async def test_a_past_time_is_refused(storage: Storage) -> None:
    await storage.users.update_preferences(ANN, timezone="Europe/Berlin")
    result = await use(storage, Clock(), "create_reminder", {"text": "x", "date": "2026-11-29", "time": "14:00"})
    assert "already passed" in result["error"]
    assert await storage.reminders.pending(ANN, ANN, 10) == []


async def test_in_a_group_a_message_schedules_lists_and_cancels_only_its_senders_reminders(storage: Storage) -> None:
    clock = Clock()
    for person in (ANN, BOB):
        await storage.users.update_preferences(person, timezone="Europe/Berlin")
    anns = await use(storage, clock, "create_reminder", {"text": "ann's", "in_minutes": 30}, chat=GROUP)
    # Bob tries to make one for Ann: there is no argument for it, and an invented one is refused unrun.
    forged = await use(
        storage, clock, "create_reminder", {"text": "for ann", "in_minutes": 5, "user_id": ANN}, user=BOB, chat=GROUP
    )
    assert "unexpected user_id" in forged["error"]
    assert [r.text for r in await storage.reminders.pending(ANN, GROUP, 10)] == ["ann's"]
    # Bob sees none of Ann's, and cannot cancel hers by id.
    assert (await use(storage, clock, "list_reminders", {}, user=BOB, chat=GROUP))["count"] == 0
    refused = await use(storage, clock, "cancel_reminder", {"id": anns["id"]}, user=BOB, chat=GROUP)
    assert "no pending reminder" in refused["error"]
    # Ann's private list does not show what she set in the group, and the reverse.
    assert (await use(storage, clock, "list_reminders", {}, user=ANN, chat=ANN))["count"] == 0
    assert (await use(storage, clock, "list_reminders", {}, user=ANN, chat=GROUP))["count"] == 1
    cancelled = await use(storage, clock, "cancel_reminder", {"id": anns["id"]}, user=ANN, chat=GROUP)
    assert cancelled["cancelled"] is True
    assert await storage.reminders.pending(ANN, GROUP, 10) == []


async def add(storage: Storage, *, due: float, repeat: str = "none", first: str = "2026-11-29T15:00") -> Reminder:
    return await storage.reminders.add(
        user_id=ANN, chat_id=ANN, text="stretch", first=first, zone="Europe/Berlin", repeat=repeat, due_at=due
    )


async def test_the_scheduler_fires_what_is_due_once_and_moves_repeating_ones_on(storage: Storage) -> None:
    clock = Clock()
    fired: list[int] = []

    async def fire(reminder: Reminder) -> None:
        fired.append(reminder.id)

    once = await add(storage, due=NOW - 60)
    daily = await add(storage, due=NOW - 30, repeat="daily", first="2026-11-29T14:59")
    later = await add(storage, due=NOW + 3600)
    scheduler = ReminderScheduler(storage.reminders, fire, now=clock)
    assert await scheduler.run_due() == 2
    assert await scheduler.run_due() == 0
    assert fired == [once.id, daily.id]
    pending = {r.id: r for r in await storage.reminders.pending(ANN, ANN, 10)}
    assert set(pending) == {daily.id, later.id}
    assert pending[daily.id].due_at == datetime(2026, 11, 30, 14, 59, tzinfo=BERLIN).timestamp()
    assert await storage.reminders.next_due_at() == later.due_at


async def test_reminders_survive_a_restart_and_fire_once_across_processes(database_target: Path | str) -> None:
    path = database_target
    first = await Storage.open(path)
    await add(first, due=NOW + 60)
    await add(first, due=NOW + 61)
    await first.close()

    clock = Clock(NOW + 120)  # both processes start after the reminders fell due
    fired: list[tuple[str, int]] = []

    def firing(name: str):
        async def fire(reminder: Reminder) -> None:
            await asyncio.sleep(0.05)
            fired.append((name, reminder.id))

        return fire

    one, two = await Storage.open(path), await Storage.open(path)
    try:
        schedulers = [
            ReminderScheduler(one.reminders, firing("one"), now=clock),
            ReminderScheduler(two.reminders, firing("two"), now=clock),
        ]
        counts = await asyncio.gather(*(s.run_due() for s in schedulers))
        assert sum(counts) == 2
        assert sorted(reminder for _, reminder in fired) == [1, 2]  # each once, whichever process took it
    finally:
        await one.close()
        await two.close()


async def test_a_failed_delivery_is_retried_with_backoff_then_given_up(storage: Storage) -> None:
    clock = Clock()
    attempts: list[float] = []

    async def fire(reminder: Reminder) -> None:
        attempts.append(clock.now)
        raise ConnectionError("Telegram is unreachable")

    reminder = await add(storage, due=NOW)
    scheduler = ReminderScheduler(storage.reminders, fire, now=clock)
    for _ in range(MAX_ATTEMPTS):
        await scheduler.run_due()
        assert await scheduler.run_due() == 0  # not again before its backoff
        wake = await storage.reminders.next_due_at()
        if wake is None:
            break
        clock.now = wake
    assert len(attempts) == MAX_ATTEMPTS
    assert attempts == sorted(attempts) and attempts[1] - attempts[0] >= 30
    assert await storage.reminders.pending(ANN, ANN, 10) == []  # a one-off given up is done
    assert reminder.id
