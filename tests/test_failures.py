"""Every failure reaches the user as one short plain message, and the bot keeps serving."""

from __future__ import annotations

import random

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot
from parley.errors import AudioError, ModelBusy, ModelError, ModelRejected, ModelTimeout, ModelUnavailable

CHAT = 1001
TWENTY_MB = 20 * 1024 * 1024


async def still_serving(telegram: FakeTelegram, chat_id: int, user: dict, already: int) -> None:
    """After a failure, the next message in the same chat is answered normally."""
    telegram.push_text(chat_id, user, "are you still there?")
    sent = await telegram.wait_sent(chat_id, count=already + 1)
    assert sent[-1].kind == "voice" and sent[-1].caption == "You said: are you still there?"


def assert_plain(message_text: str) -> None:
    assert "Traceback" not in message_text and "Error" not in message_text
    assert len(message_text) < 300


@pytest.mark.parametrize(
    "garbage",
    [b"", random.Random(7).randbytes(20_000), b"OggS" + random.Random(8).randbytes(5_000), b"not audio" * 100],
    ids=["zero-bytes", "random-bytes", "corrupt-ogg", "text"],
)
async def test_unreadable_audio_gets_a_plain_answer_and_no_model_call(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, garbage: bytes
) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, garbage, duration=3)
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "text" and answer.text == AudioError.user_message
    assert answer.reply_to_message_id == note
    assert_plain(answer.text)
    assert openai_api.requests == []
    await still_serving(telegram, CHAT, ann, already=1)


async def test_too_large_voice_note_is_refused_before_downloading(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, make_voice_ogg(1.0), duration=1500, file_size=TWENTY_MB + 1)
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.text == texts.TOO_LARGE and "20 MB" in answer.text
    assert telegram.calls_of("getFile") == []
    assert openai_api.requests == []
    await still_serving(telegram, CHAT, ann, already=1)


async def test_file_telegram_refuses_as_too_big_gets_the_same_answer(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    """A note whose size the update did not declare: Telegram's own getFile refusal is translated."""
    ann = telegram.user(CHAT, "Ann")
    file_id, unique_id = telegram.add_file(b"x", file_size=TWENTY_MB + 5)
    telegram.push_message(CHAT, ann, {"voice": {"file_id": file_id, "file_unique_id": unique_id, "duration": 100}})
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.text == texts.TOO_LARGE
    assert openai_api.requests == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [(500, ModelUnavailable.user_message), (429, ModelBusy.user_message), (400, ModelRejected.user_message)],
)
async def test_model_errors_become_plain_messages(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, status: int, expected: str
) -> None:
    openai_api.fail_next(status, message="boom from the stand-in")
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.text == expected
    assert "boom" not in answer.text
    await still_serving(telegram, CHAT, ann, already=1)


async def test_model_errors_are_retried_by_the_sdk_first(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_MODEL_RETRIES="2")
    openai_api.fail_next(500, times=2)
    async with running_bot(env):
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
        [answer] = await telegram.wait_sent(CHAT, timeout=30)
    assert answer.kind == "voice"  # the third attempt succeeded
    assert len(openai_api.chat_requests()) == 3


async def test_a_voice_turn_retried_sends_the_whole_note_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path
) -> None:
    """The note's request body is dropped once sent (it is large): a retry must still carry all of it."""
    env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_MODEL_RETRIES="2")
    openai_api.fail_next(500, times=1)
    async with running_bot(env):
        telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), make_voice_ogg(4.0))
        [answer] = await telegram.wait_sent(CHAT, timeout=30)
    assert answer.kind == "voice"
    first, second = openai_api.chat_requests()
    assert first.status == 500 and second.status == 200
    assert [round(seconds, 1) for seconds in second.audio_input_seconds] == [4.0]


async def test_model_that_keeps_failing_after_retries(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_MODEL_RETRIES="1")
    openai_api.fail_next(503, times=5)
    async with running_bot(env):
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
        [answer] = await telegram.wait_sent(CHAT, timeout=30)
    assert answer.text == ModelUnavailable.user_message
    assert answer.text == "The voice model had a problem just now. Please try again in a minute."
    assert len(openai_api.chat_requests()) == 2


async def test_model_timeout(telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_MODEL_TIMEOUT_SECONDS="1")
    openai_api.hang_next()
    async with running_bot(env):
        ann = telegram.user(CHAT, "Ann")
        telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
        [answer] = await telegram.wait_sent(CHAT)
        assert answer.text == ModelTimeout.user_message
        await still_serving(telegram, CHAT, ann, already=1)


async def test_wrong_api_key_is_a_plain_message_without_the_key(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "p.db", OPENAI_API_KEY="sk-wrong-key-12345678")
    async with running_bot(env):
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
        [answer] = await telegram.wait_sent(CHAT)
    assert answer.text == ModelError.user_message


async def test_reply_without_audio_is_sent_as_text(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    openai_api.omit_audio_next()
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_text(CHAT, ann, "hello")
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "text"
    assert answer.text == "You said: hello"
    assert answer.reply_to_message_id == note
    turns = await parley.services.storage.turns.recent(CHAT, ann["id"], 10)
    assert [t.text for t in turns] == ["hello", "You said: hello"]


async def test_failed_transcription_stores_a_placeholder_and_the_reply_still_comes(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    openai_api.fail_next(500, path="transcriptions")
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "voice"
    turns = await parley.services.storage.turns.recent(CHAT, ann["id"], 10)
    assert turns[0].text == "[voice message, 2 s]"


async def test_unsupported_message_types_are_answered_with_what_is_accepted(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_message(
        CHAT,
        ann,
        {
            "sticker": {
                "file_id": "sticker-1",
                "file_unique_id": "s1",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            }
        },
    )
    telegram.push_message(CHAT, ann, {"location": {"latitude": 52.5, "longitude": 13.4}})
    sent = await telegram.wait_sent(CHAT, count=2)
    assert [m.text for m in sent] == [texts.UNSUPPORTED, texts.UNSUPPORTED]
    assert openai_api.requests == []


async def test_user_who_refuses_voice_messages_gets_the_words(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    telegram.forbid_voice(CHAT)
    note = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "text" and answer.text == "You said: hello"
    assert answer.reply_to_message_id == note


async def test_long_transcript_follows_the_voice_as_text(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    long_answer = "This is a long spoken answer. " * 60  # ~1,800 characters: too long for a caption
    openai_api.queue_replies(long_answer.strip())
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "tell me a story")
    voice, follow_up = await telegram.wait_sent(CHAT, count=2)
    assert voice.kind == "voice" and not voice.caption
    assert follow_up.kind == "text" and follow_up.text == long_answer.strip()
    assert follow_up.reply_to_message_id == voice.message_id


async def test_very_long_text_reply_is_split_at_the_telegram_limit(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    words = " ".join(f"word{i}" for i in range(1200))  # ~9,000 characters
    openai_api.omit_audio_next()
    openai_api.queue_replies(words)
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "talk a lot")
    sent = await telegram.wait_sent(CHAT, count=3)
    assert all(m.kind == "text" and len(m.text) <= 4096 for m in sent)
    assert " ".join(m.text for m in sent) == words


async def test_telegram_flood_limit_is_waited_out(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    telegram.fail_next("sendVoice", error_code=429, description="Too Many Requests: retry after 1", retry_after=1)
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "hello")
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.kind == "voice"
    assert len(telegram.calls_of("sendVoice")) == 2
