"""`python -m bench.group_import [--messages N]`: importing a Telegram Desktop export, and searching the log.

An export of N messages in Telegram Desktop's shape (several authors and languages, replies, formatted
text, voice notes) is written to a temporary file, then: parsed (messages per second, and the parser's peak
Python memory, which stays at one batch whatever N is), stored in a fresh SQLite file in the import's
batches (messages per second, the full-text index kept by triggers included), and searched with /find's
query for a Latin word, an accented one and a Chinese one (median milliseconds over 20 runs). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from parley.chat_export import ChatExport, ImportLimits
from storage import Storage

CHAT_BARE_ID = 1987654321
LINES = (
    "Has anyone looked at the budget for the spring fair?",
    "Le café est fermé à cause de la grève, on se retrouve à la bibliothèque ?",
    "我们下周三开会讨论预算。",
    "明日の会議は十時からです。資料を準備してください。",
    "We still need two volunteers for the ticket desk on Saturday.",
    "Die Spendenquittungen sind fertig, ich bringe sie mit.",
)
LIMITS = ImportLimits(file_bytes=2000 * 2**20)
"""As with a local Bot API server: 100,000 messages are more than the cloud API's 20 MB download."""
PEOPLE = [("Anna Müller", 5012345678), ("Bob Li", 6023456789), ("Zoë Faure", 443322110), ("陈伟", 1122334455)]


def write_export(path: Path, count: int) -> None:
    """Written message by message, as Telegram Desktop does, so the benchmark itself needs little memory."""
    rng = random.Random(7)
    start = time.time() - 30 * 86400
    with path.open("w", encoding="utf-8") as out:
        out.write(
            f'{{\n "name": "Bench group",\n "type": "private_supergroup",\n "id": {CHAT_BARE_ID},\n "messages": ['
        )
        for i in range(1, count + 1):
            name, user_id = rng.choice(PEOPLE)
            at = int(start + i * 30)
            item: dict[str, object] = {"id": i, "type": "message", "date": "2026-11-01T10:00:00",
                                       "date_unixtime": str(at), "from": name, "from_id": f"user{user_id}"}  # fmt: skip
            if i > 1 and rng.random() < 0.25:
                item["reply_to_message_id"] = rng.randint(max(1, i - 20), i - 1)
            if rng.random() < 0.05:
                item.update(file="(File not included.)", media_type="voice_message", mime_type="audio/ogg",
                            duration_seconds=12, text="", text_entities=[])  # fmt: skip
            elif rng.random() < 0.1:
                item["text"] = ["Budget: ", {"type": "bold", "text": "€1,150"}, f" (#{i})"]
            else:
                item["text"] = f"{rng.choice(LINES)} (#{i})"
            out.write(("\n  " if i == 1 else ",\n  ") + json.dumps(item, ensure_ascii=False))
        out.write("\n ]\n}\n")


def parse(path: Path) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    with ChatExport(path, LIMITS) as export:
        for batch in export.batches(500):
            count += len(batch)
    return count / (time.perf_counter() - started), count


def parse_peak(path: Path) -> float:
    """The parser's peak Python allocations in MB (a separate pass: tracing slows parsing several-fold)."""
    tracemalloc.start()
    with ChatExport(path, LIMITS) as export:
        for _ in export.batches(500):
            pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


async def store_and_search(path: Path, folder: Path) -> dict[str, float]:
    storage = await Storage.open(folder / "bench.db")
    try:
        started = time.perf_counter()
        with ChatExport(path, LIMITS) as export:
            for batch in export.batches(500):
                await storage.groups.record_many(batch)
            chat_id = export.chat.chat_id
        stored = export.counts.messages / (time.perf_counter() - started)
        result = {"store_messages_per_s": round(stored)}
        for label, words in (
            ("find_latin_ms", "volunteers"),
            ("find_accented_ms", "CAFE greve"),
            ("find_cjk_ms", "预算"),
        ):
            times = []
            for _ in range(20):
                began = time.perf_counter()
                found, _ = await storage.groups.find(chat_id, words, limit=5)
                times.append((time.perf_counter() - began) * 1000)
                assert found, words
            result[label] = round(statistics.median(times), 2)
        return result
    finally:
        await storage.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "result.json"
        write_export(path, args.messages)
        rate, count = parse(path)
        peak_mb = parse_peak(path)
        report: dict[str, float] = {
            "messages": count,
            "export_mb": round(path.stat().st_size / 2**20, 1),
            "parse_messages_per_s": round(rate),
            "parse_peak_python_mb": round(peak_mb, 1),
        }
        report.update(asyncio.run(store_and_search(path, Path(folder))))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
