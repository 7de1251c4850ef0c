"""The lab's stand-ins must reject what the real services reject, in the real shapes.

Each test drives a fake with the REAL client library (python-telegram-bot's Bot, openai's AsyncOpenAI) over
loopback HTTP, so these tests also pin down how those libraries encode requests and map errors.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from lab import (
    DOWNLOAD_LIMIT,
    FakeOpenAI,
    FakeTelegram,
    InvalidOgg,
    InvalidWav,
    decode_duration,
    ffmpeg_exe,
    make_mp3,
    make_voice_ogg,
    make_wav,
    ogg_opus_duration,
    parse_wav,
)
from lab.telegram.text import parse_text

CHAT = 4242
USER = 4242


def _ffmpeg_pipe_wav(ogg: bytes) -> bytes:
    """WAV the naive way (ffmpeg writing to a pipe): the RIFF sizes are left as 0xFFFFFFFF placeholders."""
    proc = subprocess.run(
        [
            ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            "pipe:0",
            "-ac",
            "1",
            "-ar",
            "24000",
            "-f",
            "wav",
            "pipe:1",
        ],
        input=ogg,
        capture_output=True,
        timeout=30,
        check=True,
    )
    return proc.stdout


@pytest.fixture
async def bot(telegram: FakeTelegram) -> AsyncIterator[Bot]:
    async with Bot(telegram.token, base_url=telegram.base_url, base_file_url=telegram.base_file_url) as real_bot:
        yield real_bot


@pytest.fixture
async def client(openai_api: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        api_key=openai_api.api_key, base_url=openai_api.base_url, max_retries=0, timeout=10
    ) as real_client:
        yield real_client


def _audio_request(wav: bytes, **overrides: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": "gpt-audio-mini",
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "wav"},
        "messages": [
            {"role": "system", "content": "You are Parley."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "input_audio",
                        "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"},
                    }
                ],
            },
        ],
    }
    request.update(overrides)
    return request


# ---------------------------------------------------------------------------------------------------------
# audio helpers
# ---------------------------------------------------------------------------------------------------------


def test_audio_helpers_make_and_check_real_audio(voice_ogg: bytes) -> None:
    assert voice_ogg.startswith(b"OggS") and b"OpusHead" in voice_ogg[:512]
    assert ogg_opus_duration(voice_ogg) == pytest.approx(2.0, abs=0.05)
    info = parse_wav(make_wav(1.5))
    assert (info.rate, info.channels, info.bits, info.frames) == (24000, 1, 16, 36000)
    assert decode_duration(make_mp3(1.0)) == pytest.approx(1.0, abs=0.1)
    piped = _ffmpeg_pipe_wav(voice_ogg)
    assert decode_duration(piped) == pytest.approx(2.0, abs=0.05)  # ffmpeg itself tolerates it ...
    with pytest.raises(InvalidWav, match="RIFF size"):
        parse_wav(piped)  # ... the strict validator does not
    fixed_riff = piped[:4] + (len(piped) - 8).to_bytes(4, "little") + piped[8:]
    with pytest.raises(InvalidWav, match="placeholder"):
        parse_wav(fixed_riff)  # the data chunk size is still 0xFFFFFFFF
    with pytest.raises(InvalidWav, match="no audio frames"):
        parse_wav(make_wav(0))
    with pytest.raises(InvalidOgg):
        ogg_opus_duration(make_wav(0.5))


def test_telegram_markup_rules() -> None:
    assert parse_text("<b>bold</b> &amp; <i>it</i>", "HTML") == (
        "bold & it",
        [{"type": "bold", "offset": 0, "length": 4}, {"type": "italic", "offset": 7, "length": 2}],
    )
    assert parse_text("*Hi* there\\!", "MarkdownV2")[0] == "Hi there!"
    assert parse_text("<blockquote expandable>a</blockquote><blockquote>b</blockquote>", "HTML")[1] == [
        {"type": "expandable_blockquote", "offset": 0, "length": 1},
        {"type": "blockquote", "offset": 1, "length": 1},
    ]
    for bad, mode in [("<b>x", "HTML"), ("a <br> b", "HTML"), ("<b>x</i>", "HTML"), ("Hi.", "MarkdownV2")]:
        with pytest.raises(ValueError):
            parse_text(bad, mode)


# ---------------------------------------------------------------------------------------------------------
# FakeTelegram via python-telegram-bot
# ---------------------------------------------------------------------------------------------------------


async def test_get_me_and_wrong_tokens(telegram: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (telegram.bot_id, "parley_test_bot", True)
    assert me.can_read_all_group_messages is False and me.can_join_groups is True
    # A well-formed but wrong token gets 401 "Unauthorized", a malformed one 404 "Not Found": PTB maps
    # both to InvalidToken when Bot.__aenter__ calls getMe.
    for token in ("123456:WRONG-token-abcdefghijklmnopqrstuvwxyz", "not-a-token"):
        with pytest.raises(InvalidToken):
            async with Bot(token, base_url=telegram.base_url):
                pass
    assert len(telegram.calls) == 2 and telegram.unauthorized == ["/bot<token>/getMe"] * 2


async def test_voice_update_arrives_and_downloads_byte_identical(
    telegram: FakeTelegram, bot: Bot, voice_ogg: bytes
) -> None:
    ann = telegram.user(USER, "Ann")
    mid = telegram.push_voice(CHAT, ann, voice_ogg)
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 1 and telegram.pending_updates == 1
    msg = updates[0].message
    assert msg is not None and msg.message_id == mid and msg.from_user is not None
    assert msg.from_user.first_name == "Ann" and msg.chat.type == "private"
    voice = msg.voice
    assert voice is not None and voice.to_dict()["duration"] == 2 and voice.mime_type == "audio/ogg"
    tg_file = await bot.get_file(voice.file_id)
    assert tg_file.file_path is not None and "/voice/file_" in tg_file.file_path
    assert bytes(await tg_file.download_as_bytearray()) == voice_ogg
    await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert telegram.pending_updates == 0 and telegram.updates_confirmed == 1


async def test_long_poll_wakes_on_push_and_second_poller_conflicts(telegram: FakeTelegram, bot: Bot) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await telegram.wait_for(lambda: len(telegram.calls_of("getUpdates")) == 1)
    started = time.monotonic()
    telegram.push_text(CHAT, telegram.user(USER), "/start")
    updates = await poll
    assert time.monotonic() - started < 1.0
    assert updates[0].message is not None and updates[0].message.text == "/start"
    entity = updates[0].message.entities[0]
    assert (entity.type, entity.offset, entity.length) == ("bot_command", 0, 6)

    # PTB gives getUpdates its own one-connection pool, so a second poller needs a second Bot (as a second
    # running instance of the app would have).
    first = asyncio.create_task(bot.get_updates(offset=updates[0].update_id + 1, timeout=5))
    await telegram.wait_for(lambda: len(telegram.calls_of("getUpdates")) == 2)
    async with Bot(telegram.token, base_url=telegram.base_url) as second:
        assert await second.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await first


async def test_send_voice_accepts_ogg_opus_and_rejects_wav(telegram: FakeTelegram, bot: Bot, voice_ogg: bytes) -> None:
    asked = telegram.push_text(CHAT, telegram.user(USER), "hello")
    sent = await bot.send_voice(CHAT, voice_ogg, caption="<b>Parley</b>", parse_mode="HTML", reply_to_message_id=asked)
    assert sent.voice is not None and sent.voice.to_dict()["duration"] == 2
    assert sent.caption == "Parley" and sent.reply_to_message is not None
    assert sent.reply_to_message.message_id == asked and sent.from_user is not None and sent.from_user.is_bot
    [record] = telegram.sent_to(CHAT)
    assert (record.kind, record.data, record.caption, record.reply_to_message_id) == (
        "voice",
        voice_ogg,
        "Parley",
        asked,
    )
    assert record.duration == 2 and record.message_id == asked + 1
    [call] = telegram.calls_of("sendVoice")
    assert call.files["voice"] == voice_ogg and call.params["parse_mode"] == "HTML"

    with pytest.raises(BadRequest, match="Wrong file type"):
        await bot.send_voice(CHAT, make_wav(1.0))
    assert telegram.calls_of("sendVoice")[-1].error == "Bad Request: wrong file type"
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_voice(CHAT, voice_ogg, caption="c" * 1025)
    assert len(telegram.sent) == 1


@pytest.mark.parametrize(
    ("kwargs", "description"),
    [
        ({"text": "   "}, "message text is empty"),
        ({"text": "x" * 4097}, "message is too long"),
        ({"text": "😀" * 2049}, "message is too long"),  # 2049 characters but 4098 UTF-16 units
        ({"text": "<b>unclosed", "parse_mode": "HTML"}, "can't parse entities: Can't find end tag"),
        (
            {"text": "line<br>break", "parse_mode": "HTML"},
            'can\'t parse entities: Unsupported start tag "br"',
        ),
        ({"text": "Done.", "parse_mode": "MarkdownV2"}, "can't parse entities: Character '.' is reserved"),
        ({"text": "hi", "reply_to_message_id": 999}, "message to be replied not found"),
        ({"text": "hi", "reply_parameters": ReplyParameters(999)}, "message to be replied not found"),
        ({"text": "hi", "chat_id": 777}, "chat not found"),
        (
            {
                "text": "hi",
                "reply_markup": InlineKeyboardMarkup([[InlineKeyboardButton("go", callback_data="d" * 65)]]),
            },
            "BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_send_message_rejections(
    telegram: FakeTelegram, bot: Bot, kwargs: dict[str, Any], description: str
) -> None:
    telegram.push_text(CHAT, telegram.user(USER), "hi")
    with pytest.raises(BadRequest):
        await bot.send_message(**{"chat_id": CHAT, **kwargs})
    error = telegram.calls_of("sendMessage")[-1].error
    assert error is not None and error.startswith(f"Bad Request: {description}"), error
    assert telegram.sent == []


async def test_send_message_limits_count_text_after_markup(telegram: FakeTelegram, bot: Bot) -> None:
    telegram.add_chat(CHAT)
    msg = await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    assert len(msg.text or "") == 4096 and msg.entities[0].type == "bold"
    ok = await bot.send_message(
        CHAT, "Legacy *bold*", parse_mode="Markdown", reply_to_message_id=42, allow_sending_without_reply=True
    )
    assert ok.text == "Legacy bold" and ok.reply_to_message is None
    assert [m.kind for m in telegram.sent_to(CHAT)] == ["text", "text"]


@pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")
async def test_faults_edits_callbacks_and_files(telegram: FakeTelegram, bot: Bot) -> None:
    user = telegram.user(USER)
    telegram.push_text(CHAT, user, "hi")
    telegram.fail_next("sendMessage", error_code=429, retry_after=3)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(CHAT, "first try")
    assert "3" in flood.value.message
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("again", callback_data="retry:1")]])
    msg = await bot.send_message(CHAT, "second try", reply_markup=keyboard)
    assert msg.reply_markup == keyboard and telegram.sent[-1].reply_markup is not None

    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text("second try", CHAT, msg.message_id, reply_markup=keyboard)
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("nope", CHAT, 9999)
    await bot.edit_message_text("edited", CHAT, msg.message_id)
    stored = telegram.message(CHAT, msg.message_id)
    assert stored is not None and stored.text == "edited" and stored.reply_markup is None
    assert telegram.sent[-1].edits == ["edited"]

    query_id = telegram.push_callback(CHAT, user, msg.message_id, "retry:1")
    assert await bot.answer_callback_query(query_id, text="ok")
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query_id)

    with pytest.raises(BadRequest, match="Wrong parameter action in request"):
        await bot.send_chat_action(CHAT, "dancing")
    assert await bot.send_chat_action(CHAT, "record_voice")

    big_id, _ = telegram.add_file(b"tiny", file_size=DOWNLOAD_LIMIT + 1)
    with pytest.raises(BadRequest, match="File is too big"):
        await bot.get_file(big_id)
    with pytest.raises(BadRequest, match="Invalid file_id"):
        await bot.get_file("no-such-file")

    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([("Start", "Begin")])
    assert await bot.set_my_commands([("start", "Begin"), ("forget", "Wipe memory")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "forget"]

    telegram.forbid_voice(CHAT)
    with pytest.raises(BadRequest, match="Voice_messages_forbidden"):
        await bot.send_voice(CHAT, make_voice_ogg(0.5))
    telegram.block(CHAT)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "anyone there?")
    telegram.fail_next("getMe", error_code=502)
    with pytest.raises(NetworkError):
        await bot.get_me()


async def test_group_privacy_mode_filters_updates(telegram: FakeTelegram, bot: Bot) -> None:
    group = -100123
    user = telegram.user(USER)
    telegram.push_text(group, user, "just chatting", chat_type="supergroup")
    telegram.push_text(group, user, "/ask@other_bot hi", chat_type="supergroup")
    telegram.push_text(group, user, "/ask@parley_test_bot hi", chat_type="supergroup")
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["/ask@parley_test_bot hi"]
    assert len(telegram.dropped_updates) == 2


# ---------------------------------------------------------------------------------------------------------
# FakeOpenAI via the openai SDK
# ---------------------------------------------------------------------------------------------------------


async def test_chat_completion_with_wav_returns_real_audio(openai_api: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    resp = await client.chat.completions.create(**_audio_request(make_wav(1.5)))
    assert resp.model == "gpt-audio-mini-2025-10-06" and resp.id.startswith("chatcmpl-")
    audio = resp.choices[0].message.audio
    assert audio is not None and audio.id.startswith("audio_") and audio.expires_at > time.time()
    assert audio.transcript == "I heard 1.5 seconds of audio."
    info = parse_wav(base64.b64decode(audio.data))
    assert (info.rate, info.channels, info.bits) == (24000, 1, 16)
    assert info.duration == pytest.approx(len(audio.transcript) * 0.05, abs=0.01)
    usage = resp.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.audio_tokens == 15
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.audio_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    [req] = openai_api.chat_requests()
    assert req.audio_inputs == [parse_wav(make_wav(1.5))] and req.headers["Authorization"].startswith("Bearer ")

    # The audio id can be sent back as the assistant turn (history), until it expires.
    history = _audio_request(make_wav(0.5))
    history["messages"].insert(2, {"role": "assistant", "audio": {"id": audio.id}})
    history["messages"].append({"role": "user", "content": "and now?"})
    again = await client.chat.completions.create(**history)
    assert again.choices[0].message.audio is not None
    assert again.choices[0].message.audio.transcript == "You said: and now?"
    openai_api.expire_audio()
    with pytest.raises(openai.BadRequestError, match="not found"):
        await client.chat.completions.create(**history)

    mp3 = _audio_request(b"")
    mp3["messages"][1]["content"][0]["input_audio"] = {
        "data": base64.b64encode(make_mp3(1.0)).decode(),
        "format": "mp3",
    }
    mp3_resp = await client.chat.completions.create(**mp3)
    assert mp3_resp.choices[0].message.audio is not None


@pytest.mark.parametrize(
    ("case", "error_class", "param", "message"),
    [
        ("broken_riff", openai.BadRequestError, "messages", "The audio file could not be decoded"),
        (
            "voice",
            openai.BadRequestError,
            "audio.voice",
            "Invalid value: 'robot'. Supported values are: 'alloy'",
        ),
        (
            "model",
            openai.NotFoundError,
            None,
            "The model `gpt-9-audio` does not exist or you do not have access",
        ),
        (
            "ogg_input",
            openai.BadRequestError,
            "messages[1].content[0].input_audio.format",
            "Invalid value: 'ogg'",
        ),
        ("text_model_audio_out", openai.BadRequestError, "modalities", "does not support the audio modality"),
        (
            "text_model_audio_in",
            openai.BadRequestError,
            "messages.[1].content.[0].type",
            "input_audio is only",
        ),
        ("no_audio_at_all", openai.BadRequestError, "model", "either input content or output modality"),
        ("bad_format", openai.BadRequestError, "audio.format", "Invalid value: 'ogg'"),
        ("empty", openai.BadRequestError, "messages", "empty array"),
        ("typo", openai.BadRequestError, None, "Unrecognized request argument supplied: voice"),
    ],
)
async def test_chat_completion_rejections(
    client: openai.AsyncOpenAI,
    voice_ogg: bytes,
    case: str,
    error_class: type[openai.APIStatusError],
    param: str | None,
    message: str,
) -> None:
    request = _audio_request(make_wav(0.5))
    if case == "broken_riff":
        request = _audio_request(_ffmpeg_pipe_wav(voice_ogg))
    elif case == "voice":
        request["audio"] = {"voice": "robot", "format": "wav"}
    elif case == "model":
        request["model"] = "gpt-9-audio"
    elif case == "ogg_input":
        request["messages"][1]["content"][0]["input_audio"] = {
            "data": base64.b64encode(voice_ogg).decode(),
            "format": "ogg",
        }
    elif case == "text_model_audio_out":
        request.update(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    elif case == "text_model_audio_in":
        request.update(model="gpt-4o-mini", modalities=["text"])
        del request["audio"]
    elif case == "no_audio_at_all":
        request.update(modalities=["text"], messages=[{"role": "user", "content": "hi"}])
        del request["audio"]
    elif case == "bad_format":
        request["audio"] = {"voice": "alloy", "format": "ogg"}
    elif case == "empty":
        request["messages"] = []
    extra = {"voice": "alloy"} if case == "typo" else None  # the SDK only lets unknown fields in this way
    with pytest.raises(error_class) as caught:
        await client.chat.completions.create(**request, extra_body=extra)
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == param and body["type"] == "invalid_request_error"
    assert message in body["message"] and message in str(caught.value)


def _recording(args: list[str], fmt: str) -> bytes:
    """A 1.5 s tone as ffmpeg writes `fmt` with its default settings."""
    tone = ["-f", "lavfi", "-i", "sine=frequency=330:duration=1.5"]
    command = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *tone, *args, "-f", fmt, "pipe:1"]
    return subprocess.run(command, capture_output=True, timeout=30, check=True).stdout


async def test_transcriptions_take_the_formats_the_real_endpoint_takes_and_read_their_length(
    client: openai.AsyncOpenAI, voice_ogg: bytes
) -> None:
    """Each model's list of extensions, the bytes matching the name, the real errors otherwise."""
    taken = {
        "voice.ogg": voice_ogg,
        "voice.webm": _recording([], "webm"),
        "voice.mp3": _recording([], "mp3"),
        "voice.flac": _recording([], "flac"),
        "voice.wav": make_wav(1.5),
    }
    for name, data in taken.items():
        for model in ("gpt-4o-mini-transcribe", "whisper-1"):
            result = await client.audio.transcriptions.create(model=model, file=(name, data), response_format="text")
            expected = 2.0 if data is voice_ogg else 1.5
            assert result.strip() == f"transcript of {expected:.1f} s", (name, model)
    # Telegram's own name for a voice note: whisper-1 takes it, the gpt-4o models refuse the name.
    assert (await client.audio.transcriptions.create(model="whisper-1", file=("voice.oga", voice_ogg))).text
    with pytest.raises(openai.BadRequestError) as refused:
        await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("voice.oga", voice_ogg))
    assert refused.value.body == {
        "message": "Unsupported file format oga", "type": "invalid_request_error", "param": "file",
        "code": "unsupported_value",
    }  # fmt: skip
    # AAC in ADTS (Android's recorders) is not on the list under any name; nor is a file under another's name.
    adts = _recording([], "adts")
    with pytest.raises(openai.BadRequestError, match="Unsupported file format aac"):
        await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("voice.aac", adts))
    for name, data in (("voice.mp3", adts), ("voice.m4a", adts), ("voice.ogg", taken["voice.mp3"])):
        with pytest.raises(openai.BadRequestError, match="could not be decoded"):
            await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=(name, data))
    # A voice note cut short mid-page is not read as a shorter one.
    with pytest.raises(openai.BadRequestError, match="could not be decoded"):
        await client.audio.transcriptions.create(model="whisper-1", file=("voice.ogg", voice_ogg[:-100]))


async def test_wrong_api_key_is_masked_like_the_real_one(openai_api: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(api_key="sk-wrong-key", base_url=openai_api.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_api_key"
    assert body["message"].startswith("Incorrect API key provided: sk-wr*****ey. You can find your API key at")


async def test_transcription_and_fault_knobs(
    openai_api: FakeOpenAI, client: openai.AsyncOpenAI, voice_ogg: bytes
) -> None:
    result = await client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=("voice.ogg", voice_ogg))
    assert result.text == "transcript of 2.0 s"
    assert result.usage is not None and result.usage.type == "tokens"
    [req] = openai_api.transcription_requests()
    assert req.form["model"] == "gpt-4o-mini-transcribe" and req.files["file"] == ("voice.ogg", voice_ogg)
    text = await client.audio.transcriptions.create(
        model="whisper-1", file=("a.wav", make_wav(1)), response_format="text"
    )
    assert text.strip() == "transcript of 1.0 s"
    with pytest.raises(openai.BadRequestError, match="Invalid file format"):
        await client.audio.transcriptions.create(model="whisper-1", file=("voice", voice_ogg))
    with pytest.raises(openai.BadRequestError, match="could not be decoded"):
        await client.audio.transcriptions.create(model="whisper-1", file=("v.wav", _ffmpeg_pipe_wav(voice_ogg)))

    openai_api.omit_audio_next()
    resp = await client.chat.completions.create(**_audio_request(make_wav(1.0)))
    assert resp.choices[0].message.audio is None
    assert resp.choices[0].message.content == "I heard 1.0 seconds of audio."

    openai_api.queue_replies("Queued answer.")
    text_resp = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert text_resp.choices[0].message.content == "Queued answer."

    openai_api.fail_next(500)
    with pytest.raises(openai.InternalServerError):
        await client.chat.completions.create(**_audio_request(make_wav(0.5)))
    openai_api.fail_next(429, retry_after=2)
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(**_audio_request(make_wav(0.5)))
    assert limited.value.response.headers["retry-after"] == "2"

    openai_api.hang_next()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(**_audio_request(make_wav(0.5)), timeout=0.3)

    models = await client.models.list()
    assert "gpt-audio-mini" in [m.id for m in models.data]
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("gpt-9")


async def test_real_application_polls_answers_and_stops_cleanly(telegram: FakeTelegram, voice_ogg: bytes) -> None:
    """The full python-telegram-bot Application/Updater cycle works against the fake, and stops fast."""
    from telegram import Update
    from telegram.ext import Application, ContextTypes, MessageHandler, filters

    async def on_voice(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None and update.message.voice is not None
        tg_file = await update.message.voice.get_file()
        data = bytes(await tg_file.download_as_bytearray())
        await update.message.reply_voice(data, caption=f"{len(data)} bytes", do_quote=True)

    app = (
        Application.builder()
        .token(telegram.token)
        .base_url(telegram.base_url)
        .base_file_url(telegram.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.VOICE, on_voice))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(timeout=1, drop_pending_updates=True)
        note = telegram.push_voice(CHAT, telegram.user(USER), voice_ogg)
        [reply] = await telegram.wait_sent(CHAT, timeout=10)
        started = time.monotonic()
        await app.updater.stop()
        await app.stop()
    assert time.monotonic() - started < 3
    assert reply.kind == "voice" and reply.data == voice_ogg and reply.reply_to_message_id == note
    assert reply.caption == f"{len(voice_ogg)} bytes"
    assert telegram.pending_updates == 0 and telegram.updates_confirmed == 1
    assert telegram.calls_of("deleteWebhook")[0].params["drop_pending_updates"] is True
