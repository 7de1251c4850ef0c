"""Summaries with cited points and answers about a span, through the real openai SDK against the lab.

The group log here is an imported export of realistic traffic (hundreds of messages, several authors and
languages, replies, forwards, voice notes), so chunking, merging and the citation check meet what a real
group says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openai import AsyncOpenAI

from lab import FakeOpenAI
from parley.audio import AudioConverter, find_ffmpeg
from parley.chat_export import ChatExport
from parley.citations import MAX_POINTS, Proposal, check, numbered_line
from parley.errors import ModelError
from parley.model import ModelClient
from parley.summaries import GroupSummarizer, chunk_messages, relevant
from storage import Usage
from storage.groups import GroupMessage
from tests.chat_exports import realistic_export
from tests.citing_model import CitingModel

ZONE = "Europe/Berlin"


def imported(tmp_path: Path, count: int, **kw: object) -> list[GroupMessage]:
    with ChatExport(realistic_export(count=count, **kw).write(tmp_path / "result.json")) as export:  # type: ignore[arg-type]
        return [m for batch in export.batches() for m in batch]


@pytest.fixture
async def model(openai_api: FakeOpenAI) -> AsyncIterator[ModelClient]:
    client = ModelClient(
        AsyncOpenAI(base_url=openai_api.base_url, api_key=openai_api.api_key, max_retries=0),
        model="gpt-audio",
        transcribe_model="gpt-4o-mini-transcribe",
    )
    yield client
    await client.close()


def summarizer(model: ModelClient, chunk_tokens: int = 6000) -> GroupSummarizer:
    return GroupSummarizer(
        model=model, audio=AudioConverter(find_ffmpeg()), summary_model="gpt-4o-mini", chunk_tokens=chunk_tokens
    )


class Ledger:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Usage]] = []

    async def __call__(self, purpose: str, usage: Usage) -> None:
        self.calls.append((purpose, usage))


async def test_a_small_span_gives_cited_points_and_speaks_them(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    openai_api.reply_text = CitingModel()
    messages = imported(tmp_path, 30)
    ledger = Ledger()
    summary = await summarizer(model).summarize(messages, voice="alloy", timezone=ZONE, record=ledger)
    points_request, spoken = openai_api.chat_requests()
    assert points_request.json["model"] == "gpt-4o-mini"
    assert points_request.json["response_format"]["json_schema"]["name"] == "cited_points"
    log = points_request.json["messages"][-1]["content"]
    assert log.splitlines()[0] == numbered_line(messages[0], ZoneInfo(ZONE))
    assert spoken.json["model"] == "gpt-audio" and spoken.json["modalities"] == ["text", "audio"]
    span = {m.message_id: m for m in messages}
    authors = {m.author for m in messages}
    assert {p.sources[0].author for p in summary.points} == authors  # one point per speaker, by the stand-in
    for point in summary.points:
        assert point.sources and all(c.message_id in span for c in point.sources)
        assert all(c.author == span[c.message_id].author for c in point.sources)
        assert point.text in spoken.json["messages"][-1]["content"]
    assert summary.dropped == 0 and summary.chunks == 1
    assert summary.reply.voice_ogg and summary.reply.text.startswith(f"Summary of {len(messages)} messages from")
    assert [purpose for purpose, _ in ledger.calls] == ["summary", "summary"]


async def test_hundreds_of_messages_are_read_in_chunks_and_merged(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    stand_in = CitingModel()
    openai_api.reply_text = stand_in
    messages = imported(tmp_path, 400, forum=True)
    progress: list[tuple[int, int]] = []

    async def advance(done: int, total: int) -> None:
        progress.append((done, total))

    summary = await summarizer(model, chunk_tokens=1500).summarize(
        messages, voice="alloy", timezone=ZONE, progress=advance
    )
    chunks = chunk_messages(messages, ZoneInfo(ZONE), 1500)
    assert summary.chunks == len(chunks) >= 4
    assert progress == [(i, len(chunks)) for i in range(1, len(chunks) + 1)]
    assert stand_in.calls == ["cited_points"] * len(chunks) + ["cited_points", ""]  # chunks, the merge, speech
    assert 0 < len(summary.points) <= MAX_POINTS
    span = {m.message_id for m in messages}
    assert all(c.message_id in span for p in summary.points for c in p.sources)
    threads = {c.thread_id for p in summary.points for c in p.sources}
    assert threads <= {None, 3, 4}


async def test_a_point_citing_a_message_outside_the_span_is_asked_again(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    openai_api.reply_text = CitingModel(wrong_ids=[999_999])
    messages = imported(tmp_path, 25)
    summary = await summarizer(model).summarize(messages, voice="alloy", timezone=ZONE)
    _, again, _ = openai_api.chat_requests()
    correction = again.json["messages"][-1]["content"]
    assert "#999999" in correction and "not in the log" in correction
    assert again.json["messages"][-2]["role"] == "assistant"  # the model sees what it answered
    assert summary.dropped == 0
    assert all(c.message_id != 999_999 for p in summary.points for c in p.sources)
    assert len(summary.points) == len({m.author for m in messages})


async def test_a_point_that_fails_twice_is_left_out(model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path) -> None:
    openai_api.reply_text = CitingModel(wrong_ids=[999_999], wrong_every_time=True)
    messages = imported(tmp_path, 25)
    summary = await summarizer(model).summarize(messages, voice="alloy", timezone=ZONE)
    assert summary.dropped == 1
    assert len(summary.points) == len({m.author for m in messages}) - 1
    assert "999999" not in summary.reply.text
    assert all(c.message_id != 999_999 for p in summary.points for c in p.sources)


async def test_a_reply_that_is_not_the_json_asked_for_fails_plainly(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    openai_api.queue_replies("Here are the main points: the budget, the fair.")
    with pytest.raises(ModelError):
        await summarizer(model).summarize(imported(tmp_path, 10), voice="alloy", timezone=ZONE)


async def test_when_no_point_holds_up_nothing_is_said(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    openai_api.queue_replies('{"points": [{"text": "Everyone agreed.", "messages": [424242]}]}', '{"points": []}')
    with pytest.raises(ModelError, match="no point"):
        await summarizer(model).summarize(imported(tmp_path, 10), voice="alloy", timezone=ZONE)
    assert len(openai_api.chat_requests()) == 2  # asked once more, never spoken


async def test_a_question_is_answered_from_the_span_with_its_sources(
    model: ModelClient, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    openai_api.reply_text = CitingModel(wrong_ids=[777_777, 777_778])
    messages = imported(tmp_path, 200)
    answer = await summarizer(model, chunk_tokens=2000).answer(
        "What was said about the budget?", messages, voice="alloy", timezone=ZONE
    )
    span = {m.message_id: m for m in messages}
    assert answer.sources
    assert all("budget" in (span[c.message_id].text or "").casefold() for c in answer.sources)
    assert all(c.message_id < 777_777 for c in answer.sources)
    asked, _, spoken = openai_api.chat_requests()
    assert asked.json["response_format"]["json_schema"]["name"] == "cited_answer"
    assert spoken.json["messages"][-1]["content"] == answer.text
    assert answer.reply.voice_ogg


def test_relevant_lines_fit_the_budget_and_find_cjk_words(tmp_path: Path) -> None:
    messages = imported(tmp_path, 200)
    zone = ZoneInfo(ZONE)
    lines = [(m, numbered_line(m, zone)) for m in messages]
    picked = relevant("预算 meeting", lines, 300)
    assert sum(len(line) // 4 + 1 for _, line in picked) <= 300
    assert [m.sent_at for m, _ in picked] == sorted(m.sent_at for m, _ in picked)
    assert any("预算" in line for _, line in picked)


def test_check_trusts_no_point_with_one_wrong_id(tmp_path: Path) -> None:
    messages = imported(tmp_path, 10)
    span = {m.message_id: m for m in messages}
    ids = list(span)
    good, bad = check(
        [Proposal("fine", (ids[0], ids[1])), Proposal("half wrong", (ids[0], 5555)), Proposal("uncited", ())], span
    )
    assert [p.text for p in good] == ["fine"]
    assert [p.text for p in bad] == ["half wrong", "uncited"]
    assert [c.message_id for c in good[0].sources] == [ids[0], ids[1]]
