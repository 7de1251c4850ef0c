"""Voice conversations in a private chat, end to end: the real bot against the lab's stand-ins."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot import registry, texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import decode_duration, make_speech_ogg, make_voice_ogg, ogg_opus_duration, opus_comments
from lab.harness import lab_env, running_bot
from storage import Storage

CHAT = 1001


def input_audio_parts(request) -> list[dict]:
    return [
        part
        for message in request.json["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "input_audio"
    ]


async def test_voice_note_gets_a_spoken_reply(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = make_voice_ogg(2.0)
    note_id = telegram.push_voice(CHAT, ann, note)

    [reply] = await telegram.wait_sent(CHAT, count=1)

    # What the user received: a voice bubble (OGG/Opus that decodes), replying to their note, with the transcript.
    assert reply.kind == "voice"
    assert reply.reply_to_message_id == note_id
    assert reply.caption == "I heard 2.0 seconds of audio."
    seconds = ogg_opus_duration(reply.data)
    assert seconds == pytest.approx(0.05 * len(reply.caption), abs=0.15)
    assert reply.duration == pytest.approx(seconds, abs=1.0)

    # What the model received: one call, audio in and out, the note as a valid 16 kHz mono WAV of the right length.
    [chat] = openai_api.chat_requests()
    body = chat.json
    assert body["model"] == "gpt-audio-1.5"
    assert body["modalities"] == ["text", "audio"]
    # Streamed: the audio comes as pcm16 pieces, encoded to the voice note as they arrive.
    assert body["audio"] == {"voice": "alloy", "format": "pcm16"}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system"
    [part] = input_audio_parts(chat)
    assert part["input_audio"]["format"] == "wav"
    [wav] = chat.audio_inputs
    assert (wav.rate, wav.channels, wav.bits) == (16000, 1, 16)
    assert wav.duration == pytest.approx(2.0, abs=0.1)

    # The note was transcribed alongside, for the history: its Opus packets in a file of their own, no tags.
    [transcription] = openai_api.transcription_requests()
    assert transcription.form["model"] == "gpt-4o-mini-transcribe"
    name, sent = transcription.files["file"]
    assert name == "voice.ogg" and sent != note and opus_comments(sent)[1] == []
    assert decode_duration(sent) == pytest.approx(wav.duration, abs=0.1)

    # "Recording voice…" was shown while the reply was made.
    actions = telegram.calls_of("sendChatAction")
    assert actions and all(call.params["action"] == "record_voice" for call in actions)


async def test_text_message_gets_a_spoken_reply(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    text_id = telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "What's the capital of France?")
    [reply] = await telegram.wait_sent(CHAT)
    assert reply.kind == "voice"
    assert reply.reply_to_message_id == text_id
    assert reply.caption == "You said: What's the capital of France?"
    [chat] = openai_api.chat_requests()
    assert chat.json["messages"][-1] == {"role": "user", "content": "What's the capital of France?"}
    assert input_audio_parts(chat) == []
    assert openai_api.transcription_requests() == []


async def test_history_goes_to_the_model_as_text(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    await telegram.wait_sent(CHAT, count=1)
    telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    await telegram.wait_sent(CHAT, count=2)

    second = openai_api.chat_requests()[1].json["messages"]
    assert second[1:3] == [
        {"role": "user", "content": "transcript of 2.0 s"},
        {"role": "assistant", "content": "I heard 2.0 seconds of audio."},
    ]
    # Only the current note travels as audio.
    assert len(input_audio_parts(openai_api.chat_requests()[1])) == 1
    assert openai_api.chat_requests()[1].audio_inputs[0].duration == pytest.approx(1.0, abs=0.1)


async def test_context_and_voice_survive_a_restart(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "parley.db")
    ann = telegram.user(CHAT, "Ann")
    async with running_bot(env):
        telegram.push_text(CHAT, ann, "/voice coral")
        telegram.push_text(CHAT, ann, "Remember: my cat is called Tom.")
        await telegram.wait_sent(CHAT, count=2)

    async with running_bot(env):
        telegram.push_text(CHAT, ann, "What is my cat called?")
        await telegram.wait_sent(CHAT, count=3)

    last = openai_api.chat_requests()[-1].json
    assert last["audio"]["voice"] == "coral"
    assert {"role": "user", "content": "Remember: my cat is called Tom."} in last["messages"]
    assert last["messages"][-1] == {"role": "user", "content": "What is my cat called?"}


async def test_voice_command_lists_sets_and_refuses(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/voice")
    [listing] = await telegram.wait_sent(CHAT, count=1)
    assert "I'm speaking as alloy" in listing.text
    assert all(name in listing.text for name in ("ash", "ballad", "coral", "echo", "sage", "shimmer", "verse"))
    buttons = [b["callback_data"] for row in listing.reply_markup["inline_keyboard"] for b in row]
    assert "voice:coral" in buttons

    telegram.push_text(CHAT, ann, "/voice robot")
    unknown = (await telegram.wait_sent(CHAT, count=2))[1]
    assert "robot" in unknown.text and "coral" in unknown.text

    telegram.push_text(CHAT, ann, "/voice Shimmer")
    done = (await telegram.wait_sent(CHAT, count=3))[2]
    assert done.text == texts.voice_set("shimmer")
    assert openai_api.chat_requests() == []  # none of that cost a model call

    telegram.push_text(CHAT, ann, "hello")
    await telegram.wait_sent(CHAT, count=4)
    assert openai_api.chat_requests()[0].json["audio"]["voice"] == "shimmer"

    # A tap on a voice button works the same way, editing the list message.
    telegram.push_callback(CHAT, ann, listing.message_id, "voice:echo")
    await telegram.wait_for(lambda: telegram.message(CHAT, listing.message_id)["text"] == texts.voice_set("echo"))
    assert (await parley.services.preferences.of(ann["id"])).voice == "echo"


async def test_reset_starts_a_fresh_conversation(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "first")
    await telegram.wait_sent(CHAT, count=1)
    telegram.push_text(CHAT, ann, "/reset")
    assert (await telegram.wait_sent(CHAT, count=2))[1].text == texts.RESET_DONE
    telegram.push_text(CHAT, ann, "second")
    await telegram.wait_sent(CHAT, count=3)
    messages = openai_api.chat_requests()[-1].json["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]


async def test_forget_deletes_everything_after_confirmation(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/voice sage")
    telegram.push_text(CHAT, ann, "my secret is 42")
    await telegram.wait_sent(CHAT, count=2)
    storage: Storage = parley.services.storage
    assert await storage.turns.count(ann["id"]) == 2

    telegram.push_text(CHAT, ann, "/forget")
    confirm = (await telegram.wait_sent(CHAT, count=3))[2]
    assert confirm.text == texts.FORGET_CONFIRM
    assert await storage.turns.count(ann["id"]) == 2  # nothing happens before the tap

    telegram.push_callback(CHAT, ann, confirm.message_id, "forget:yes")
    await telegram.wait_for(lambda: telegram.message(CHAT, confirm.message_id)["text"] == texts.forget_done(2))
    assert await storage.turns.count(ann["id"]) == 0
    assert (await storage.users.preferences(ann["id"])).voice is None
    assert telegram.calls_of("answerCallbackQuery")

    telegram.push_text(CHAT, ann, "what is my secret?")
    await telegram.wait_sent(CHAT, count=4)
    assert [m["role"] for m in openai_api.chat_requests()[-1].json["messages"]] == ["system", "user"]


async def test_forget_can_be_cancelled(parley, telegram: FakeTelegram) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "keep this")
    telegram.push_text(CHAT, ann, "/forget")
    confirm = (await telegram.wait_sent(CHAT, count=2))[1]
    telegram.push_callback(CHAT, ann, confirm.message_id, "forget:no")
    await telegram.wait_for(lambda: telegram.message(CHAT, confirm.message_id)["text"] == texts.FORGET_CANCELLED)
    assert await parley.services.storage.turns.count(ann["id"]) == 2


async def test_start_help_and_commands_menu(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    # A menu for private chats and one for groups in the default language (no language_code), and per language.
    names = [c["command"] for c in telegram.commands({"type": "all_private_chats"})]
    assert names[:6] == ["start", "help", "voice", "reset", "forget", "export"]
    assert {"transcribe", "tone", "speak", "mode", "model", "usage"} <= set(names)
    assert {"summary", "digest", "find", "stats"}.isdisjoint(names)  # groups' only, and admins' only
    in_groups = [c["command"] for c in telegram.commands({"type": "all_group_chats"})]
    assert {"summary", "digest", "find", "voice"} <= set(in_groups)
    assert {"forget", "export", "model", "usage", "stats"}.isdisjoint(in_groups)
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/start")
    telegram.push_text(CHAT, ann, "/help")
    telegram.push_text(CHAT, ann, "/nonsense")
    sent = await telegram.wait_sent(CHAT, count=3)
    assert [m.text for m in sent] == [texts.START, registry.help_text(), texts.UNKNOWN_COMMAND]
    assert openai_api.chat_requests() == []


async def test_messages_in_one_chat_are_answered_in_order(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    openai_api.latency = 0.4
    ann = telegram.user(CHAT, "Ann")
    first = telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    second = telegram.push_text(CHAT, ann, "and another thing")
    third = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    sent = await telegram.wait_sent(CHAT, count=3)
    assert [m.reply_to_message_id for m in sent] == [first, second, third]
    requests = openai_api.chat_requests()
    # Each call started only after the previous one finished, and saw its turn.
    assert requests[1].started >= requests[0].finished
    assert requests[2].started >= requests[1].finished
    assert {"role": "user", "content": "and another thing"} in requests[2].json["messages"]
    assert {"role": "assistant", "content": "I heard 2.0 seconds of audio."} in requests[1].json["messages"]


async def test_ten_chats_are_served_concurrently(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    openai_api.latency = 1.5
    note = make_voice_ogg(1.0)
    users = [telegram.user(2000 + i, f"User{i}") for i in range(10)]
    for user in users:
        telegram.push_voice(user["id"], user, note)
    for user in users:
        await telegram.wait_sent(user["id"], count=1, timeout=30)
    requests = openai_api.chat_requests()
    assert len(requests) == 10
    # Overlap, not wall-clock: at the moment the last call started, every other call was still in flight.
    last_start = max(r.started for r in requests)
    assert all(r.finished > last_start for r in requests)


async def test_long_recordings_wait_for_memory_while_short_notes_go_ahead(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """Many turns may wait for the model at once, but not with more recordings in memory than
    PARLEY_AUDIO_MEMORY_MB: two 20 s notes (each ~1.9 MB while the model hears it) take turns in a
    1 MB budget, while the small notes alongside still run together."""
    openai_api.latency = 1.0
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_AUDIO_MEMORY_MB="1")
    async with running_bot(env):
        long_note = make_voice_ogg(20.0)
        first, second = telegram.user(3001, "Ann"), telegram.user(3002, "Bob")
        telegram.push_voice(3001, first, long_note)
        telegram.push_voice(3002, second, long_note)
        await telegram.wait_sent(3001, timeout=60)
        await telegram.wait_sent(3002, timeout=60)
        one, two = sorted(openai_api.chat_requests(), key=lambda r: r.started)
        assert one.finished is not None and two.started >= one.finished  # one after the other
        short = make_voice_ogg(0.5)
        small = [telegram.user(3100 + i, f"User{i}") for i in range(3)]
        for user in small:
            telegram.push_voice(user["id"], user, short)
        for user in small:
            await telegram.wait_sent(user["id"], timeout=60)
        requests = openai_api.chat_requests()[2:]
        last_start = max(r.started for r in requests)
        assert all(r.finished > last_start for r in requests)  # three small ones fit at once


async def test_transcription_never_delays_the_reply(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    openai_api.latency = 0.5
    openai_api.transcription_latency = 2.5
    ann = telegram.user(CHAT, "Ann")
    telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    [reply] = await telegram.wait_sent(CHAT)
    assert reply.kind == "voice"
    [transcription] = openai_api.transcription_requests()
    [chat] = openai_api.chat_requests()
    assert transcription.started < chat.finished  # requested alongside the reply …
    assert transcription.finished is None  # … and the reply did not wait for it
    # The words still reach the history in time for the next turn (which waits in the chat's queue).
    telegram.push_text(CHAT, ann, "next")
    await telegram.wait_sent(CHAT, count=2)
    assert {"role": "user", "content": "transcript of 2.0 s"} in openai_api.chat_requests()[1].json["messages"]


async def test_recording_voice_stays_visible_during_a_slow_reply(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    """Telegram shows a chat action for 5 s: during a 6 s reply it must be renewed, with no gap of 5 s."""
    openai_api.latency = 6.0
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "think hard")
    [reply] = await telegram.wait_sent(CHAT, timeout=20)
    shown = [call.at for call in telegram.calls_of("sendChatAction") if call.params["action"] == "record_voice"]
    assert len(shown) >= 2
    gaps = [later - earlier for earlier, later in zip(shown, [*shown[1:], reply.at], strict=True)]
    assert max(gaps) < 5.0


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_real_speech_reaches_the_model_intact(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    speech = make_speech_ogg("Hello Parley, what is the weather like on the moon?")
    assert speech is not None
    telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), speech)
    [reply] = await telegram.wait_sent(CHAT)
    assert reply.kind == "voice"
    [wav] = openai_api.chat_requests()[0].audio_inputs
    assert wav.duration == pytest.approx(decode_duration(speech), abs=0.1)


async def test_buttons_are_answered_at_once_even_while_a_reply_is_being_made(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/voice")
    [listing] = await telegram.wait_sent(CHAT)
    openai_api.latency = 3.0
    telegram.push_text(CHAT, ann, "a slow question")
    await openai_api.wait_for(lambda: len(openai_api.chat_requests()) == 1, 10, what="model call started")
    telegram.push_callback(CHAT, ann, listing.message_id, "voice:sage")
    await telegram.wait_calls("answerCallbackQuery")
    assert len(telegram.sent_to(CHAT)) == 1  # answered while the reply was still being made
    await telegram.wait_for(lambda: telegram.message(CHAT, listing.message_id)["text"] == texts.voice_set("sage"))


async def test_with_streaming_off_the_reply_comes_whole_as_wav(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    """For OpenAI-compatible servers that cannot stream audio: one answer, WAV, encoded afterwards."""
    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_STREAM_REPLIES="false")
    async with running_bot(env):
        telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), make_voice_ogg(2.0))
        [reply] = await telegram.wait_sent(CHAT)
    [chat] = openai_api.chat_requests()
    assert chat.json["audio"] == {"voice": "alloy", "format": "wav"} and "stream" not in chat.json
    assert reply.kind == "voice" and reply.caption == "I heard 2.0 seconds of audio."
    assert ogg_opus_duration(reply.data) == pytest.approx(0.05 * len(reply.caption), abs=0.15)
