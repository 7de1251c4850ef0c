"""The group's memory as a tool: search this group's log and read around a hit, with links; nothing else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.memory import message_link
from parley.actions import Toolbox, ToolCall, load
from parley.actions.scope import CallerScope
from storage import Storage
from storage.groups import GroupMessage

FRIENDS, OTHERS = -1001500000001, -1001500000002
ANN = 41
START = 1_790_000_000.0


@pytest.fixture
async def storage(database_target: Path | str) -> AsyncIterator[Storage]:
    opened = await Storage.open(database_target)
    yield opened
    await opened.close()


async def said(storage: Storage, chat_id: int, message_id: int, author: str, text: str) -> None:
    await storage.groups.record(
        GroupMessage(chat_id, message_id, None, None, author, "text", text, None, None, None, START + message_id)
    )


async def call(storage: Storage, chat_id: int, name: str, arguments: dict) -> dict:
    scope = CallerScope(storage, is_admin=lambda _user: False, link=message_link, now=lambda: START + 10_000)
    context = await scope.context(chat_id=chat_id, user_id=ANN)
    toolbox = Toolbox(load(["group_memory"]))
    outcome = await toolbox.run(ToolCall("call_1", name, json.dumps(arguments)), context)
    return json.loads(outcome.content)


async def test_search_finds_this_groups_messages_with_links_and_reading_shows_the_discussion(
    storage: Storage,
) -> None:
    lines = [
        "who brings the salad on Friday?",
        "I can do dessert",
        "Friday works, let's say 7 pm",
        "100% agreed_on Friday_7pm",
        "see you all",
    ]
    for number, text in enumerate(lines, 1):
        await said(storage, FRIENDS, number, "Ann" if number % 2 else "Bob", text)
    await said(storage, OTHERS, 1, "Eve", "secret plans for Friday")

    found = await call(storage, FRIENDS, "search_group_log", {"query": "friday"})
    assert [m["message_id"] for m in found["matches"]] == [4, 3, 1]  # newest first, this group only
    assert found["matches"][1]["link"] == "https://t.me/c/1500000001/3"
    assert "Eve" not in json.dumps(found)
    both = await call(storage, FRIENDS, "search_group_log", {"query": "salad Friday"})
    assert [m["message_id"] for m in both["matches"]] == [1]  # every word must be there
    literal = await call(storage, FRIENDS, "search_group_log", {"query": "100% agreed_on"})
    assert [m["message_id"] for m in literal["matches"]] == [4]  # % and _ are plain characters
    span = await call(storage, FRIENDS, "read_group_log", {"message_id": 3, "before": 1, "after": 1})
    assert [m["text"] for m in span["messages"]] == lines[1:4]


async def test_the_group_log_is_not_offered_outside_a_group(storage: Storage) -> None:
    await said(storage, FRIENDS, 1, "Ann", "Friday at 7")
    scope = CallerScope(storage, is_admin=lambda _user: False)
    private = await scope.context(chat_id=ANN, user_id=ANN)
    toolbox = Toolbox(load(["group_memory"]))
    assert toolbox.offer(private) == []
    refused = await toolbox.run(ToolCall("c", "search_group_log", '{"query": "Friday"}'), private)
    assert not refused.ok and "Friday at 7" not in refused.content


async def test_the_tool_searches_with_the_same_index_as_find(storage: Storage) -> None:
    """Accents and case folded, Chinese found by its characters, forum links with their topic: what /find
    finds, the model finds."""
    await said(storage, FRIENDS, 1, "Zoë", "Le café est fermé à cause de la grève")
    await said(storage, FRIENDS, 2, "Li", "我们下周三开会讨论预算。")
    await storage.groups.record(
        GroupMessage(FRIENDS, 3, 7, None, "Bob", "voice_note", None, None, None, None, START + 3)
    )
    await storage.groups.set_transcript(FRIENDS, 3, "CAFÉ reopens on Monday", ok=True)
    for query in ("cafe", "预算", "GREVE cafe"):
        expected = (await storage.groups.find(FRIENDS, query, limit=10))[0]
        found = await call(storage, FRIENDS, "search_group_log", {"query": query})
        assert [m["message_id"] for m in found["matches"]] == [m.message_id for m in expected], query
        assert found["matches"], query
    cafe = await call(storage, FRIENDS, "search_group_log", {"query": "cafe"})
    assert [(m["message_id"], m.get("link")) for m in cafe["matches"]] == [
        (3, "https://t.me/c/1500000001/7/3"),  # in topic 7 of a forum
        (1, "https://t.me/c/1500000001/1"),
    ]
