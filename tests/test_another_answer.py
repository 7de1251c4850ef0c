""" "Try another answer" and /retry end to end against the lab: a new answer to the same message replaces
the old exchange in the context (the old answer is gone from the next request, the question is not there
twice); only the latest reply carries the button; /new starts afresh like /reset."""

from __future__ import annotations

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg

CHAT = 1001


def button_data(message) -> list[tuple[str, str]]:
    markup = message.reply_markup or {}
    return [(b["text"], b["callback_data"]) for row in markup.get("inline_keyboard", []) for b in row]


def history(openai_api: FakeOpenAI) -> list[tuple[str, str]]:
    """The last model request's messages after the system prompt, as (role, text)."""
    return [(m["role"], m["content"]) for m in openai_api.chat_requests()[-1].json["messages"][1:]]


async def test_another_answer_replaces_the_old_one_in_the_context(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann", language_code="en")
    openai_api.queue_replies("Paris.", "Madrid, I think.", "Madrid.", "You're welcome!", "Any time!")
    first_id = telegram.push_text(CHAT, ann, "Capital of France?")
    [first] = await telegram.wait_sent(CHAT)
    assert first.caption == "Paris."
    assert button_data(first) == [("Try another answer", f"again:{ann['id']}:{first_id}:0")]

    second_id = telegram.push_text(CHAT, ann, "And of Spain?")
    second = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert second.caption == "Madrid, I think."
    assert button_data(second) == [("Try another answer", f"again:{ann['id']}:{second_id}:0")]
    # Only the latest reply carries the button.
    await telegram.wait_for(
        lambda: telegram.message(CHAT, first.message_id).reply_markup is None, what="old button off"
    )

    telegram.push_callback(CHAT, ann, second.message_id, f"again:{ann['id']}:{second_id}:0")
    again = (await telegram.wait_sent(CHAT, count=3))[-1]
    assert again.caption == "Madrid." and again.reply_to_message_id == second_id
    assert button_data(again) == [("Try another answer", f"again:{ann['id']}:{second_id}:0")]
    # Asked again without the answer it replaces, the question once.
    assert history(openai_api) == [("user", "Capital of France?"), ("assistant", "Paris."), ("user", "And of Spain?")]
    await telegram.wait_for(lambda: telegram.message(CHAT, second.message_id).reply_markup is None, what="button moved")

    telegram.push_text(CHAT, ann, "Thanks!")
    await telegram.wait_sent(CHAT, count=4)
    assert history(openai_api) == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Spain?"),
        ("assistant", "Madrid."),
        ("user", "Thanks!"),
    ]
    stored = [t.text for t in await parley.services.storage.turns.recent(CHAT, ann["id"], 10)]
    assert stored == ["Capital of France?", "Paris.", "And of Spain?", "Madrid.", "Thanks!", "You're welcome!"]

    # /retry does the same for the latest message; a stale button is told it is not the latest.
    telegram.push_text(CHAT, ann, "/retry")
    retried = (await telegram.wait_sent(CHAT, count=5))[-1]
    assert retried.caption == "Any time!"
    assert history(openai_api)[-2:] == [("assistant", "Madrid."), ("user", "Thanks!")]
    telegram.push_callback(CHAT, ann, again.message_id, f"again:{ann['id']}:{second_id}:0")
    stale = (await telegram.wait_sent(CHAT, count=6))[-1]
    assert stale.text == "Only the latest answer can be tried again."
    assert len(openai_api.chat_requests()) == 5  # a stale tap costs nothing

    # /new is /reset: a fresh start, and then nothing to answer again.
    telegram.push_text(CHAT, ann, "/new")
    assert (await telegram.wait_sent(CHAT, count=7))[-1].text == texts.RESET_DONE
    telegram.push_text(CHAT, ann, "/retry")
    assert (await telegram.wait_sent(CHAT, count=8))[-1].text == "There's no answer to try again yet."
    assert len(openai_api.chat_requests()) == 5


async def test_another_answer_to_a_voice_note_uses_its_words(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann", language_code="en")
    openai_api.queue_replies("First try.", "Second try.")
    note_id = telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    [first] = await telegram.wait_sent(CHAT)
    await openai_api.wait_for(lambda: len(openai_api.transcription_requests()) == 1, 10, what="transcribed")
    telegram.push_callback(CHAT, ann, first.message_id, f"again:{ann['id']}:{note_id}:0")
    again = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert again.caption == "Second try." and again.reply_to_message_id == note_id
    assert history(openai_api) == [("user", "transcript of 2.0 s")]
    assert len(openai_api.transcription_requests()) == 1  # the note's words were kept, not heard again


async def test_a_failed_new_answer_can_be_tried_again(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann", language_code="en")
    openai_api.queue_replies("One.")
    asked = telegram.push_text(CHAT, ann, "Pick a number")
    [first] = await telegram.wait_sent(CHAT)
    openai_api.fail_next(500)
    telegram.push_callback(CHAT, ann, first.message_id, f"again:{ann['id']}:{asked}:0")
    failure = (await telegram.wait_sent(CHAT, count=2))[-1]
    [[button]] = failure.reply_markup["inline_keyboard"]
    assert button["text"] == texts.RETRY

    openai_api.queue_replies("Two.")
    telegram.push_callback(CHAT, ann, failure.message_id, button["callback_data"])
    again = (await telegram.wait_sent(CHAT, count=3))[-1]
    assert again.caption == "Two." and again.reply_to_message_id == asked
    assert history(openai_api) == [("user", "Pick a number")]
    stored = [t.text for t in await parley.services.storage.turns.recent(CHAT, ann["id"], 10)]
    assert stored == ["Pick a number", "Two."]
