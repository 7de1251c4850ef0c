"""`python -m bench.storage [--postgres URL] [--turns N]`: the storage hot path of one voice turn, per engine.

One turn's database work as the bot does it: read the conversation's state and its unsummarised turns
(context assembly), then store the user's turn and the reply in one transaction. Milliseconds per turn,
median of five rounds of N turns, on a fresh SQLite file and (with --postgres, an administrative URL) on a
fresh schema of that server. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from storage import NewTurn, Storage
from storage.postgres import create_schema, drop_schema


async def _round(storage: Storage, chat: int, turns: int) -> float:
    started = time.perf_counter()
    for i in range(turns):
        state = await storage.turns.state(chat, chat)
        if state.conversation_id is not None:
            await storage.turns.after(state.conversation_id, state.through_turn_id, 20)
        await storage.turns.add(
            [
                NewTurn(chat_id=chat, user_id=chat, role="user", kind="voice", text=f"question {i}"),
                NewTurn(chat_id=chat, user_id=chat, role="assistant", kind="voice", text=f"answer {i}"),
            ]
        )
    return (time.perf_counter() - started) / turns * 1000


async def _measure(target: Path | str, turns: int) -> float:
    storage = await Storage.open(target)
    try:
        await _round(storage, 1, 20)  # warm-up: statements prepared, pages cached
        return statistics.median([await _round(storage, chat, turns) for chat in range(2, 7)])
    finally:
        await storage.close()


async def main(postgres: str | None, turns: int) -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        results["sqlite_ms_per_turn"] = round(await _measure(Path(folder) / "bench.db", turns), 3)
    if postgres:
        schema, url = await create_schema(postgres, "bench")
        try:
            results["postgresql_ms_per_turn"] = round(await _measure(url, turns), 3)
        finally:
            await drop_schema(postgres, schema)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="an administrative postgresql:// URL (a schema is made and dropped)")
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.postgres, args.turns)), indent=2))
