"""Reminders end to end: the real bot asks the model, the model calls the tools, the reminder fires as a voice
note in the person's voice; /timezone and /reminders with cancel buttons."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from lab import FakeOpenAI, FakeTelegram
from lab.harness import lab_env, running_bot
from parley.i18n import formats
from storage import Storage

ANN = 2001
BOB = 2002
GROUP = -1002000000001


def env(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path) -> dict[str, str]:
    return lab_env(
        telegram, openai_api, tmp_path / "parley.db", PARLEY_TOOLS="datetime,reminders,group_memory"
    )


async def test_a_spoken_request_schedules_exactly_what_the_confirmation_says_and_it_fires_in_the_persons_voice(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path)) as bot:
        ann = telegram.user(ANN, "Ann")
        telegram.push_text(ANN, ann, "/timezone Berlin")
        [told] = await telegram.wait_sent(ANN, count=1)
        assert told.text is not None and told.text.startswith("Done: your timezone is Europe/Berlin.")
        days = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
        assert re.search(rf"It's ({days}), \d{{1,2}}:\d\d\u202f[AP]M there;", told.text), told.text
        telegram.push_text(ANN, ann, "/voice coral")
        await telegram.wait_sent(ANN, count=2)

        openai_api.queue_tool_calls(("create_reminder", {"text": "stretch", "in_minutes": 20}))
        openai_api.queue_replies("Okay: I will remind you to stretch.")
        telegram.push_text(ANN, ann, "Remind me in twenty minutes to stretch")
        replies = await telegram.wait_sent(ANN, count=3)
        assert replies[-1].caption == "Okay: I will remind you to stretch."

        [reminder] = await bot.services.storage.reminders.pending(ANN, ANN, 10)
        assert reminder.text == "stretch" and reminder.zone == "Europe/Berlin"
        assert abs(reminder.due_at - (time.time() + 20 * 60)) < 120
        second = openai_api.chat_requests()[-1]
        [result] = [m for m in second.json["messages"] if m["role"] == "tool"]
        assert json.loads(result["content"])["scheduled"] is True  # what the model confirmed from

        # The stored turn carries the call and its result (and /export shows them).
        exported = await bot.services.storage.privacy.export_user(ANN)
        [call] = exported["conversations"][-1]["turns"][-1]["tool_calls"]
        assert call["name"] == "create_reminder" and json.loads(call["result"])["scheduled"] is True
        assert exported["user"]["timezone"] == "Europe/Berlin"

        # Due now: the scheduler fires it as a voice note in Ann's voice, with its text.
        await bot.services.storage.reminders.add(
            user_id=ANN, chat_id=ANN, text="drink water", first="2026-01-01T00:00", zone="Europe/Berlin",
            repeat="none", due_at=time.time(),
        )  # fmt: skip
        assert bot.services.reminders is not None
        bot.services.reminders.wake()
        await telegram.wait_for(
            lambda: any(m.caption == "⏰ Reminder: drink water" for m in telegram.sent_to(ANN)), what="the reminder"
        )
        [fired] = [m for m in telegram.sent_to(ANN) if m.caption == "⏰ Reminder: drink water"]
        assert fired.kind == "voice" and fired.data
        spoken = openai_api.chat_requests()[-1].json
        assert spoken["audio"]["voice"] == "coral"
        assert "drink water" in spoken["messages"][-1]["content"]


async def test_reminders_are_listed_with_cancel_buttons_only_their_owner_can_use(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path)) as bot:
        ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
        store = bot.services.storage.reminders
        await store.add(
            user_id=ANN, chat_id=GROUP, text="call mum", first="2030-01-07T09:00", zone="Europe/Berlin",
            repeat="weekly", due_at=time.time() + 86400,
        )  # fmt: skip
        [stored] = await store.pending(ANN, GROUP, 10)
        telegram.push_text(GROUP, ann, "/reminders", chat_type="supergroup")
        [listing] = await telegram.wait_sent(GROUP, count=1)
        due = formats.long_when(datetime.fromtimestamp(stored.due_at, ZoneInfo("Europe/Berlin")))
        assert re.fullmatch(r"\w+day, \w+ \d{1,2}, \d{4}, \d{1,2}:\d\d\u202f[AP]M", due), due
        assert listing.text is not None and f"1. {due}, every week: call mum" in listing.text
        [[button]] = listing.reply_markup["inline_keyboard"]  # type: ignore[index]

        telegram.push_callback(GROUP, bob, listing.message_id, button["callback_data"])  # not Bob's to cancel
        await telegram.wait_consumed()
        assert len(await store.pending(ANN, GROUP, 10)) == 1
        assert not listing.edits

        telegram.push_callback(GROUP, ann, listing.message_id, button["callback_data"])
        await telegram.wait_for(lambda: bool(listing.edits), what="the list settled")
        assert listing.edits[-1].startswith("Cancelled: call mum")
        assert await store.pending(ANN, GROUP, 10) == []


async def test_a_reminder_due_while_parley_was_down_fires_when_it_is_back(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    storage = await Storage.open(tmp_path / "parley.db")
    await storage.reminders.add(
        user_id=ANN, chat_id=ANN, text="water the plants", first="2026-01-01T08:00", zone="Europe/Berlin",
        repeat="daily", due_at=time.time() - 3600,
    )  # fmt: skip
    await storage.close()
    telegram.add_chat(ANN, first_name="Ann")  # she talked to the bot before it went down
    async with running_bot(env(telegram, openai_api, tmp_path)) as bot:
        [fired] = await telegram.wait_sent(ANN, count=1)
        assert (fired.kind, fired.caption) == ("voice", "⏰ Reminder: water the plants")
        deadline = time.monotonic() + 10
        while (await bot.services.storage.reminders.pending(ANN, ANN, 10))[0].due_at < time.time():
            assert time.monotonic() < deadline, "the daily reminder did not move on to its next occurrence"
            await asyncio.sleep(0.05)


async def test_in_a_group_the_model_can_only_schedule_for_whoever_spoke(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env(telegram, openai_api, tmp_path)) as bot:
        ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
        telegram.add_chat(GROUP, chat_type="supergroup", title="Friends", bot_is_admin=True)  # it sees mentions
        await bot.services.storage.users.update_preferences(BOB, timezone="Europe/Berlin")
        mention = "@parley_test_bot"
        text = f"{mention} remind Ann in five minutes to call her mother"
        # The model tries twice: with an invented "for" argument (refused unrun), then as the tool allows.
        openai_api.queue_tool_calls(("create_reminder", {"text": "call her mother", "in_minutes": 5, "for": ANN}))
        openai_api.queue_tool_calls(("create_reminder", {"text": "Ann: call her mother", "in_minutes": 5}))
        openai_api.queue_replies("Bob, I set that reminder for you, not for Ann.")
        entities = [{"type": "mention", "offset": 0, "length": len(mention)}]
        telegram.push_text(GROUP, bob, text, chat_type="supergroup", entities=entities)
        await telegram.wait_sent(GROUP, count=1)
        assert await bot.services.storage.reminders.pending(ANN, GROUP, 10) == []
        assert await bot.services.storage.reminders.pending(ANN, ANN, 10) == []
        [bobs] = await bot.services.storage.reminders.pending(BOB, GROUP, 10)
        assert bobs.text == "Ann: call her mother"
        refused = [m for m in openai_api.chat_requests()[1].json["messages"] if m["role"] == "tool"]
        assert "unexpected for" in refused[0]["content"]
        assert ann  # Ann is in the group, and got nothing scheduled in her name


async def test_a_reply_after_tool_calls_is_streamed_like_any_other(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """Every round is asked streamed (PARLEY_STREAM_REPLIES, on by default); the answering round's audio
    becomes the voice note as it arrives. With streaming off, every round is asked whole."""
    for stream in ("true", "false"):
        settings = env(telegram, openai_api, tmp_path / stream)
        settings["PARLEY_STREAM_REPLIES"] = stream
        async with running_bot(settings):
            ann = telegram.user(ANN, "Ann")
            asked = len(openai_api.chat_requests())
            openai_api.queue_tool_calls(("current_time", {}))
            openai_api.queue_replies("It is a little past noon where you are.")
            note = telegram.push_text(ANN, ann, "what time is it?")
            await telegram.wait_for(lambda n=note: any(m.reply_to_message_id == n for m in telegram.sent_to(ANN)))
            [reply] = [m for m in telegram.sent_to(ANN) if m.reply_to_message_id == note]
        rounds = [r.json for r in openai_api.chat_requests()[asked:]]
        assert len(rounds) == 2 and [bool(r.get("stream")) for r in rounds] == [stream == "true"] * 2, stream
        assert [r.get("tools") is not None for r in rounds] == [True, True]
        assert reply.kind == "voice" and reply.caption == "It is a little past noon where you are."
        assert reply.data and reply.duration and reply.duration >= 1
