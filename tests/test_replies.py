"""Every answer goes through the job's Run: when Telegram will not take a document, a photo, a voice note or a
reply, the person is told so with the Try again button, and the tap sends it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot import texts
from bot.replies import NotSent
from lab import FakeOpenAI, FakeTelegram, SentMessage
from lab.harness import lab_env, running_bot

ANN, ADMIN = 2001, 2002


async def try_again(telegram: FakeTelegram, chat: int, user: dict, notice_at: int) -> None:
    """The notice at `notice_at` says the answer could not be sent, with Try again, and is tapped."""
    notice = telegram.sent_to(chat)[notice_at]
    assert notice.kind == "text" and notice.text == NotSent.user_message
    [[button]] = notice.reply_markup["inline_keyboard"]
    assert button["text"] == texts.RETRY
    telegram.push_callback(chat, user, notice.message_id, button["callback_data"])


async def refused_once(telegram: FakeTelegram, user: dict, method: str, text: str) -> tuple[int, SentMessage]:
    """Ann sends `text` while Telegram refuses the answer's `method` once: she is told, with Try again, and
    her tap delivers it. Her message's id, and the answer."""
    telegram.fail_next(method)
    message_id = telegram.push_text(ANN, user, text)
    await telegram.wait_sent(ANN)
    await try_again(telegram, ANN, user, 0)
    return message_id, (await telegram.wait_sent(ANN, count=2))[1]


async def test_an_export_telegram_refuses_gets_try_again(parley, telegram: FakeTelegram) -> None:
    _, document = await refused_once(telegram, telegram.user(ANN, "Ann"), "sendDocument", "/export")
    assert document.kind == "document" and document.caption == texts.EXPORT_CAPTION
    assert json.loads(document.data)["user"]["id"] == ANN
    assert len(telegram.calls_of("sendDocument")) == 2


async def test_a_stats_chart_telegram_refuses_gets_try_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ADMINS=str(ADMIN))):
        admin = telegram.user(ADMIN, "Admin")
        telegram.fail_next("sendPhoto")
        telegram.push_text(ADMIN, admin, "/stats")
        report, _ = await telegram.wait_sent(ADMIN, count=2)
        assert report.kind == "text" and "Last 30 days" in report.text
        await try_again(telegram, ADMIN, admin, 1)
        sent = await telegram.wait_sent(ADMIN, count=4)
    assert [m.kind for m in sent] == ["text", "text", "text", "photo"]
    assert sent[3].caption == texts.STATS_CHART_CAPTION


async def test_a_paid_reply_telegram_refuses_gets_try_again(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    note, reply = await refused_once(telegram, telegram.user(ANN, "Ann"), "sendVoice", "hello there")
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    assert reply.caption == "You said: hello there"
    assert len(openai_api.chat_requests()) == 2  # the tap asked again


async def test_spoken_text_telegram_refuses_gets_try_again(parley, telegram: FakeTelegram) -> None:
    command, spoken = await refused_once(telegram, telegram.user(ANN, "Ann"), "sendVoice", "/speak good morning")
    assert spoken.kind == "voice" and spoken.reply_to_message_id == command


@pytest.mark.sees_all_group_messages
async def test_a_search_page_telegram_refuses_gets_try_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    group = -1001987654321
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=f"{group},{ANN}")):
        ann = telegram.user(ANN, "Ann")
        telegram.push_text(group, ann, "the café reopens on Monday", chat_type="supergroup")
        await telegram.wait_consumed()
        telegram.fail_next("sendMessage")
        command = telegram.push_text(group, ann, "/find cafe", chat_type="supergroup")
        [notice] = await telegram.wait_sent(group)
        assert notice.text == NotSent.user_message and notice.reply_to_message_id == command
        [[button]] = notice.reply_markup["inline_keyboard"]
        telegram.push_callback(group, ann, notice.message_id, button["callback_data"])
        page = (await telegram.wait_sent(group, count=2))[1]
    assert page.parse_mode == "HTML" and "the café reopens on Monday" in page.text
    assert page.reply_to_message_id == command
