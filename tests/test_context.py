"""Bounded context and providers, end to end: running summaries after delivery, the token budget, idle
resets, and Azure OpenAI — the real bot against the lab."""

from __future__ import annotations

import json
import sqlite3
import time
from importlib import resources
from pathlib import Path

import pytest

from bot import texts
from lab import FakeOpenAI, FakeTelegram, make_voice_ogg
from lab.harness import lab_env, running_bot
from parley import tokens
from parley.context import SUMMARY_HEADER

ANN = 222


def azure_prices(tmp_path: Path) -> Path:
    """The shipped table, plus the deployment names of this Azure resource."""
    table = json.loads(resources.files("parley").joinpath("prices.json").read_text())
    table["aliases"] = {"voice-prod": "gpt-4o-audio-preview", "voice-cheap": "gpt-audio-mini",
                        "stt": "gpt-4o-mini-transcribe"}  # fmt: skip
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(table))
    return path


def purposes(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT purpose FROM usage_ledger ORDER BY id")]


def summary_requests(openai_api: FakeOpenAI) -> list:
    return [r for r in openai_api.chat_requests() if r.json["model"] == "gpt-4o-mini"]


async def test_older_turns_are_folded_into_a_summary_after_the_reply(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "parley.db"
    async with running_bot(lab_env(telegram, openai_api, db, PARLEY_HISTORY_TURNS="4")) as bot:
        ann = telegram.user(ANN, "Ann")
        for turn, words in enumerate(["my cat is Tom", "I live in Oslo", "third", "fourth", "fifth"], 1):
            telegram.push_text(ANN, ann, words)
            await telegram.wait_sent(ANN, count=turn)
            if turn == 4:
                # The fold of turns 1-3 was asked for only once turn 4's reply was out.
                await openai_api.wait_requests(5, kind="chat")
                [fold] = summary_requests(openai_api)
                [fourth_reply] = [c for c in telegram.calls_of("sendVoice") if c.ok][3:4]
                assert fourth_reply.finished is not None and fold.started >= fourth_reply.finished
        assert await bot.services.storage.turns.count(ANN) == 10  # every turn is still stored

    [fold] = summary_requests(openai_api)
    assert fold.json["max_completion_tokens"] == 300
    assert "User: my cat is Tom" in fold.json["messages"][1]["content"]
    assert "User: fourth" not in fold.json["messages"][1]["content"]  # the newest exchange stays verbatim
    fifth = openai_api.chat_requests()[-1].json["messages"]
    system = fifth[0]["content"]
    assert SUMMARY_HEADER in system and "my cat is Tom" in system  # the lab's summary echoes what it read
    assert [m["content"] for m in fifth[1:]] == ["fourth", "You said: fourth", "fifth"]
    assert purposes(db).count("summary") == 1


async def test_the_context_stays_under_the_token_budget(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    long_turn = " ".join(["word"] * 100)
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_CONTEXT_TOKENS="500")):
        ann = telegram.user(ANN, "Ann")
        for turn in range(1, 4):
            telegram.push_text(ANN, ann, f"{turn} {long_turn}")
            await telegram.wait_sent(ANN, count=turn)
        await openai_api.wait_for(lambda: len(summary_requests(openai_api)) == 1, what="the fold after turn 3")
    third = [r for r in openai_api.chat_requests() if r.json["model"] == "gpt-audio-1.5"][2].json["messages"]
    assert tokens.count_messages(third) <= 500
    assert tokens.count_messages([*third, {"role": "user", "content": f"You said: 1 {long_turn}"}]) > 500
    assert third[-1]["content"] == f"3 {long_turn}"
    assert [m["content"] for m in third[1:-1]] == [f"2 {long_turn}", f"You said: 2 {long_turn}"]


async def test_after_a_long_silence_a_new_conversation_starts_and_the_caption_says_so(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_IDLE_RESET_HOURS="2")) as bot:
        context = bot.services.engine.context
        ann = telegram.user(ANN, "Ann")
        telegram.push_text(ANN, ann, "before")
        await telegram.wait_sent(ANN, count=1)
        context.now = lambda: time.time() + 2 * 3600  # two hours later (the clock is injected: nothing sleeps)
        telegram.push_text(ANN, ann, "after a while")
        second = (await telegram.wait_sent(ANN, count=2))[1]
        context.now = time.time
        telegram.push_text(ANN, ann, "right away")
        third = (await telegram.wait_sent(ANN, count=3))[2]
    assert second.caption == f"{texts.NEW_CONVERSATION}\n\nYou said: after a while"
    assert third.caption == "You said: right away"
    requests = [r.json["messages"] for r in openai_api.chat_requests()]
    assert [m["role"] for m in requests[1]] == ["system", "user"]
    assert [m["content"] for m in requests[2][1:]] == ["after a while", "You said: after a while", "right away"]


async def test_a_note_that_cannot_be_read_leaves_the_new_conversation_to_the_next_turn(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "p.db", PARLEY_IDLE_RESET_HOURS="2")) as bot:
        ann = telegram.user(ANN, "Ann")
        telegram.push_text(ANN, ann, "before")
        await telegram.wait_sent(ANN, count=1)
        bot.services.engine.context.now = lambda: time.time() + 2 * 3600
        telegram.push_voice(ANN, ann, b"not audio" * 100, duration=3)
        await telegram.wait_sent(ANN, count=2)
        telegram.push_text(ANN, ann, "after a while")
        third = (await telegram.wait_sent(ANN, count=3))[2]
    assert third.caption == f"{texts.NEW_CONVERSATION}\n\nYou said: after a while"
    assert [m["role"] for m in openai_api.chat_requests()[-1].json["messages"]] == ["system", "user"]


async def test_without_an_idle_setting_conversations_never_expire(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    async with running_bot(lab_env(telegram, openai_api, tmp_path / "p.db")) as bot:
        bot.services.engine.context.now = lambda: time.time() + 365 * 86400
        ann = telegram.user(ANN, "Ann")
        telegram.push_text(ANN, ann, "before")
        telegram.push_text(ANN, ann, "a year later")
        second = (await telegram.wait_sent(ANN, count=2))[1]
    assert second.caption == "You said: a year later"
    assert len(openai_api.chat_requests()[1].json["messages"]) == 4


@pytest.mark.parametrize("provider", ["openai", "azure"])
async def test_both_providers_serve_a_voice_turn(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, provider: str
) -> None:
    db = tmp_path / "parley.db"
    env = lab_env(telegram, openai_api, db)
    if provider == "azure":
        del env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"]  # not needed on Azure
        env |= {
            "AZURE_OPENAI_ENDPOINT": openai_api.azure_endpoint,
            "AZURE_OPENAI_API_KEY": openai_api.azure_api_key,
            "PARLEY_MODEL": "voice-prod",
            "PARLEY_MODELS": "voice-prod,voice-cheap",
            "PARLEY_TRANSCRIBE_MODEL": "stt",
            "PARLEY_PRICES": str(azure_prices(tmp_path)),
        }
        openai_api.azure_deployments = {
            "voice-prod": "gpt-4o-audio-preview-2024-12-17",
            "voice-cheap": "gpt-audio-mini",
            "stt": "gpt-4o-mini-transcribe",
        }
    async with running_bot(env):
        telegram.push_voice(ANN, telegram.user(ANN, "Ann"), make_voice_ogg(2.0))
        [reply] = await telegram.wait_sent(ANN)
        await openai_api.wait_requests(1, kind="transcriptions")
    assert reply.kind == "voice" and reply.caption == "I heard 2.0 seconds of audio."
    chat, transcription = openai_api.chat_requests()[0], openai_api.transcription_requests()[0]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT purpose, model, cost_usd FROM usage_ledger").fetchall()
    models = {purpose: model for purpose, model, _ in rows}
    if provider == "openai":
        assert (chat.path, transcription.path) == ("/v1/chat/completions", "/v1/audio/transcriptions")
        assert chat.headers["Authorization"] == f"Bearer {openai_api.api_key}"
        assert models == {"reply": "gpt-audio-1.5", "transcription": "gpt-4o-mini-transcribe"}
        return
    assert chat.path == "/openai/deployments/voice-prod/chat/completions"
    assert transcription.path == "/openai/deployments/stt/audio/transcriptions"
    for request in (chat, transcription):
        assert request.query == {"api-version": "2025-01-01-preview"}
        assert request.headers["api-key"] == openai_api.azure_api_key
        assert "Authorization" not in request.headers
    assert chat.status == transcription.status == 200
    # Azure names the model behind a chat deployment; a transcription is known by its deployment's name,
    # which the operator's price file maps to a model.
    assert models == {"reply": "gpt-4o-audio-preview-2024-12-17", "transcription": "stt"}
    usage = transcription.response["usage"]
    [cost] = [c for purpose, _, c in rows if purpose == "transcription"]
    audio, text_out = usage["input_token_details"]["audio_tokens"], usage["output_tokens"]
    assert cost == pytest.approx((audio * 3.0 + text_out * 5.0) / 1e6)  # gpt-4o-mini-transcribe's prices


def test_short_conversations_never_load_the_tokenizer(tmp_path: Path) -> None:
    """Counting exactly needs a 78 MB tokenizer; a context that fits even by a byte count does not."""
    import subprocess
    import sys

    script = f"""
import asyncio
from parley.context import ContextBuilder
from storage import NewTurn, Storage
async def main():
    storage = await Storage.open({str(tmp_path / "p.db")!r})
    await storage.turns.add([NewTurn(chat_id=1, user_id=1, role="user", kind="text", text="hello there")])
    builder = ContextBuilder(storage, system_prompt="Be brief.", max_tokens=6000, history_turns=12)
    context = await builder.build(1, 1, {{"role": "user", "content": "and again"}})
    assert len(context.messages) == 3, context.messages
    await storage.close()
    from parley import tokens
    print("cached" if tokens.loaded() else "not loaded")
asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("not loaded")


@pytest.mark.parametrize("words", [1, 20, 60, 200, 600])
@pytest.mark.parametrize("budget", [500, 2000, 6000])
def test_the_fold_decides_by_byte_counts_only_when_they_give_the_exact_answer(
    tmp_path: Path, words: int, budget: int
) -> None:
    """Folding keeps as many verbatim turns with byte counts as with tiktoken's counts; when bytes cannot
    tell, it says so (and the fold loads the tokenizer)."""
    from parley.context import ContextBuilder
    from storage import StoredTurn

    builder = ContextBuilder(None, system_prompt="Be brief.", max_tokens=budget, history_turns=12)  # type: ignore[arg-type]
    text = " ".join(f"word{i} héllo" for i in range(words))
    pending = [StoredTurn(i, 1, "user" if i % 2 else "assistant", "text", text, i, 0.0) for i in range(20)]
    by_bytes = builder._keep_by_bytes("A summary of earlier talk.", pending)
    exact = builder._keep("A summary of earlier talk.", pending)
    if by_bytes is not None:
        assert by_bytes == exact
    else:  # bytes could not prove the whole window fits: the exact count keeps fewer turns, or the same
        assert exact <= builder._initial_keep(pending)
    if words <= 20 and budget == 6000:
        assert by_bytes == exact == 8  # typical short voice turns: decided without the tokenizer
    if words >= 200:
        assert by_bytes is None and exact < 8
