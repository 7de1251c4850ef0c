"""`parley migrate-db`: a SQLite database a real bot wrote, every table, into a real PostgreSQL; again, safely;
then the bot carries on from PostgreSQL where it was."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import pytest

from bot.cli import main
from lab import FakeOpenAI, FakeTelegram
from lab.audio import make_voice_ogg
from lab.harness import lab_env, running_bot
from storage import Storage, Usage
from storage.groups import GroupMessage
from storage.transfer import copy_sqlite_to_postgres
from storage.usage import LedgerEntry

CHAT = 4004


async def _fill_what_a_private_chat_leaves_empty(storage: Storage, chat: int, user: int) -> None:
    [turn, *_] = await storage.turns.recent(chat, user, 10)
    await storage.turns.set_summary(turn.conversation_id, "they said hello", turn.id)
    await storage.privacy.keep_audio(turn.id, user, b"OggS raw note")
    await storage.access.set("@friend", allowed=True, changed_by=user)
    await storage.access.bind("@friend", user)
    await storage.access.note_refusal(999, quiet_seconds=3600)
    await storage.access.note_admins_told(999, quiet_seconds=86400)
    await storage.access.note_group_notice(-100, quiet_seconds=86400)
    await storage.groups.record(GroupMessage(-100, 1, None, user, "Ann", "text", "hi all", None, None, None, 1.5))
    await storage.groups.set_digest(-100, "09:00", "Europe/Berlin")
    await storage.groups.remember_summary(-100, [2], 1.5, 1.5)
    await storage.cache.put("transcribe:abc", "words", user_id=user)
    await storage.reminders.add(
        user_id=user, chat_id=chat, text="call mum", first="2030-01-07T09:00", zone="Europe/Berlin",
        repeat="weekly", due_at=1_893_999_600.0,
    )  # fmt: skip
    await storage.usage.record(LedgerEntry(77, 77, "reply", Usage(model="gpt-audio", prompt_tokens=5), 0.01))
    await storage.privacy.forget_user(77, forgotten_key=-77)  # leaves a forgotten_spend row
    await storage.updates.record(5005)  # what a webhook takes in
    async with storage.usage.budget("everyone") as ledger:  # a budget hold of a call in progress
        await ledger.hold(user, 0.02, now=time.time(), until=time.time() + 900)
    await storage.schedule.claim("retention", 86400.0, claimer="host:1")


def _sqlite_tables(path: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(path) as db:
        # Plain tables: SQLite's search index (a virtual table and its shadow tables) is SQLite's alone.
        plain = "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table'"
        names = [r[0] for r in db.execute(plain)]
        return {
            n: sorted(db.execute(f'SELECT * FROM "{n}"').fetchall(), key=repr)
            for n in names
            if not n.startswith("sqlite_") and n != "_migrations"
        }


async def _postgres_tables(url: str, names: list[str]) -> dict[str, list[tuple]]:
    connection = await asyncpg.connect(url)
    try:
        return {n: sorted((tuple(r) for r in await connection.fetch(f'SELECT * FROM "{n}"')), key=repr) for n in names}
    finally:
        await connection.close()


async def test_migrate_db_copies_every_table_is_safe_to_repeat_and_the_bot_goes_on(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture
) -> None:
    db_path = tmp_path / "parley.db"
    ann = telegram.user(CHAT, "Ann")
    async with running_bot(lab_env(telegram, openai_api, db_path)) as bot:
        telegram.push_text(CHAT, ann, "/voice sage")
        telegram.push_voice(CHAT, ann, make_voice_ogg(2.0))
        await telegram.wait_sent(CHAT, count=2)
        await _fill_what_a_private_chat_leaves_empty(bot.services.storage, CHAT, ann["id"])
    env_file = tmp_path / ".env"
    env_file.write_text(f"PARLEY_DB={db_path}\n")  # like `parley backup`: no secrets needed

    code = await asyncio.to_thread(main, ["migrate-db", "--env-file", str(env_file), "--to", postgres_url])
    out = capsys.readouterr().out
    assert code == 0, out
    source = _sqlite_tables(db_path)
    assert all(source.values()), f"a table the test leaves empty: {[n for n, rows in source.items() if not rows]}"
    assert await _postgres_tables(postgres_url, list(source)) == source  # every row, every value
    assert "copied into" in out and "turns" in out

    again = await copy_sqlite_to_postgres(db_path, postgres_url)  # a second run: nothing twice
    assert [(t.table, t.copied) for t in again] == [(t.table, 0) for t in again]
    assert all(t.target_rows == t.source_rows == len(source[t.table]) for t in again)

    async with running_bot(lab_env(telegram, openai_api, tmp_path / "unused.db", DATABASE_URL=postgres_url)) as bot:
        telegram.push_text(CHAT, ann, "what did I say?")
        await telegram.wait_sent(CHAT, count=3)
        request = openai_api.chat_requests()[-1].json
        # The summary covers the first turn (set above); the reply after it and the new message follow.
        assert [m["role"] for m in request["messages"]] == ["system", "assistant", "user"]
        assert "they said hello" in str(request["messages"][0]["content"])
        assert request["audio"]["voice"] == "sage"
        storage = bot.services.storage
        turns = await storage.turns.recent(CHAT, ann["id"], 10)
        assert len(turns) == 4 and turns[2].id > turns[1].id  # new ids past the copied ones
    storage = await Storage.open(postgres_url)
    try:
        assert await storage.jobs.counts() == {"done": len(source["jobs"]) + 1}  # the new job got a fresh id
    finally:
        await storage.close()


async def test_migrate_db_refuses_what_it_cannot_use(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(f"PARLEY_DB={tmp_path / 'missing.db'}\n")
    assert main(["migrate-db", "--env-file", str(env_file), "--to", "postgresql://u@127.0.0.1/x"]) == 2
    assert "no database at" in capsys.readouterr().err
    await (await Storage.open(tmp_path / "there.db")).close()
    env_file.write_text(f"PARLEY_DB={tmp_path / 'there.db'}\n")
    assert main(["migrate-db", "--env-file", str(env_file), "--to", "mysql://u@host/x"]) == 2
    assert "postgresql://" in capsys.readouterr().err
