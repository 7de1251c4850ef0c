"""The Telegram stand-in's profile, membership, button and webhook behaviour, driven by the real
python-telegram-bot: menus per scope and language, descriptions, my_chat_member, deep links, alerts,
and webhook deliveries in parallel with duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BotCommandScopeChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.error import BadRequest, Forbidden

from lab import FakeTelegram

ANN, BOB = 4242, 4343
GROUP = -1005


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(telegram.token, base_url=telegram.base_url, base_file_url=telegram.base_file_url) as real_bot:
        yield real_bot


async def test_menus_per_scope_and_language(telegram: FakeTelegram, bot: Bot) -> None:
    ann = telegram.user(ANN, "Ann", language_code="de")
    bob = telegram.user(BOB, "Bob", language_code="pt-br")
    telegram.add_chat(ANN)
    telegram.add_chat(GROUP, chat_type="supergroup")
    telegram.set_member_status(GROUP, BOB, "administrator")
    assert await bot.set_my_commands([BotCommand("help", "Help")])
    assert await bot.set_my_commands([BotCommand("voice", "Voice")], scope=BotCommandScopeAllPrivateChats())
    assert await bot.set_my_commands(
        [BotCommand("voice", "Stimme")], scope=BotCommandScopeAllPrivateChats(), language_code="de"
    )
    assert await bot.set_my_commands([BotCommand("summary", "Summary")], scope=BotCommandScopeAllGroupChats())
    assert await bot.set_my_commands(
        [BotCommand("summary", "Resumo"), BotCommand("allow", "Permitir")],
        scope=BotCommandScopeAllChatAdministrators(),
        language_code="pt",
    )
    assert await bot.set_my_commands([BotCommand("users", "Users")], scope=BotCommandScopeChat(ANN))
    assert await bot.set_my_commands([BotCommand("mine", "Mine")], scope=BotCommandScopeChatMember(GROUP, ANN))

    got = await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="de")
    assert [(c.command, c.description) for c in got] == [("voice", "Stimme")]
    assert await bot.get_my_commands(scope=BotCommandScopeAllPrivateChats(), language_code="fr") == ()
    assert telegram.commands({"type": "chat", "chat_id": ANN}) == [{"command": "users", "description": "Users"}]

    # What each person sees, resolved as Telegram resolves scopes and languages.
    assert telegram.menu(ANN, ann) == ["users"]  # her chat's own scope comes first
    assert telegram.menu(BOB, bob) == ["voice"]  # all private chats; no list in Portuguese there
    assert telegram.menu(GROUP, bob) == ["summary", "allow"]  # an administrator, in his language
    assert telegram.menu(GROUP, bob, language_code="en") == ["summary"]
    assert telegram.menu(GROUP, ann) == ["mine"]
    assert telegram.menu(GROUP, telegram.user(777, "Cy")) == ["summary"]

    assert await bot.delete_my_commands(scope=BotCommandScopeChat(ANN))
    assert telegram.menu(ANN, ann) == ["voice"]
    assert await bot.set_my_commands([], scope=BotCommandScopeAllPrivateChats(), language_code="de")
    assert telegram.menu(ANN, ann) == ["voice"] and telegram.menu(ANN, ann, language_code="") == ["voice"]


async def test_menu_rejections(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.user(ANN, "Ann")  # known as a user, but has never opened a chat with the bot
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.set_my_commands([BotCommand("users", "Users")], scope=BotCommandScopeChat(ANN))
    with pytest.raises(BadRequest, match="Invalid language code specified"):
        await bot.set_my_commands([BotCommand("help", "Hilfe")], language_code="zh-hans")
    body = {"commands": [{"command": "a", "description": "b"}], "scope": {"type": "everyone"}}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{telegram.base_url}{telegram.token}/setMyCommands", json=body) as answer,
    ):
        assert answer.status == 400
        assert (await answer.json())[
            "description"
        ] == "Bad Request: can't parse BotCommandScope: Unsupported type specified"
    telegram.push_text(ANN, ANN, "/start")
    assert await bot.set_my_commands([BotCommand("users", "Users")], scope=BotCommandScopeChat(ANN))


async def test_descriptions_per_language_within_telegram_limits(telegram: FakeTelegram, bot: Bot) -> None:
    assert await bot.set_my_description("A voice assistant." + " " * 0)
    assert await bot.set_my_description("Ein Sprachassistent.", language_code="de")
    assert await bot.set_my_short_description("Talk to me.")
    assert (await bot.get_my_description(language_code="de")).description == "Ein Sprachassistent."
    assert (await bot.get_my_description()).description == "A voice assistant."
    assert (await bot.get_my_short_description(language_code="ja")).short_description == "Talk to me."
    assert telegram.profile_text("description", "de") == "Ein Sprachassistent."
    assert telegram.profile_text("short_description", "ja") is None

    assert await bot.set_my_description("x" * 512)
    with pytest.raises(BadRequest):
        await bot.set_my_description("x" * 513)
    assert await bot.set_my_short_description("y" * 120, language_code="de")
    with pytest.raises(BadRequest):
        await bot.set_my_short_description("y" * 121)
    with pytest.raises(BadRequest, match="Invalid language code specified"):
        await bot.set_my_description("Olá", language_code="pt-br")
    assert await bot.set_my_description("", language_code="de")
    assert telegram.profile_text("description", "de") is None


async def test_the_bot_added_to_a_group_and_removed(telegram: FakeTelegram, bot: Bot) -> None:
    ann = telegram.user(ANN, "Ann")
    message_id = telegram.push_bot_added(GROUP, ann, title="Climbing")
    updates = await bot.get_updates(timeout=0)
    member_update, service = updates
    change = member_update.my_chat_member
    assert change is not None and change.from_user.id == ANN and change.chat.title == "Climbing"
    assert (change.old_chat_member.status, change.new_chat_member.status) == ("left", "member")
    assert change.new_chat_member.user.id == telegram.bot_id
    assert service.message is not None and service.message.message_id == message_id
    assert [u.id for u in service.message.new_chat_members] == [telegram.bot_id]
    assert await bot.send_message(GROUP, "Hello, group")

    telegram.push_bot_status(GROUP, ann, "member", "administrator")
    telegram.push_bot_status(GROUP, ann, "administrator", "left")
    promoted, removed = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert promoted.my_chat_member is not None
    assert promoted.my_chat_member.new_chat_member.status == "administrator"
    assert removed.my_chat_member is not None and removed.my_chat_member.new_chat_member.status == "left"
    with pytest.raises(Forbidden, match="kicked from the group chat"):
        await bot.send_message(GROUP, "still here?")


async def test_deep_links_open_the_private_chat_with_a_payload(telegram: FakeTelegram, bot: Bot) -> None:
    ann = telegram.user(ANN, "Ann")
    telegram.open_link(ann, f"https://t.me/{telegram.bot_username}?start=settings-voice_2")
    [update] = await bot.get_updates(timeout=0)
    assert update.message is not None and update.message.chat.id == ANN
    assert update.message.text == "/start settings-voice_2"
    assert update.message.entities[0].type == "bot_command" and update.message.entities[0].length == 6
    with pytest.raises(AssertionError):
        telegram.open_link(ann, f"https://t.me/{telegram.bot_username}?start=no spaces")
    with pytest.raises(AssertionError):
        telegram.open_link(ann, "https://t.me/other_bot?start=x")
    with pytest.raises(AssertionError):
        telegram.open_link(ann, f"https://t.me/{telegram.bot_username}?start=" + "a" * 65)


async def test_callback_answers_with_alerts(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.add_chat(ANN)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Pick", callback_data="voice:alloy")]])
    sent = await bot.send_message(ANN, "Choose", reply_markup=markup)
    first = telegram.push_callback(ANN, ANN, sent.message_id, "voice:alloy")
    second = telegram.push_callback(ANN, ANN, sent.message_id, "voice:alloy")
    assert await bot.answer_callback_query(first, text="Only the person who asked can choose.", show_alert=True)
    assert telegram.callback_answers[first]["show_alert"] is True
    assert telegram.callback_answers[first]["text"] == "Only the person who asked can choose."
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(first)
    with pytest.raises(BadRequest):
        await bot.answer_callback_query(second, text="é" * 201, show_alert=True)
    assert await bot.answer_callback_query(second, text="é" * 200)


async def test_webhook_posts_in_parallel_with_duplicates(telegram: FakeTelegram, bot: Bot) -> None:
    received: list[tuple[str, int, str | None]] = []

    def receiver(name: str) -> web.Application:
        async def handle(request: web.Request) -> web.Response:
            update = await request.json()
            received.append((name, int(update["update_id"]), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
            await asyncio.sleep(0.05)  # still answering while the other copies arrive
            return web.Response(status=200 if name == "a" else 503)

        app = web.Application()
        app.router.add_post("/hook/path", handle)
        return app

    runners = []
    addresses = []
    for name in ("a", "b"):
        runner = web.AppRunner(receiver(name))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        addresses.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        assert await bot.set_webhook("https://bot.example/hook/path", secret_token="s3cret-token")
        ids = [telegram.push_text(ANN, ANN, f"message {i}") for i in range(4)]
        deliveries = await telegram.post_updates(*addresses, copies=2)
        assert len(deliveries) == 8 and len(received) == 8
        for update_id in {d.update_id for d in deliveries}:
            assert sorted(d.address for d in deliveries if d.update_id == update_id) == sorted(addresses)
        assert {secret for _, _, secret in received} == {"s3cret-token"}
        assert telegram.pending_updates == 0  # each was answered 2xx by "a" once
        assert len(ids) == 4

        telegram.push_text(ANN, ANN, "forged")
        [forged] = await telegram.post_updates(addresses[1], secret="wrong")
        assert forged.status == 503 and received[-1][2] == "wrong" and telegram.pending_updates == 1
    finally:
        for runner in runners:
            await runner.cleanup()
