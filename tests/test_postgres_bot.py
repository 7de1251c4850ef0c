"""The whole bot on PostgreSQL (DATABASE_URL): a voice turn, memory across a restart, a preference, /forget.
The storage tests cover every query on both engines; this shows the application wired to the second one."""

from __future__ import annotations

from pathlib import Path

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot

CHAT = 3003


async def test_a_conversation_on_postgresql_survives_a_restart_and_forget(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str
) -> None:
    env = lab_env(telegram, openai_api, tmp_path / "unused.db", DATABASE_URL=postgres_url)
    ann = telegram.user(CHAT, "Ann")
    async with running_bot(env) as bot:
        assert bot.services.storage.path is None  # no SQLite file in play
        telegram.push_text(CHAT, ann, "/voice sage")
        telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
        replies = await telegram.wait_sent(CHAT, count=2)
        assert replies[1].kind == "voice"
    assert not (tmp_path / "unused.db").exists()

    async with running_bot(env) as bot:  # a new process: what it knows comes from PostgreSQL
        telegram.push_text(CHAT, ann, "and now?")
        await telegram.wait_sent(CHAT, count=3)
        request = openai_api.chat_requests()[-1].json
        assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "user"]
        assert request["audio"]["voice"] == "sage"
        assert await bot.services.storage.turns.count(ann["id"]) == 4

        telegram.push_text(CHAT, ann, "/forget")
        confirm = (await telegram.wait_sent(CHAT, count=4))[3]
        telegram.push_callback(CHAT, ann, confirm.message_id, "forget:yes")
        await telegram.wait_for(lambda: telegram.message(CHAT, confirm.message_id)["text"] == texts.forget_done(4))
        assert await bot.services.storage.turns.count(ann["id"]) == 0
        assert (await bot.services.storage.users.preferences(ann["id"])).voice is None
