"""A voice turn's calls in the order that gets the answer out soonest: the reply's request first, the
note's transcription once that request is on its way, both while the model thinks."""

from __future__ import annotations

from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg

CHAT = 1201


async def test_the_reply_is_asked_for_before_the_note_is_transcribed(
    parley, telegram: FakeTelegram, openai_api: FakeOpenAI
) -> None:
    openai_api.latency = 0.5
    telegram.push_voice(CHAT, telegram.user(CHAT, "Ann"), make_voice_ogg(3.0))
    [reply] = await telegram.wait_sent(CHAT, count=1)
    assert reply.kind == "voice"
    [chat] = openai_api.chat_requests()
    [transcription] = openai_api.transcription_requests()
    assert chat.finished is not None and transcription.finished is not None
    assert chat.started < transcription.started < transcription.finished < chat.finished
