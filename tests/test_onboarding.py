"""A bot that explains itself, end to end against the lab: the first run of a new operator, a group that is
added and switched on, the menus of every scope (none offers what does not work there), and strangers the
admins hear of and let in with a tap."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bot import registry, texts
from lab import FakeOpenAI, FakeTelegram
from lab.harness import lab_env, running_bot
from parley.i18n.catalog import using
from parley.i18n.locales import SHIPPED, telegram_code
from storage import Storage

OPERATOR, ADMIN, ANN, BOB, STRANGER = 123456789, 111, 11, 22, 333
GROUP = -1001234
DAY = 86400


def env_for(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, **settings: str) -> dict[str, str]:
    """The secure default (admins only) unless a test names who else is allowed."""
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", **settings)
    if "PARLEY_ALLOWED" not in settings:
        del env["PARLEY_ALLOWED"]
    return env


def buttons(message) -> list[dict]:
    return [button for row in (message.reply_markup or {}).get("inline_keyboard", []) for button in row]


def in_(locale: str, make):
    with using(locale):
        return make()


# --- 1. the first run ---------------------------------------------------------------------------------


async def test_a_first_run_without_admins_warns_and_tells_the_operator_how_to_become_one(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.application")
    operator = telegram.user(OPERATOR, "Olga", language_code="de")
    async with running_bot(env_for(telegram, openai_api, tmp_path)):
        telegram.push_text(OPERATOR, operator, "/start")
        [refusal] = await telegram.wait_sent(OPERATOR)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "bot.application"]
    assert warning == (
        "nobody can use this bot: PARLEY_ADMINS and PARLEY_ALLOWED are both empty. Set PARLEY_ADMINS to your "
        "numeric user id (write to the bot: its reply tells you your id) and restart."
    )
    assert refusal.text == in_("de", lambda: texts.refused(OPERATOR, unconfigured=True))
    assert f"PARLEY_ADMINS={OPERATOR}" in refusal.text and str(OPERATOR) in refusal.text.split("\n\n")[0]
    english = texts.refused(OPERATOR, unconfigured=True)
    assert english.endswith(
        f"If you run this bot: it has no admin yet. Add PARLEY_ADMINS={OPERATOR} to its .env file and restart it, "
        "and you are its admin."
    )
    # The screen before Start says what the bot is, in every shipped language.
    for locale in SHIPPED:
        code = telegram_code(locale)
        assert telegram.profile_text("description", code) == in_(locale, lambda: texts.DESCRIPTION)
        assert telegram.profile_text("short_description", code) == in_(locale, lambda: texts.SHORT_DESCRIPTION)
    assert telegram.profile_text("description") == texts.DESCRIPTION

    # The operator follows the advice: after a restart they are served, with the admin menu, and no warning.
    caplog.clear()
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(OPERATOR))):
        telegram.push_text(OPERATOR, operator, "hallo")
        answer = (await telegram.wait_sent(OPERATOR, count=2))[-1]
        assert answer.kind == "voice"
    assert not [r for r in caplog.records if r.name == "bot.application"]
    assert {"allow", "users", "stats"} <= set(telegram.menu(OPERATOR, operator))


async def test_a_bot_with_admins_does_not_give_strangers_the_operators_advice(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN))):
        telegram.push_text(STRANGER, telegram.user(STRANGER, "Sam"), "hi")
        [refusal] = await telegram.wait_sent(STRANGER)
    assert refusal.text == texts.refused(STRANGER) and "PARLEY_ADMINS" not in refusal.text


# --- 2. groups ----------------------------------------------------------------------------------------

BOT = "@parley_test_bot"


def mention(telegram: FakeTelegram, user: dict, text: str, chat: int = GROUP) -> int:
    entities = [{"type": "mention", "offset": text.index(BOT), "length": len(BOT)}]
    return telegram.push_text(chat, user, text, chat_type="supergroup", entities=entities)


async def test_a_group_learns_how_to_switch_the_bot_on_and_is_told_once_a_day(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann, bob, admin = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob"), telegram.user(ADMIN, "Admin")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN))
    async with running_bot(env):
        telegram.push_bot_added(GROUP, ann, chat_type="supergroup", title="Book club")  # Ann is not allowed
        [how_to] = await telegram.wait_sent(GROUP)
        assert how_to.text == texts.group_welcome(GROUP, allowed=False) + "\n\n" + texts.PRIVACY_MODE
        assert how_to.text.startswith("Hi, I'm Parley, a voice assistant. In this group I answer when someone ")
        assert f"sends /allow here. This group's id is {GROUP}, for /allow {GROUP} in a private chat" in how_to.text
        assert "Group Privacy → Turn off" in how_to.text

        # Privacy mode on: what reaches the bot is addressed to it (a command for it, a reply to it).
        asked = telegram.push_text(GROUP, bob, f"/voice@{telegram.bot_username}", chat_type="supergroup")
        [_, notice] = await telegram.wait_sent(GROUP, count=2)
        assert notice.text == texts.group_not_enabled(GROUP) and notice.reply_to_message_id == asked
        telegram.push_text(GROUP, bob, "hello??", chat_type="supergroup", reply_to=how_to.message_id)
        telegram.push_text(GROUP, bob, "/help", chat_type="supergroup")
        await telegram.wait_consumed()
    async with running_bot(env):  # remembered across a restart: still one notice today
        telegram.push_text(GROUP, ann, "and now?", chat_type="supergroup", reply_to=notice.message_id)
        await telegram.wait_consumed()
        assert len(telegram.sent_to(GROUP)) == 2

        telegram.push_text(GROUP, admin, "/allow", chat_type="supergroup")  # an admin of the bot, in the group
        switched = (await telegram.wait_sent(GROUP, count=3))[-1]
        assert switched.text == texts.GROUP_SWITCHED_ON
        telegram.push_text(GROUP, bob, "now?", chat_type="supergroup", reply_to=switched.message_id)
        answer = (await telegram.wait_sent(GROUP, count=4))[-1]
        assert answer.kind == "voice"
    assert len(openai_api.chat_requests()) == 1  # nothing of the group's reached the model before

    storage = await Storage.open(tmp_path / "parley.db")  # a day later the group would be told again
    try:
        later = time.time() + DAY
        assert await storage.access.note_group_notice(GROUP, quiet_seconds=DAY, now=later - 60) is False
        assert await storage.access.note_group_notice(GROUP, quiet_seconds=DAY, now=later + 60) is True
    finally:
        await storage.close()


async def test_a_group_that_is_allowed_already_is_told_so_and_an_admin_bot_needs_no_privacy_advice(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED=str(GROUP))):
        telegram.push_bot_added(GROUP, telegram.user(ANN, "Ann"), chat_type="supergroup", as_admin=True)
        [how_to] = await telegram.wait_sent(GROUP)
    assert how_to.text == texts.group_welcome(GROUP, allowed=True)
    assert how_to.text.endswith("\n\nI'm already switched on here.")


async def test_group_texts_private_commands_open_the_private_chat_and_pickers_answer_their_asker(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann, bob = telegram.user(ANN, "Ann"), telegram.user(BOB, "Bob")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ALLOWED=f"{GROUP},{ANN}")
    async with running_bot(env) as bot:
        telegram.add_chat(GROUP, chat_type="supergroup", title="Book club")
        telegram.push_text(GROUP, ann, "/start", chat_type="supergroup")
        telegram.push_text(GROUP, ann, f"/help@{telegram.bot_username}", chat_type="supergroup")
        start, help_ = await telegram.wait_sent(GROUP, count=2)
        assert start.text == texts.GROUP_START
        assert help_.text == registry.help_text(registry.Menu.GROUP_CHATS)
        assert help_.text.startswith(texts.GROUP_HELP_INTRO) and "/summary" in help_.text
        assert "/forget" not in help_.text and "/allow" not in help_.text

        # A private-only command: a button to the private chat, which lands on that command.
        telegram.push_text(GROUP, ann, "/forget", chat_type="supergroup")
        pointer = (await telegram.wait_sent(GROUP, count=3))[-1]
        assert pointer.text == texts.PRIVATE_ONLY_BUTTON
        [button] = buttons(pointer)
        assert button == {"text": "Open private chat", "url": f"https://t.me/{telegram.bot_username}?start=forget"}
        telegram.open_link(ann, button["url"])  # Start in the private chat sends "/start forget"
        [confirm] = await telegram.wait_sent(ANN)
        assert confirm.text == texts.FORGET_CONFIRM
        assert [b["text"] for b in buttons(confirm)] == [texts.FORGET_YES, texts.FORGET_NO]

        # A picker answers the asker's message: another member's tap is refused with an alert.
        asked = telegram.push_text(GROUP, ann, "/voice", chat_type="supergroup")
        picker = (await telegram.wait_sent(GROUP, count=4))[-1]
        assert picker.reply_to_message_id == asked
        coral = next(b["callback_data"] for b in buttons(picker) if b["text"].endswith("coral"))
        query = telegram.push_callback(GROUP, bob, picker.message_id, coral)
        await telegram.wait_for(lambda: query in telegram.callback_answers, what="Bob's tap answered")
        assert telegram.callback_answers[query]["text"] == texts.NOT_YOUR_BUTTON
        assert telegram.callback_answers[query]["show_alert"] is True
        assert (await bot.services.storage.users.preferences(BOB)).voice is None
        telegram.push_callback(GROUP, ann, picker.message_id, coral)
        await telegram.wait_for(lambda: telegram.message(GROUP, picker.message_id)["text"] == texts.voice_set("coral"))
        assert (await bot.services.storage.users.preferences(ANN)).voice == "coral"

        telegram.push_text(ANN, ann, "/summary")  # and a group's command in private says where it works
        assert (await telegram.wait_sent(ANN, count=2))[-1].text == texts.GROUP_ONLY


# --- 3. menus per scope -------------------------------------------------------------------------------

NOT_HERE = {"UNKNOWN_COMMAND", "GROUP_ONLY", "PRIVATE_ONLY_BUTTON", "PRIVATE_ONLY"}
"""What a command that does not work where it was offered answers."""


async def test_every_entry_of_every_menu_works_where_it_is_offered(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann, admin = telegram.user(ANN, "Ann"), telegram.user(ADMIN, "Admin")
    telegram.add_chat(GROUP, chat_type="supergroup", title="Book club")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN), PARLEY_ALLOWED=f"{ANN},{GROUP}")
    async with running_bot(env):
        # The admin never opened the bot, so Telegram refused their menu at start-up: they see everyone's …
        private = telegram.menu(ANN, ann)
        assert telegram.menu(ADMIN, admin) == private
        telegram.push_text(ADMIN, admin, "hello")
        await telegram.wait_sent(ADMIN)
        # … until they first write: then their own, in every language.
        assert telegram.menu(ADMIN, admin) == [c.command for c in registry.menu(registry.Menu.ADMINS)]
        german = telegram.commands({"type": "chat", "chat_id": ADMIN}, language_code="de")
        wanted = in_("de", lambda: registry.menu(registry.Menu.ADMINS))
        assert [c["description"] for c in german] == [c.description for c in wanted]

        in_group = telegram.menu(GROUP, ann)
        assert private == [c.command for c in registry.menu(registry.Menu.PRIVATE_CHATS)]
        assert in_group == [c.command for c in registry.menu(registry.Menu.GROUP_CHATS)]
        assert {"summary", "digest", "find"} <= set(in_group) and not {"summary", "find"} & set(private)
        assert {"forget", "usage", "model"} <= set(private) and not {"forget", "usage", "model"} & set(in_group)
        assert {"allow", "users", "stats"} <= set(telegram.menu(ADMIN, admin)) and "allow" not in private

        for chat, person, chat_type in ((ANN, ann, "private"), (ADMIN, admin, "private"), (GROUP, ann, "supergroup")):
            for command in telegram.menu(chat, person):
                before = len(telegram.sent_to(chat))
                telegram.push_text(chat, person, f"/{command}", chat_type=chat_type)
                await telegram.wait_for(lambda c=chat, b=before: len(telegram.sent_to(c)) > b, what=f"/{command}")
            await telegram.wait_consumed()
        not_here = {getattr(texts, name) for name in NOT_HERE}
        for chat in (ANN, ADMIN, GROUP):
            answers = [m.text for m in telegram.sent_to(chat) if m.text]
            assert answers and not not_here & set(answers), (chat, answers)
    assert len(telegram.sent_to(GROUP)) >= len(in_group)


async def test_help_has_an_admin_section_for_admins_only(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    ann, admin = telegram.user(ANN, "Ann"), telegram.user(ADMIN, "Admin")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN), PARLEY_ALLOWED=str(ANN))
    async with running_bot(env):
        telegram.push_text(ADMIN, admin, "/help")
        telegram.push_text(ANN, ann, "/help")
        [for_admin], [for_ann] = await telegram.wait_sent(ADMIN), await telegram.wait_sent(ANN)
    assert for_admin.text == registry.help_text(registry.Menu.ADMINS)
    assert for_ann.text == registry.help_text(registry.Menu.PRIVATE_CHATS)
    assert for_admin.text.startswith(for_ann.text + "\n\n" + texts.HELP_ADMINS + "\n/allow ID, /deny ID – ")
    assert "/users" in for_admin.text and "/users" not in for_ann.text
    assert texts.HELP_IN_GROUPS in for_ann.text and "/summary" not in for_ann.text


# --- 7. admins learn of strangers -----------------------------------------------------------------------


async def test_admins_hear_of_a_stranger_once_a_day_and_let_them_in_with_a_tap(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    admin = telegram.user(ADMIN, "Admin")
    mia = telegram.user(STRANGER, "Mia", username="mia_k", language_code="de")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN))
    async with running_bot(env):
        telegram.push_text(ADMIN, admin, "/start")
        await telegram.wait_sent(ADMIN)
        telegram.push_text(STRANGER, mia, "hallo?")
        telegram.push_text(STRANGER, mia, "hallo??")
        notice = (await telegram.wait_sent(ADMIN, count=2))[-1]
        await telegram.wait_consumed()
    assert notice.text == texts.stranger_wrote("Mia (@mia_k)", STRANGER)
    assert notice.text == "Mia (@mia_k) (user id 333) wrote to me, but isn't allowed to use me. Let them?"
    assert [(b["text"], b["callback_data"]) for b in buttons(notice)] == [
        ("Allow", "stranger:allow:333:de"),
        ("Ignore", "stranger:ignore:333:de"),
    ]
    async with running_bot(env):  # remembered across a restart: one message a day per stranger
        telegram.push_text(STRANGER, mia, "noch da?")
        telegram.push_text(444, telegram.user(444, "Leo"), "hi")
        [_, _, about_leo] = await telegram.wait_sent(ADMIN, count=3)
        assert about_leo.text == texts.stranger_wrote("Leo", 444)

        telegram.push_text(ADMIN, admin, "/users")
        report = (await telegram.wait_sent(ADMIN, count=4))[-1]
        assert "\n\nRefused lately:\n444: last refused " in report.text
        assert f"\n{STRANGER}: last refused " in report.text and "(messages refused: 3)" in report.text
        assert [(b["text"], b["callback_data"]) for b in buttons(report)] == [
            ("Allow 444", "stranger:row:444:"),
            (f"Allow {STRANGER}", f"stranger:row:{STRANGER}:"),
        ]

        telegram.push_callback(ADMIN, admin, notice.message_id, "stranger:allow:333:de")
        allowed = texts.stranger_allowed(STRANGER)
        await telegram.wait_for(lambda: telegram.message(ADMIN, notice.message_id)["text"] == allowed, what=allowed)
        told = (await telegram.wait_sent(STRANGER, count=2))[-1]
        assert told.text == in_("de", lambda: texts.YOU_ARE_ALLOWED) != texts.YOU_ARE_ALLOWED
        telegram.push_text(STRANGER, mia, "danke!")
        assert (await telegram.wait_sent(STRANGER, count=3))[-1].kind == "voice"

        telegram.push_callback(ADMIN, admin, about_leo.message_id, "stranger:ignore:444:")
        ignored = texts.stranger_ignored(444)
        await telegram.wait_for(lambda: telegram.message(ADMIN, about_leo.message_id)["text"] == ignored, what=ignored)
        assert ignored == "Ignored: 444 still can't use me. /allow 444 lets them in later."

        # From /users: the row's Allow lets Leo in; the report stays, its keyboard loses the rows now allowed.
        telegram.push_callback(ADMIN, admin, report.message_id, "stranger:row:444:")
        done = (await telegram.wait_sent(ADMIN, count=5))[-1]
        assert done.text == texts.stranger_allowed(444)
        await telegram.wait_for(lambda: "reply_markup" not in telegram.message(ADMIN, report.message_id).payload
                                or not telegram.message(ADMIN, report.message_id).payload["reply_markup"],
                                what="the /users buttons gone")  # fmt: skip
        assert telegram.message(ADMIN, report.message_id)["text"] == report.text
        assert (await telegram.wait_sent(444, count=2))[-1].text == texts.YOU_ARE_ALLOWED


async def test_a_stranger_the_admins_could_not_hear_of_is_reported_once_an_admin_can_be_reached(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    admin = telegram.user(ADMIN, "Admin")
    mia = telegram.user(STRANGER, "Mia")
    env = env_for(telegram, openai_api, tmp_path, PARLEY_ADMINS=str(ADMIN))
    async with running_bot(env):
        telegram.push_text(ADMIN, admin, "/start")
        await telegram.wait_sent(ADMIN)
        await telegram.wait_consumed()
        reached = len(telegram.sent_to(ADMIN))
        telegram.block(ADMIN)  # Telegram refuses every message to the one admin (403)
        telegram.push_text(STRANGER, mia, "hello?")
        await telegram.wait_sent(STRANGER)
        await telegram.wait_consumed()
        refused = lambda: [c for c in telegram.calls_of("sendMessage")  # noqa: E731
                           if str(c.params.get("chat_id")) == str(ADMIN) and c.finished and not c.ok]  # fmt: skip
        await telegram.wait_for(lambda: bool(refused()), what="the notice refused")
        telegram.block(ADMIN, False)
        telegram.push_text(STRANGER, mia, "anyone?")  # not counted as told: this one reaches the admin
        notice = (await telegram.wait_sent(ADMIN, count=reached + 1))[-1]
    assert notice.text == texts.stranger_wrote("Mia", STRANGER)


async def test_refusal_notices_are_kept_on_both_engines(database_target: Path | str) -> None:
    storage = await Storage.open(database_target)
    try:
        access = storage.access
        assert await access.note_refusal(STRANGER, quiet_seconds=3600, now=1000.0) is True
        assert await access.note_admins_told(STRANGER, quiet_seconds=DAY, now=1000.0) is True
        assert await access.note_refusal(STRANGER, quiet_seconds=3600, now=2000.0) is False
        assert await access.note_admins_told(STRANGER, quiet_seconds=DAY, now=2000.0) is False
        assert await access.note_admins_told(STRANGER, quiet_seconds=DAY, now=1000.0 + DAY) is True
        assert await access.note_refusal(444, quiet_seconds=3600, now=1500.0) is True
        recent = await access.recent_refusals()
        assert [(r.user_id, r.refused, r.last_at) for r in recent] == [(STRANGER, 2, 2000.0), (444, 1, 1500.0)]
        assert await access.note_group_notice(GROUP, quiet_seconds=DAY, now=1000.0) is True
        assert await access.note_group_notice(GROUP, quiet_seconds=DAY, now=1000.0 + DAY - 1) is False
        assert await access.note_group_notice(GROUP, quiet_seconds=DAY, now=1000.0 + DAY) is True
    finally:
        await storage.close()
