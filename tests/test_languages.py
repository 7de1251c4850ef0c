"""Every user in their own language, end to end against the lab: a German, a Japanese and an Arabic speaker
get every flow in theirs; /language switches the very next message; groups speak what their admin chose;
menus and descriptions are published per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import registry, texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot
from parley.errors import ModelBusy, ModelError, ModelRejected, ModelTimeout, ModelUnavailable
from parley.i18n.catalog import FSI, LRI, PDI, using
from parley.i18n.locales import SHIPPED, english_name, own_name, telegram_code
from parley.periods import Schedule
from tests.citing_model import CitingModel

CHAT = 1001
GROUP, ANN, BOB = -1001, 11, 22
BOT = "@parley_test_bot"

SPEAKERS = {
    # Telegram's language_code → the locale, and what a native speaker reads on /forget's buttons.
    "de": ("de", ["Alles löschen", "Abbrechen"]),
    "ja": ("ja", ["すべて削除", "キャンセル"]),
    "ar-SA": ("ar", ["احذف كل شيء", "إلغاء"]),
}
SUMMARY_WORD = {"de": "Zusammenfassung von", "ja": "要約", "ar": "ملخّص"}


def buttons(message) -> list[dict]:
    return [button for row in message.reply_markup["inline_keyboard"] for button in row]


def in_(locale: str, make):
    with using(locale):
        return make()


@pytest.mark.parametrize("code", list(SPEAKERS))
async def test_a_speaker_gets_every_private_flow_in_their_language(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, code: str
) -> None:
    locale, forget_buttons = SPEAKERS[code]
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_MODEL_RETRIES="0")
    person = telegram.user(CHAT, "Mia", language_code=code)
    async with running_bot(env) as bot:
        telegram.push_text(CHAT, person, "/start")
        telegram.push_text(CHAT, person, "/help")
        start, help_ = await telegram.wait_sent(CHAT, count=2)
        assert start.text == in_(locale, lambda: texts.START)
        assert help_.text == in_(locale, registry.help_text) and help_.text != registry.help_text()

        telegram.push_voice(CHAT, person, make_voice_ogg(1.5))  # a voice turn: the reply is the model's words
        turn = (await telegram.wait_sent(CHAT, count=3))[-1]
        assert turn.kind == "voice" and turn.caption == "I heard 1.5 seconds of audio."

        openai_api.fail_next(500, times=3)  # an error: said in their language, with "Try again" in it too
        telegram.push_text(CHAT, person, "are you there?")
        failure = (await telegram.wait_sent(CHAT, count=4))[-1]
        family = (ModelError, ModelBusy, ModelUnavailable, ModelTimeout, ModelRejected)
        assert failure.text in {in_(locale, lambda e=e: texts.explain(e())) for e in family}
        assert failure.text not in {e.user_message for e in family}
        assert [b["text"] for b in buttons(failure)] == [in_(locale, lambda: texts.RETRY)]

        telegram.push_text(CHAT, person, "/voice")  # settings
        telegram.push_text(CHAT, person, "/mode")
        voices, mode = (await telegram.wait_sent(CHAT, count=6))[-2:]
        offered = bot.settings.model.voices
        assert voices.text == in_(locale, lambda: texts.voice_list("alloy", offered))
        assert mode.text == in_(locale, lambda: texts.mode_usage("voice"))

        telegram.push_text(CHAT, person, "/usage")
        usage = (await telegram.wait_sent(CHAT, count=7))[-1]
        header = in_(locale, lambda: texts._("Your usage (days and months in {zone}):", zone="UTC"))
        assert usage.text.startswith(header) and "Your usage" not in usage.text

        telegram.push_text(CHAT, person, "/forget")
        confirm = (await telegram.wait_sent(CHAT, count=8))[-1]
        assert confirm.text == in_(locale, lambda: texts.FORGET_CONFIRM)
        labels = [b["text"] for b in buttons(confirm)]
        assert labels == in_(locale, lambda: [texts.FORGET_YES, texts.FORGET_NO]) == forget_buttons
        telegram.push_callback(CHAT, person, confirm.message_id, "forget:yes")
        done = in_(locale, lambda: texts.forget_done(2))
        await telegram.wait_for(lambda: telegram.message(CHAT, confirm.message_id)["text"] == done, what=done)

        telegram.push_text(CHAT, person, "/help")  # forgotten, and still spoken to in the app's language
        assert (await telegram.wait_sent(CHAT, count=9))[-1].text == help_.text

    if locale == "ar":  # right to left: commands and values sit in isolates inside the Arabic text
        assert f"{LRI}/help{PDI}" in start.text
        assert f"{FSI}alloy{PDI}" in voices.text


async def test_language_switches_the_very_next_message(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann", language_code="en")
    telegram.push_text(CHAT, ann, "/language")
    [picker] = await telegram.wait_sent(CHAT)
    assert picker.text == "Which language should I speak with you?"
    labels = {b["text"]: b["callback_data"] for b in buttons(picker)}
    assert {"• English", "Deutsch", "Español", "日本語", "العربية", "Português (Brasil)"} <= set(labels)
    assert len(labels) == len(SHIPPED)

    telegram.push_callback(CHAT, ann, picker.message_id, labels["Deutsch"])
    telegram.push_text(CHAT, ann, "/start")
    start = (await telegram.wait_sent(CHAT, count=2))[-1]
    settled = telegram.message(CHAT, picker.message_id)["text"]
    assert settled == "Erledigt: Ab jetzt spreche ich Deutsch mit dir."
    assert start.text == in_("de", lambda: texts.START)

    telegram.push_text(CHAT, ann, "/language ja")  # typed, by tag; kept across restarts (checked below)
    assert (await telegram.wait_sent(CHAT, count=3))[-1].text == "完了：これからは 日本語 でお話しします。"
    telegram.push_text(CHAT, ann, "/nonsense")
    assert (await telegram.wait_sent(CHAT, count=4))[-1].text == in_("ja", lambda: texts.UNKNOWN_COMMAND)
    stored = await parley.services.storage.users.preferences(CHAT)
    assert stored.language == "ja"


async def test_unknown_and_regional_app_languages_fall_back(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_LANGUAGE="es")
    async with running_bot(env):
        telegram.push_text(1, telegram.user(1, "Nl", language_code="nl"), "/start")  # not shipped: PARLEY_LANGUAGE
        telegram.push_text(2, telegram.user(2, "Br", language_code="pt-br"), "/start")
        telegram.push_text(3, telegram.user(3, "At", language_code="de-AT"), "/start")  # regional → base
        [nl], [br], [at] = [await telegram.wait_sent(chat) for chat in (1, 2, 3)]
    assert nl.text == in_("es", lambda: texts.START)
    assert br.text == in_("pt_BR", lambda: texts.START)
    assert at.text == in_("de", lambda: texts.START)


async def test_menus_and_descriptions_are_published_for_every_language(parley, telegram: FakeTelegram) -> None:
    for locale in SHIPPED:
        for scope, which in (("all_private_chats", registry.Menu.PRIVATE_CHATS),
                             ("all_group_chats", registry.Menu.GROUP_CHATS), ("default", registry.Menu.PRIVATE_CHATS)):
            menu = telegram.commands({"type": scope}, language_code=telegram_code(locale))
            wanted = in_(locale, lambda which=which: registry.menu(which))
            assert [(c["command"], c["description"]) for c in menu] == [(c.command, c.description) for c in wanted]
        assert telegram.profile_text("description", telegram_code(locale)) == in_(locale, lambda: texts.DESCRIPTION)
        assert telegram.profile_text("short_description", telegram_code(locale)) == in_(
            locale, lambda: texts.SHORT_DESCRIPTION
        )
    german = {c["command"]: c["description"] for c in telegram.commands(language_code="de")}
    assert german["voice"] == "Die Stimme wählen, mit der Parley spricht"
    assert telegram.commands()  # and a default list for every other app language


@pytest.mark.parametrize(("code", "locale"), [("de", "de"), ("ja", "ja"), ("ar", "ar")])
async def test_a_group_gets_summaries_and_digests_in_the_language_its_admin_chose(
    openai_api: FakeOpenAI, tmp_path: Path, code: str, locale: str
) -> None:
    async with FakeTelegram(can_read_all_group_messages=True) as telegram:
        openai_api.reply_text = CitingModel()
        env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_ALLOWED=str(GROUP))
        telegram.add_chat(GROUP, chat_type="supergroup")
        telegram.set_member_status(GROUP, ANN, "administrator")
        ann, bob = telegram.user(ANN, "Ann", language_code="en"), telegram.user(BOB, "Bob", language_code="en")
        async with running_bot(env) as bot:
            telegram.push_text(GROUP, bob, f"/language {code}", chat_type="supergroup")  # not an admin
            telegram.push_text(GROUP, ann, f"/language {code}", chat_type="supergroup")
            refused, chosen = await telegram.wait_sent(GROUP, count=2)
            assert refused.text == "Only the group's admins can choose its language."
            said = "Done: I'll speak {language} in this group."
            assert chosen.text == in_(locale, lambda: texts._(said, language=own_name(locale)))

            telegram.push_text(GROUP, bob, "we ship on Monday", chat_type="supergroup")
            telegram.push_text(GROUP, ann, "/summary", chat_type="supergroup")
            status, summary, _points = (await telegram.wait_sent(GROUP, count=5))[-3:]  # the voice, then its points
            assert status.text == in_(locale, lambda: texts.reading(1, None))
            assert summary.kind == "voice" and "Summary of" not in summary.caption
            spoken = openai_api.chat_requests()[-1].json["messages"][0]["content"]
            assert f"Speak in {english_name(locale)}," in spoken

            telegram.push_text(GROUP, ann, "/digest 18:30 Europe/Berlin", chat_type="supergroup")
            set_ = (await telegram.wait_sent(GROUP, count=6))[-1]
            when = in_(locale, lambda: Schedule("18:30", "Europe/Berlin").describe())
            assert set_.text == in_(locale, lambda: texts.digest_set(when)) and "every day" not in set_.text
            telegram.push_text(GROUP, bob, "and the release notes are done", chat_type="supergroup")
            await telegram.wait_consumed()
            assert bot.app is not None and bot.app.job_queue is not None
            [job] = bot.app.job_queue.get_jobs_by_name(f"digest:{GROUP}")
            await job.run(bot.app)
            digest = (await telegram.wait_sent(GROUP, count=9))[-2]
            assert digest.kind == "voice"
            header = digest.caption.split("\n", 1)[0]
            assert SUMMARY_WORD[locale] in header and "UTC" in header and "Summary of" not in header
        assert SUMMARY_WORD[locale] in summary.caption
    points = [r for r in openai_api.chat_requests() if r.json["model"] == "gpt-4o-mini"]
    assert points and all(f"Write in {english_name(locale)}," in r.json["messages"][0]["content"] for r in points)
