"""Documents read aloud are bounded: a PDF bomb gets a plain answer in time, stops with the bot, and stays done."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

from bot import texts
from lab import FakeOpenAI, FakeTelegram
from lab.harness import ParleyProcess, lab_env, running_bot
from parley.documents import DocumentLimits, DocumentTooComplex, extract_text

CHAT = 1001
LIMITS = DocumentLimits()


def make_pdf(streams: list[bytes], pages: list[int]) -> bytes:
    """A PDF written by hand: Flate-compressed content `streams`, and one page per entry of `pages` drawing
    the stream of that index (pages may share one, as PDF allows). Helvetica is font F1 on every page."""
    count = len(streams)
    font = 3 + count  # 1 catalog, 2 page tree, then the streams, the font, the pages
    kids = b" ".join(b"%d 0 R" % (font + 1 + i) for i in range(len(pages)))
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[%s]/Count %d>>" % (kids, len(pages))]
    for content in streams:
        packed = zlib.compress(content)
        objects.append(b"<</Length %d/Filter/FlateDecode>>stream\n%s\nendstream" % (len(packed), packed))
    objects.append(b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>")
    for index in pages:
        objects.append(
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Contents %d 0 R/Resources<</Font<</F1 %d 0 R>>>>>>"
            % (3 + index, font)
        )
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_bomb() -> bytes:
    """The attack: 20 pages sharing one content stream of 100,000 text-showing operators that show nothing.
    pypdf spends seconds on each page (minutes on the file); the file is a few kilobytes."""
    return make_pdf([b"BT /F1 12 Tf 72 720 Td " + b"() Tj " * 100_000 + b"ET"], [0] * 20)


@functools.cache
def inflating_pdf() -> bytes:
    """One page whose content stream inflates from ~100 KB to 66 MB of operators: parsing it takes gigabytes."""
    return make_pdf([b"BT /F1 12 Tf " + b"() Tj " * 11_000_000 + b"ET"], [0])


def text_pdf(page_count: int) -> bytes:
    return make_pdf(
        [b"BT /F1 12 Tf 72 720 Td (Page %d of the report.) Tj ET" % (n + 1) for n in range(page_count)],
        list(range(page_count)),
    )


def extraction_children(pid: int) -> list[int]:
    """Process ids of the document extractions `pid` is running (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid and b"parley.documents" in command:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def speak_jobs(db_path: Path) -> list[tuple[str, int, str | None]]:
    with sqlite3.connect(db_path) as db:
        return list(db.execute("SELECT state, attempts, error FROM jobs WHERE kind = 'speak' ORDER BY id"))


async def wait_for_extraction(process: ParleyProcess, timeout: float = 30) -> list[int]:  # noqa: ASYNC109
    assert process.proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if children := extraction_children(process.proc.pid):
            return children
        await asyncio.sleep(0.05)
    raise AssertionError(f"no document extraction started within {timeout} s:\n{process.text}")


def push_document(telegram: FakeTelegram, data: bytes, name: str, mime_type: str) -> int:
    file_id, unique_id = telegram.add_file(data, kind="document", mime_type=mime_type, file_name=name)
    document = {"file_id": file_id, "file_unique_id": unique_id, "mime_type": mime_type, "file_name": name}
    return telegram.push_message(CHAT, telegram.user(CHAT, "Ann"), {"document": document})


async def test_a_pdf_bomb_is_answered_in_time_stops_with_the_bot_and_is_not_parsed_again(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    db_path = tmp_path / "parley.db"
    env = lab_env(telegram, openai_api, db_path, PARLEY_SHUTDOWN_SECONDS="1")
    bomb = pdf_bomb()
    assert len(bomb) < 16_000
    doc = push_document(telegram, bomb, "report.pdf", "application/pdf")
    telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "/speak", reply_to=doc)

    # SIGTERM while the bomb is being parsed: the bot exits within the grace period plus a few seconds,
    # and the extraction does not outlive it.
    first = ParleyProcess(env, tmp_path)
    await first.start()
    try:
        [child] = await wait_for_extraction(first)
        first.signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert await first.wait() == 0
        stopped_in = time.monotonic() - stopping
    finally:
        await first.kill()
    assert stopped_in < 1 + 5, f"took {stopped_in:.1f} s to stop"
    await asyncio.sleep(0.2)
    assert not alive(child)
    assert speak_jobs(db_path) == [("working", 1, None)]  # interrupted by the stop, not by the document

    # The next start takes the job up again; the extraction runs out of time and the person is told.
    second = ParleyProcess(env, tmp_path)
    await second.start()
    try:
        [child] = await wait_for_extraction(second)
        started = time.monotonic()
        await telegram.wait_for(
            lambda: any(m.text == texts.DOCUMENT_TOO_COMPLEX for m in telegram.sent_to(CHAT)), LIMITS.seconds + 10
        )
        answered_in = time.monotonic() - started
        assert not alive(child)
        assert second.proc is not None and extraction_children(second.proc.pid) == []
        second.signal(signal.SIGTERM)
        assert await second.wait() == 0
    finally:
        await second.kill()
    assert answered_in <= LIMITS.seconds + 5, f"answered after {answered_in:.1f} s"
    [answer] = [m for m in telegram.sent_to(CHAT) if m.text == texts.DOCUMENT_TOO_COMPLEX]
    assert answer.reply_to_message_id is not None
    assert speak_jobs(db_path) == [("failed", 2, "failed")]
    assert openai_api.requests == []

    # And the start after that leaves it alone: finished is finished.
    third = ParleyProcess(env, tmp_path)
    await third.start()
    try:
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "still there?")
        await telegram.wait_for(lambda: any(m.kind == "voice" for m in telegram.sent_to(CHAT)), 30)
        assert third.proc is not None and extraction_children(third.proc.pid) == []
        third.signal(signal.SIGTERM)
        assert await third.wait() == 0
    finally:
        await third.kill()
    assert "parley.documents" not in third.text
    assert speak_jobs(db_path) == [("failed", 2, "failed")]
    assert [m.text for m in telegram.sent_to(CHAT)].count(texts.DOCUMENT_TOO_COMPLEX) == 1


async def test_a_pdf_that_inflates_to_gigabytes_hits_the_memory_limit_and_gets_a_plain_answer(
    telegram: FakeTelegram, openai_api: FakeOpenAI, tmp_path: Path
) -> None:
    data = inflating_pdf()
    assert len(data) < 1024 * 1024  # under the size limit for documents
    try:  # all the time it wants: what stops it is the memory limit
        await extract_text(data, "pdf", DocumentLimits(seconds=300))
    except DocumentTooComplex as exc:
        assert str(exc).endswith("out of memory")
    else:
        raise AssertionError("the inflating PDF was read")

    async with running_bot(lab_env(telegram, openai_api, tmp_path / "parley.db")):
        doc = push_document(telegram, data, "big.pdf", "application/pdf")
        telegram.push_text(CHAT, telegram.user(CHAT, "Ann"), "/speak", reply_to=doc)
        await telegram.wait_for(lambda: any(m.text == texts.DOCUMENT_TOO_COMPLEX for m in telegram.sent_to(CHAT)), 30)
    assert openai_api.requests == []


async def test_pages_and_characters_are_capped() -> None:
    pages = await extract_text(text_pdf(LIMITS.pages + 20), "pdf")
    assert f"Page {LIMITS.pages} of the report." in pages
    assert f"Page {LIMITS.pages + 1} of" not in pages

    long_text = ("All work and no play makes Jack a dull boy. " * 6000).encode()  # 264,000 characters
    text = await extract_text(long_text, "text")
    assert len(text) == LIMITS.chars and long_text.decode().startswith(text)
    assert await extract_text("Grüße, naïve café\n".encode(), "text") == "Grüße, naïve café"


async def test_cancelling_an_extraction_kills_it() -> None:
    """What a stop does to a job in progress: the child goes at once, it does not run on to its deadline."""
    me = os.getpid()
    task = asyncio.create_task(extract_text(pdf_bomb(), "pdf"))
    for _ in range(200):
        if children := extraction_children(me):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("no extraction started")
    task.cancel()
    cancelled = time.monotonic()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert time.monotonic() - cancelled < 1
    assert not any(alive(child) for child in children)


def test_the_shutdown_deadline_ends_a_process_stuck_in_a_thread_and_its_children(tmp_path: Path) -> None:
    """What cancellation cannot stop (a thread that never returns) the deadline does, children included."""
    pid_file = tmp_path / "child.pid"
    script = f"""
import logging, subprocess, threading, time
from parley.shutdown import exit_after
logging.basicConfig()
child = subprocess.Popen(["sleep", "60"])
open({str(pid_file)!r}, "w").write(str(child.pid))
exit_after(0.5, 3)
stuck = threading.Thread(target=time.sleep, args=(60,))
stuck.start()
stuck.join()
"""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 3
    assert time.monotonic() - started < 5
    assert "still running 0 s after the stop signal: killing children and exiting" in result.stderr
    time.sleep(0.2)
    assert not alive(int(pid_file.read_text()))
