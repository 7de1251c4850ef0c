"""`python -m bench [--smoke] [--out FILE] [--postgres [URL]]`: run every measurement, print the table, write the JSON.

Two runs of the real bot: one on a new database (overhead, makespan, prompt tokens, start-up time), one
on a large seeded database (memory under load, start-up time). A full run takes a few minutes on 2 cores;
--smoke runs every measurement at a token size in seconds (the test suite runs it). --postgres measures the
same on PostgreSQL instead, with one process and with two (bench/cluster.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench import cluster, scenarios
from bench.process import BotProcess, stand_ins
from bench.report import machine, system_ffmpeg, table, write_json
from bench.scenarios import REPLY, Lab, spoken_reply
from bench.seed import FIRST_USER, seed
from lab import parse_wav
from lab.harness import lab_env
from parley import tokens

FULL = {
    "overhead": [(5.0, 20), (30.0, 20), (120.0, 10)],
    "overhead_at_once": (30.0, 20),
    "makespan": [1, 10, 100],
    "model_seconds": 2.0,
    "conversation_turns": 100,
    "rss_users": 10_000,
    "rss_turns_per_user": 20,
    "rss_concurrent": 100,
    "other_workers": 48,
    "tight_context_tokens": 1000,
}
SMOKE = {
    "overhead": [(5.0, 2), (30.0, 1)],
    "overhead_at_once": (30.0, 1),
    "makespan": [1, 3],
    "model_seconds": 0.3,
    "conversation_turns": 3,
    "rss_users": 200,
    "rss_turns_per_user": 10,
    "rss_concurrent": 3,
    "other_workers": 1,
    "tight_context_tokens": 500,
}


@contextlib.asynccontextmanager
async def lab_with_bot(
    workdir: Path, db: Path, name: str, reply_wav: bytes | None = None, **settings: str
) -> AsyncIterator[tuple[Lab, float]]:
    """Fresh stand-ins and `parley run` against them; yields the lab and the seconds to first getUpdates."""
    async with stand_ins(REPLY, reply_wav) as (telegram, openai_api, bots):
        env = lab_env(telegram, openai_api, db, PARLEY_LOG_LEVEL="INFO", PARLEY_MODEL_TIMEOUT_SECONDS="60", **settings)
        bot = BotProcess(env, workdir, name)
        bots.append(bot)
        await bot.start()
        # The first getUpdates is a long poll: its arrival, not its answer 30 s later, marks "running".
        await telegram.wait_for(
            lambda: bool(telegram.calls_of("getUpdates")) or bot.exited, timeout=120, what="the first getUpdates"
        )
        if bot.exited:
            raise RuntimeError(f"the bot did not start:\n{bot.log_path.read_text(errors='replace')[-3000:]}")
        first_poll = telegram.calls_of("getUpdates")[0]
        yield Lab(telegram, openai_api, bot), first_poll.at - bot.started_at
        code = await bot.stop()
        if code != 0:
            raise RuntimeError(f"the bot exited with {code} on SIGTERM; see {bot.log_path}")


_T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - _T0:6.1f} s] {text}", file=sys.stderr, flush=True)


async def run(plan: dict[str, Any], workdir: Path, smoke: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"smoke": smoke, "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    results["load_average_start"] = round(os.getloadavg()[0], 2)
    speech = spoken_reply()
    results["reply_audio"] = (
        f"speech (espeak-ng), {parse_wav(speech).duration:.1f} s" if speech else "a tone (espeak-ng not installed)"
    )
    async with lab_with_bot(workdir, workdir / "new.db", "bot-new-db", speech) as (lab, first_poll):
        results["startup"] = {"empty_db_seconds": round(first_poll, 2)}
        results["overhead"] = []
        for index, (seconds, turns) in enumerate(plan["overhead"]):
            say(f"bench: overhead, {turns} turns with {seconds:g} s notes")
            results["overhead"].append(
                await scenarios.overhead(lab, seconds, turns, chat_id=100 + index, model_latency=plan["model_seconds"])
            )
        seconds, turns = plan["overhead_at_once"]
        say(f"bench: overhead, {turns} turns with {seconds:g} s notes, the whole reply at once")
        results["overhead_at_once"] = await scenarios.overhead(lab, seconds, turns, chat_id=150, model_latency=0.0)
        results["makespan"] = []
        for users in plan["makespan"]:
            say(f"bench: makespan, {users} users at once")
            results["makespan"].append(
                await scenarios.makespan(lab, users, first_chat=10_000 * users, model_latency=plan["model_seconds"])
            )
        say(f"bench: prompt tokens over {plan['conversation_turns']} turns")
        results["prompt_tokens"] = await scenarios.prompt_tokens(lab, plan["conversation_turns"], chat_id=200)

    big = workdir / "large.db"
    say(f"bench: seeding {plan['rss_users']:,} users × {plan['rss_turns_per_user']} turns")
    seeded = await seed(big, users=plan["rss_users"], turns_per_user=plan["rss_turns_per_user"])
    async with lab_with_bot(workdir, big, "bot-large-db", speech) as (lab, first_poll):
        results["startup"]["large_db_seconds"] = round(first_poll, 2)
        idle = lab.bot.rss
        idle_tree = lab.bot.tree_memory()[0]
        say(f"bench: memory, {plan['rss_concurrent']} seeded users at once")
        burst = await scenarios.makespan(
            lab, plan["rss_concurrent"], first_chat=FIRST_USER, model_latency=plan["model_seconds"]
        )
        results["rss_burst"] = burst
        results["rss"] = {
            "users": seeded["users"],
            "turns": seeded["turns"],
            "db_mb": seeded["mb"],
            "seed_seconds": seeded["seconds"],
            "concurrent_turns": plan["rss_concurrent"],
            "idle_mb": round(idle / 2**20, 1),
            "idle_tree_mb": round(idle_tree / 2**20, 1),
            "peak_mb": round(lab.bot.peak_rss / 2**20, 1),
            "peak_tree_mb": burst["peak_tree_mb"],
            "tokenizer_loaded": lab.bot.count_in_log(tokens.LOADED) > 0,
        }

    # The same burst where every context nears its budget, so the exact tokenizer is in memory too.
    tight = plan["tight_context_tokens"]
    async with lab_with_bot(workdir, big, "bot-large-db-tokenizer", speech, PARLEY_CONTEXT_TOKENS=str(tight)) as (
        lab,
        _,
    ):
        say(f"bench: memory, {plan['rss_concurrent']} other seeded users at once, PARLEY_CONTEXT_TOKENS={tight}")
        tight_burst = await scenarios.makespan(
            lab, plan["rss_concurrent"], first_chat=FIRST_USER + plan["rss_concurrent"],
            model_latency=plan["model_seconds"],
        )  # fmt: skip
        results["rss_tokenizer"] = {
            "burst": tight_burst,
            "context_tokens": tight,
            "peak_mb": round(lab.bot.peak_rss / 2**20, 1),
            "tokenizer_loaded": lab.bot.count_in_log(tokens.LOADED) > 0,
        }

    # The same burst with another PARLEY_WORKERS (the old default): what the number of jobs at once buys.
    other = plan["other_workers"]
    users = plan["makespan"][-1]
    async with lab_with_bot(workdir, workdir / "other.db", "bot-other", speech, PARLEY_WORKERS=str(other)) as (lab, _):
        say(f"bench: makespan, {users} users at once with PARLEY_WORKERS={other}")
        burst = await scenarios.makespan(lab, users, first_chat=900_000, model_latency=plan["model_seconds"])
        results["makespan_other"] = {**burst, "workers": other, "peak_mb": round(lab.bot.peak_rss / 2**20, 1)}

    # A host's own ffmpeg in place of the wheel's (as after `apt install ffmpeg`): what a voice turn costs then.
    system = system_ffmpeg()
    if system is not None:
        path, version = system
        env = {"IMAGEIO_FFMPEG_EXE": path}
        async with lab_with_bot(workdir, workdir / "system-ffmpeg.db", "bot-system-ffmpeg", speech, **env) as (lab, _):
            seconds, turns = plan["overhead"][1]
            say(f"bench: with {path} ({version}): overhead, {turns} turns with {seconds:g} s notes; burst of {users}")
            over = await scenarios.overhead(lab, seconds, turns, chat_id=300, model_latency=plan["model_seconds"])
            burst = await scenarios.makespan(lab, users, first_chat=950_000, model_latency=plan["model_seconds"])
            results["system_ffmpeg"] = {"path": path, "version": version, "overhead": over, "burst": burst}
    results["load_average_end"] = round(os.getloadavg()[0], 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every measurement at a token size (seconds)")
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"), help="where to write the JSON")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (databases, bot logs)")
    parser.add_argument(
        "--postgres", nargs="?", const="", default=None, metavar="URL",
        help="on PostgreSQL, one process and two (an administrative URL; default: PARLEY_TEST_POSTGRES or the "
        "local server); writes bench/results-postgres.json unless --out says otherwise",
    )  # fmt: skip
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="parley-bench-"))
    plan = SMOKE if args.smoke else FULL
    try:
        if args.postgres is not None:
            return _postgres(plan, workdir, args)
        results = asyncio.run(run(plan, workdir, args.smoke))
    finally:
        if args.keep:
            say(f"bench: working directory kept at {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    write_json(results, args.out)
    say(f"bench: results written to {args.out}")
    return 0


def _postgres(plan: dict[str, Any], workdir: Path, args: argparse.Namespace) -> int:
    """The PostgreSQL figures: their own table and JSON file."""
    plan = {**plan, "overhead": plan["overhead"][:2]}  # the longest notes measure the codecs, not the database
    url = cluster.server_url(args.postgres or None)
    speech = scenarios.spoken_reply()
    results: dict[str, Any] = {"smoke": args.smoke, "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    results["reply_audio"] = (
        f"speech (espeak-ng), {parse_wav(speech).duration:.1f} s" if speech else "a tone (espeak-ng not installed)"
    )
    results["postgres"] = asyncio.run(cluster.run(plan, workdir, url, speech, say))
    out = args.out if args.out != Path("bench/results.json") else Path("bench/results-postgres.json")
    m = results["machine"]
    print(f"Machine: {m['cores']} cores, {m['cpu']}, Python {m['python']}{' (smoke run)' if args.smoke else ''}.")
    print(cluster.table(results["postgres"]))
    write_json(results, out)
    say(f"bench: results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
