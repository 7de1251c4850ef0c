"""`python -m bench.context_tokens [--turns 100] [--out FILE]`: prompt tokens per turn as a conversation grows.

One person talks for `turns` voice turns (3 s notes; the stand-in answers with a typical 15 s spoken
reply) to the real bot in this process, twice: with bounded context (the defaults: a running summary
plus the most recent turns, under PARLEY_CONTEXT_TOKENS) and with the whole history sent every time.
Prompt tokens are what the OpenAI stand-in reports (about 4 characters a text token, 10 a second of
audio); cost is the ledger's, at the shipped prices, with the summary calls added to the turn they follow.
Target: turn 100 costs no more than 1.3 times turn 10.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scenarios import REPLY
from lab import FakeOpenAI, FakeTelegram, make_voice_ogg
from lab.harness import lab_env, running_bot
from storage import Storage

CHAT = 4242
MARKS = (1, 10, 25, 50, 100)
DESIGNS = {
    "bounded": {},  # the shipped defaults
    "whole history": {"PARLEY_HISTORY_TURNS": "100000", "PARLEY_CONTEXT_TOKENS": "100000000"},
}


async def _costs_per_turn(db: Path) -> list[float]:
    """USD per turn: the reply and the note's transcription, plus any summary call made after it."""
    storage = await Storage.open(db)
    try:
        rows = await storage.usage.costs_in_order()
    finally:
        await storage.close()
    turns: list[float] = []
    for purpose, cost in rows:
        if purpose == "reply":
            turns.append(cost)
        elif turns:
            turns[-1] += cost
    return turns


async def converse(turns: int, settings: dict[str, str], workdir: Path) -> dict[str, Any]:
    telegram, openai_api = FakeTelegram(), FakeOpenAI()
    await telegram.start()
    await openai_api.start()
    # Spoken replies are a typical answer; a summary echoes its input, cut at max_completion_tokens as the
    # real API cuts it: the largest summary the fold allows, so the figures err on the high side.
    openai_api.reply_text = lambda body: (
        REPLY if "audio" in (body.get("modalities") or []) else f"Summary: {body['messages'][-1]['content']}"
    )
    db = workdir / f"{len(settings)}.db"
    env = lab_env(telegram, openai_api, db, PARLEY_LOG_LEVEL="WARNING", **settings)
    note = make_voice_ogg(3.0)
    started = time.monotonic()
    try:
        async with running_bot(env):
            storage = await Storage.open(db)  # beside the bot's own: to see when each turn's job is done
            try:
                user = telegram.user(CHAT, "Talker")
                for turn in range(1, turns + 1):
                    telegram.push_voice(CHAT, user, note)
                    await telegram.wait_sent(CHAT, count=turn, timeout=60)
                    # the turn's job (transcript, fold) is done once its row says so: then the next note
                    await _jobs_done(storage, turn, timeout=60)
            finally:
                await storage.close()
    finally:
        await telegram.stop()
        await openai_api.stop()
    audio = [r for r in openai_api.chat_requests() if r.json["model"] != "gpt-4o-mini"]
    prompt = [int(r.usage["prompt_tokens"]) for r in audio if r.usage]
    return {
        "prompt_tokens": prompt,
        "cost_usd": await _costs_per_turn(db),
        "summary_calls": len(openai_api.chat_requests()) - len(audio),
        "seconds": round(time.monotonic() - started, 1),
    }


async def _jobs_done(storage: Storage, count: int, *, timeout: float) -> None:  # noqa: ASYNC109 - a deadline
    """Wait until `count` jobs are done."""
    deadline = time.monotonic() + timeout
    while (await storage.jobs.counts()).get("done", 0) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"turn {count} not finished within {timeout:.0f} s")
        await asyncio.sleep(0.05)


def table(results: dict[str, dict[str, Any]], turns: int) -> str:
    marks = [m for m in MARKS if m <= turns]
    lines = [
        "| design | " + " | ".join(f"turn {m}" for m in marks) + f" | turn {turns} / turn 10 | summary calls |",
        "| --- | " + " | ".join("---:" for _ in marks) + " | ---: | ---: |",
    ]
    for name, r in results.items():
        for key, unit in (("prompt_tokens", "tokens"), ("cost_usd", "USD")):
            series = r[key]
            cells = [f"{series[m - 1]:,}" if key == "prompt_tokens" else f"{series[m - 1]:.4f}" for m in marks]
            ratio = f"{series[-1] / series[9]:.2f}x" if len(series) >= 10 else "–"
            calls = str(r["summary_calls"]) if key == "prompt_tokens" else ""
            lines.append(f"| {name} ({unit}) | " + " | ".join(cells) + f" | {ratio} | {calls} |")
    return "\n".join(lines)


async def main(turns: int, out: Path | None) -> int:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        for name, settings in DESIGNS.items():
            print(f"bench.context_tokens: {name}, {turns} turns …", file=sys.stderr, flush=True)
            results[name] = await converse(turns, settings, Path(tmp))
    print(table(results, turns))
    if out is not None:
        await asyncio.to_thread(out.write_text, json.dumps(results, indent=1))
    bounded = results["bounded"]
    if turns >= 10:
        ratio = bounded["cost_usd"][-1] / bounded["cost_usd"][9]
        tokens = bounded["prompt_tokens"][-1] / bounded["prompt_tokens"][9]
        print(f"\nbounded: turn {turns} / turn 10 = {tokens:.2f}x prompt tokens, {ratio:.2f}x cost (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None, help="also write the per-turn figures as JSON")
    args = parser.parse_args()
    code = asyncio.run(main(args.turns, args.out))
    sys.exit(code)
