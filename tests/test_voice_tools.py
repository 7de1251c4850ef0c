"""Voice tools against the lab: every audio input, /transcribe, /tone, /speak, /mode, long recordings, caching."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from bot import registry, texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import ffmpeg_exe, make_mp3, make_voice_ogg, make_wav
from lab.harness import lab_env, running_bot
from parley.audio import AudioConverter, find_ffmpeg
from parley.tools import TONE_SCHEMA, plan_segments

CHAT = 1001


def encode(args: list[str], seconds: float) -> bytes:
    """Audio made at test time from ffmpeg's lavfi sources, in the container the arguments name."""
    source = ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}"]
    return subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", *source, *args, "pipe:1"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def make_video_note(seconds: float) -> bytes:
    command = [
        ffmpeg_exe(), "-nostdin", "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc=size=240x240:rate=10:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=500:duration={seconds}",
        "-c:v", "mpeg4", "-c:a", "aac", "-shortest", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4", "pipe:1",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, check=True, timeout=60).stdout


def speech_with_pauses(seconds: float) -> bytes:
    """15 s of tone, 5 s of silence, repeated: a long "recording" with natural places to cut."""
    source = f"aevalsrc=sin(2*PI*440*t)*lt(mod(t\\,20)\\,15):s=16000:d={seconds}"
    return subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", source, "-c:a", "libopus",
         "-b:a", "16k", "-f", "ogg", "pipe:1"],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip


INPUTS = {
    "audio-mp3": ("audio", lambda: make_mp3(3.0), {"mime_type": "audio/mpeg", "file_name": "a.mp3", "duration": 3}),
    "audio-m4a": (
        "audio",
        lambda: encode(["-c:a", "aac", "-movflags", "frag_keyframe+empty_moov", "-f", "mp4"], 3.0),
        {"mime_type": "audio/mp4", "file_name": "a.m4a", "duration": 3},
    ),
    "document-wav": ("document", lambda: make_wav(3.0), {"mime_type": "audio/wav", "file_name": "a.wav"}),
    "document-flac": (
        "document",
        lambda: encode(["-c:a", "flac", "-f", "flac"], 3.0),
        {"mime_type": "audio/flac", "file_name": "a.flac"},
    ),
    "document-ogg": ("document", lambda: make_voice_ogg(3.0), {"mime_type": "audio/ogg", "file_name": "a.ogg"}),
    "video-note": ("video_note", lambda: make_video_note(3.0), {"duration": 3, "length": 240}),
}


@pytest.mark.parametrize("name", list(INPUTS))
async def test_every_audio_input_reaches_the_model_as_valid_audio(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI, name: str
) -> None:
    kind, make, fields = INPUTS[name]
    data = make()
    file_id, unique_id = telegram.add_file(data, kind=kind, mime_type=fields.get("mime_type"))
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_message(
        CHAT, ann, {kind: {**fields, "file_id": file_id, "file_unique_id": unique_id, "file_size": len(data)}}
    )
    [reply] = await telegram.wait_sent(CHAT)
    assert reply.kind == "voice" and reply.reply_to_message_id == note
    [wav] = openai_api.chat_requests()[0].audio_inputs  # the stand-in validated it strictly
    assert (wav.rate, wav.channels) == (16000, 1)
    assert wav.duration == pytest.approx(3.0, abs=0.15)


async def test_transcribe_a_replied_voice_note_and_from_a_caption(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    openai_api.latency = 0  # first the note is answered as conversation
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    await telegram.wait_sent(CHAT)
    asked = telegram.push_text(CHAT, ann, "/transcribe", reply_to=note)
    transcript = (await telegram.wait_sent(CHAT, count=3))[-1]
    assert transcript.kind == "text" and transcript.reply_to_message_id == asked
    assert transcript.text == "I heard 2.0 seconds of audio."
    request = openai_api.chat_requests()[-1].json
    assert request["modalities"] == ["text"] and "audio" not in request
    assert "Speaker 1" in request["messages"][0]["content"][0]["text"]  # speaker turns and [cues] asked for
    # The same file again: answered from the cache, no model call.
    before = len(openai_api.chat_requests())
    telegram.push_text(CHAT, ann, "/transcribe", reply_to=note)
    again = (await telegram.wait_sent(CHAT, count=4))[-1]
    assert again.text == transcript.text and len(openai_api.chat_requests()) == before

    file_id, unique_id = telegram.add_file(make_mp3(1.5), kind="audio", mime_type="audio/mpeg")
    telegram.push_message(
        CHAT,
        ann,
        {
            "audio": {"file_id": file_id, "file_unique_id": unique_id, "duration": 2, "mime_type": "audio/mpeg"},
            "caption": "/transcribe",
        },
    )
    captioned = (await telegram.wait_sent(CHAT, count=6))[-1]
    assert captioned.text == "I heard 1.5 seconds of audio."


async def test_transcribe_needs_a_recording(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "/transcribe")
    [answer] = await telegram.wait_sent(CHAT)
    assert answer.text == texts.needs_recording("transcribe") == (
        "Reply to a voice message or an audio file with /transcribe, or send the audio with /transcribe as its "
        "caption."
    )
    assert openai_api.requests == []


async def test_an_alias_is_answered_under_its_own_name(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    """Every alias in the command table is answered without the name it stands for; /sentiment, asked without
    its recording, is named back as the person typed it."""
    aliased = [(alias, c.name) for c in registry.COMMANDS for alias in c.aliases]
    assert ("sentiment", "tone") in aliased
    ann = telegram.user(CHAT, "Ann")
    for alias, _name in aliased:
        telegram.push_text(CHAT, ann, f"/{alias}")
    answers = await telegram.wait_sent(CHAT, count=len(aliased))
    for (alias, name), answer in zip(aliased, answers, strict=True):
        assert f"/{name}" not in (answer.text or answer.caption or ""), (alias, answer.text)
    telegram.push_text(CHAT, ann, "/sentiment")
    telegram.push_text(CHAT, ann, "/tone")
    sentiment, tone = (await telegram.wait_sent(CHAT, count=len(aliased) + 2))[-2:]
    assert sentiment.text == (
        "Reply to a voice message or an audio file with /sentiment, or send the audio with /sentiment as its caption."
    )
    assert "/tone" not in sentiment.text and tone.text == texts.needs_recording("tone")
    assert openai_api.requests == []


async def test_speak_on_a_recording_points_to_transcribe(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    await telegram.wait_sent(CHAT)
    telegram.push_text(CHAT, ann, "/speak", reply_to=note)  # in reply to the voice note
    file_id, unique_id = telegram.add_file(make_voice_ogg(1.0))
    telegram.push_message(  # the voice note itself, with /speak as its caption
        CHAT, ann, {"voice": {"file_id": file_id, "file_unique_id": unique_id, "duration": 1}, "caption": "/speak"}
    )
    replied, captioned = (await telegram.wait_sent(CHAT, count=3))[1:]
    expected = (
        "That's a recording already: /speak reads text aloud. To get its words written out, reply to it with "
        "/transcribe."
    )
    assert replied.text == captioned.text == texts.SPEAK_RECORDING == expected
    assert len(openai_api.chat_requests()) == 1  # only the voice note's own answer


async def test_tone_reports_sentiment_emotions_and_quotes(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    report = {
        "sentiment": "positive",
        "confidence": 0.82,
        "emotions": ["joy", "relief"],
        "quotes": ["we finally did it"],
        "summary": "Upbeat and relieved.",
    }
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
    await telegram.wait_sent(CHAT)
    openai_api.queue_replies(json.dumps(report))
    telegram.push_text(CHAT, ann, "/sentiment", reply_to=note)
    answer = (await telegram.wait_sent(CHAT, count=3))[-1]
    assert answer.text.splitlines()[:3] == [
        "Overall: positive (82% confident)",
        "Emotions: joy, relief",
        "“we finally did it”",
    ]
    request = openai_api.chat_requests()[-1].json
    assert request["response_format"] == TONE_SCHEMA and request["modalities"] == ["text"]


async def test_speak_reads_text_aloud_and_reuses_the_result(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/speak The meeting moved to Thursday.")
    [voice] = await telegram.wait_sent(CHAT)
    assert voice.kind == "voice" and voice.data.startswith(b"OggS")
    request = openai_api.chat_requests()[0].json
    assert request["messages"][-1] == {"role": "user", "content": "The meeting moved to Thursday."}
    telegram.push_text(CHAT, ann, "/speak The meeting moved to Thursday.")
    again = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert again.kind == "voice" and again.file_id == voice.file_id
    assert telegram.calls_of("sendVoice")[-1].files == {}  # sent by file_id: Telegram's copy, no upload
    assert len(openai_api.chat_requests()) == 1  # and no second model call


async def test_speak_a_long_document_as_a_spoken_summary(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    long_text = "The quarterly report. " * 200  # 4,400 characters: over PARLEY_SPEAK_MAX_CHARS
    file_id, unique_id = telegram.add_file(long_text.encode(), kind="document", mime_type="text/plain")
    doc = telegram.push_message(
        CHAT,
        ann,
        {
            "document": {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "mime_type": "text/plain",
                "file_name": "r.txt",
            }
        },
    )
    await telegram.wait_sent(CHAT)  # (the document itself gets the note of what is accepted)
    telegram.push_text(CHAT, ann, "/speak", reply_to=doc)
    voice = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert voice.kind == "voice" and voice.caption == texts.spoken_summary(len(long_text.strip()))
    summary, spoken = openai_api.chat_requests()
    assert summary.json["model"] == "gpt-4o-mini" and "modalities" not in summary.json
    assert spoken.json["messages"][-1]["content"] == summary.response["choices"][0]["message"]["content"]


async def test_mode_chooses_how_replies_come(parley, telegram: FakeTelegram) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/mode text")
    telegram.push_text(CHAT, ann, "hello")
    done, text_only = await telegram.wait_sent(CHAT, count=2)
    assert done.text == texts.mode_set("text")
    assert text_only.kind == "text" and text_only.text == "You said: hello"
    telegram.push_text(CHAT, ann, "/mode both")
    telegram.push_text(CHAT, ann, "again")
    sent = await telegram.wait_sent(CHAT, count=5)
    assert [m.kind for m in sent[3:]] == ["voice", "text"]
    assert not sent[3].caption and sent[4].text == "You said: again"
    telegram.push_text(CHAT, ann, "/mode")
    assert (await telegram.wait_sent(CHAT, count=6))[-1].text == texts.mode_usage("both")


async def test_a_long_recording_is_split_at_silences_processed_concurrently_and_stitched_in_order(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    recording = speech_with_pauses(150.0)
    converter = AudioConverter(find_ffmpeg(), timeout=60, max_seconds=3600)
    expected = plan_segments(150.0, await converter.silences(recording), longest=60)
    assert len(expected) >= 3

    env = lab_env(telegram, openai_api, tmp_path / "parley.db", PARLEY_TOOL_SEGMENT_SECONDS="60")
    openai_api.latency = 0.5
    ann = telegram.user(CHAT, "Ann")
    file_id, unique_id = telegram.add_file(recording, kind="audio", mime_type="audio/ogg")
    async with running_bot(env):
        asked = telegram.push_message(
            CHAT,
            ann,
            {
                "audio": {"file_id": file_id, "file_unique_id": unique_id, "duration": 150, "mime_type": "audio/ogg"},
                "caption": "/transcribe",
            },
        )
        sent = await telegram.wait_sent(CHAT, count=2, timeout=60)
        await asyncio.sleep(0.2)
    status, transcript = sent[0], sent[-1]
    requests = openai_api.chat_requests()
    assert len(requests) == len(expected)
    assert all(r.json["messages"][0]["content"][1]["input_audio"]["format"] == "mp3" for r in requests)
    assert transcript.reply_to_message_id == asked
    assert _close(transcript.text, expected), transcript.text
    assert status.text == texts.working("Transcribing", None)
    assert status.edits[-1] == texts.working("Transcribing", (len(expected), len(expected)))
    assert telegram.message(CHAT, status.message_id).deleted
    first_done = min(r.finished for r in requests)
    assert sum(r.started < first_done for r in requests) >= 2  # segments were in flight together


def _close(text: str, expected) -> bool:  # type: ignore[no-untyped-def]
    """Each part reports its segment's length (MP3 framing adds a few ms), in recording order."""
    parts = text.split("\n\n")
    if len(parts) != len(expected):
        return False
    for part, segment in zip(parts, expected, strict=True):
        seconds = float(part.removeprefix("I heard ").removesuffix(" seconds of audio."))
        if abs(seconds - segment.seconds) > 0.2:
            return False
    return True


def test_segments_are_cut_at_silences_with_overlap() -> None:
    segments = plan_segments(150.0, [17.5, 37.5, 57.5, 77.5, 97.5, 117.5], longest=60)
    assert [(s.start, round(s.seconds, 1)) for s in segments] == [(0.0, 57.5), (56.5, 41.0), (96.5, 53.5)]
    assert plan_segments(50.0, [], longest=60) == [plan_segments(50.0, [], longest=60)[0]]
    hard = plan_segments(130.0, [], longest=60)  # no silence at all: cut at the limit
    assert [(s.start, s.seconds) for s in hard] == [(0.0, 60.0), (59.0, 60.0), (118.0, 12.0)]


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF with one line of text, written by hand (no PDF library needed to make it)."""
    stream = f"BT /F1 12 Tf 10 50 Td ({text}) Tj ET".encode()
    objects = [
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 400 100]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
        b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


async def test_speak_reads_a_pdf_document(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    file_id, unique_id = telegram.add_file(tiny_pdf("Hello from a PDF"), kind="document", mime_type="application/pdf")
    doc = telegram.push_message(
        CHAT,
        ann,
        {
            "document": {
                "file_id": file_id,
                "file_unique_id": unique_id,
                "mime_type": "application/pdf",
                "file_name": "x.pdf",
            }
        },
    )
    await telegram.wait_sent(CHAT)
    telegram.push_text(CHAT, ann, "/speak", reply_to=doc)
    voice = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert voice.kind == "voice"
    assert openai_api.chat_requests()[0].json["messages"][-1]["content"] == "Hello from a PDF"


async def test_speak_refuses_other_documents_plainly(parley, telegram: FakeTelegram, openai_api: FakeOpenAI) -> None:
    ann = telegram.user(CHAT, "Ann")
    file_id, unique_id = telegram.add_file(b"\x89PNG....", kind="document", mime_type="image/png")
    doc = telegram.push_message(
        CHAT,
        ann,
        {"document": {"file_id": file_id, "file_unique_id": unique_id, "mime_type": "image/png", "file_name": "x.png"}},
    )
    await telegram.wait_sent(CHAT)
    telegram.push_text(CHAT, ann, "/speak", reply_to=doc)
    answer = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert answer.text == texts.DOCUMENT_UNREADABLE
    assert openai_api.requests == []


async def test_a_local_bot_api_server_lifts_the_20_mb_limit(openai_api: FakeOpenAI, tmp_path: Path) -> None:
    """With a local Bot API server (--local), a file Telegram's cloud would refuse is read from its path."""
    files = tmp_path / "bot-api-files"
    files.mkdir()
    async with FakeTelegram(local_dir=str(files)) as telegram:
        env = lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_LOCAL_BOT_API="true")
        note = make_voice_ogg(2.0)
        file_id, unique_id = telegram.add_file(note, file_size=25 * 1024 * 1024)  # declared: over 20 MB
        ann = telegram.user(CHAT, "Ann")
        async with running_bot(env):
            telegram.push_message(
                CHAT,
                ann,
                {
                    "voice": {
                        "file_id": file_id,
                        "file_unique_id": unique_id,
                        "duration": 2,
                        "file_size": 25 * 1024 * 1024,
                    }
                },
            )
            [reply] = await telegram.wait_sent(CHAT)
    assert reply.kind == "voice"
    assert telegram.downloads == []  # nothing went over HTTP: the bot read the server's file
    assert openai_api.chat_requests()[0].audio_inputs[0].duration == pytest.approx(2.0, abs=0.1)


def ledger(db_path: Path) -> list[tuple[int, str]]:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        return db.execute("SELECT user_id, purpose FROM usage_ledger ORDER BY id").fetchall()


async def test_tools_and_summaries_go_through_the_ledger_and_the_budgets(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"
    ann = telegram.user(CHAT, "Ann")
    async with running_bot(lab_env(telegram, openai_api, db)):
        note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
        await telegram.wait_sent(CHAT)
        telegram.push_text(CHAT, ann, "/transcribe", reply_to=note)
        spoken = telegram.push_text(CHAT, ann, "/speak hello there")
        await telegram.wait_for(
            lambda: any(m.kind == "voice" and m.reply_to_message_id == spoken for m in telegram.sent), 10
        )
    purposes = [purpose for user, purpose in ledger(db) if user == CHAT]
    assert purposes.count("reply") == 1 and purposes.count("transcription") == 2 and purposes[-1] == "speak"

    broke = lab_env(telegram, openai_api, tmp_path / "other.db", PARLEY_USER_DAILY_BUDGET_USD="0")
    before = len(openai_api.requests)
    async with running_bot(broke):
        telegram.push_text(CHAT, ann, "/speak this costs money")
        refusal = (await telegram.wait_sent(CHAT, count=len(telegram.sent_to(CHAT)) + 1))[-1]
    assert refusal.kind == "text" and "budget" in refusal.text.lower()
    assert len(openai_api.requests) == before  # refused before any call


async def test_text_mode_does_not_pay_for_audio_it_will_not_send(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    telegram.push_text(CHAT, ann, "/mode text")
    await telegram.wait_sent(CHAT)
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    answer = (await telegram.wait_sent(CHAT, count=2))[-1]
    assert answer.kind == "text" and answer.reply_to_message_id == note
    request = openai_api.chat_requests()[-1].json
    assert request["modalities"] == ["text"] and "audio" not in request  # no audio tokens out
    telegram.push_text(CHAT, ann, "and typed")  # typed in: the audio model still needs audio out
    typed = (await telegram.wait_sent(CHAT, count=3))[-1]
    assert typed.kind == "text" and openai_api.chat_requests()[-1].json["modalities"] == ["text", "audio"]


async def test_a_failed_tool_offers_retry_and_the_button_runs_it_again(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    ann = telegram.user(CHAT, "Ann")
    note = telegram.push_voice(CHAT, ann, make_voice_ogg(1.0))
    await telegram.wait_sent(CHAT)
    openai_api.fail_next(500)
    asked = telegram.push_text(CHAT, ann, "/transcribe", reply_to=note)

    def offers_retry(message) -> bool:  # the conversation's own reply carries "Try another answer" instead
        return bool(message.reply_markup) and message.reply_markup["inline_keyboard"][0][0]["text"] == texts.RETRY

    await telegram.wait_for(lambda: any(offers_retry(m) for m in telegram.sent_to(CHAT)), 10, what="retry offer")
    [failure] = [m for m in telegram.sent_to(CHAT) if offers_retry(m)]
    assert failure.reply_to_message_id == asked
    [[button]] = failure.reply_markup["inline_keyboard"]
    telegram.push_callback(CHAT, ann, failure.message_id, button["callback_data"])
    await telegram.wait_for(
        lambda: any(m.text == "I heard 1.0 seconds of audio." for m in telegram.sent_to(CHAT)), 10, what="transcript"
    )
    await telegram.wait_for(lambda: telegram.message(CHAT, failure.message_id).deleted, 10, what="status taken back")
    assert telegram.message(CHAT, failure.message_id).edits == [texts.RETRYING]
