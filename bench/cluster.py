"""`python -m bench --postgres [URL]`: the same figures on PostgreSQL, with one Parley process and with two.

Each run gets a fresh schema on the server (URL: an administrative postgresql:// URL; PARLEY_TEST_POSTGRES or
postgresql://postgres@127.0.0.1:5432/postgres by default), dropped afterwards. The processes run in webhook
mode on ports of their own, as replicas behind a load balancer do; the bench plays Telegram and the balancer:
every update the lab holds is POSTed as soon as it is pushed, each to the next process in turn. One process
and two are measured the same way (overhead, a burst of users at once, memory with a large database copied
in by `parley migrate-db`'s own code), so the two columns compare like with like; the SQLite figures of
`python -m bench` come from long polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.process import BotProcess, LogReader, stand_ins
from bench.scenarios import REPLY, Lab
from bench.seed import FIRST_USER, seed
from lab import FakeOpenAI, FakeTelegram
from lab.harness import lab_env
from storage.postgres import create_schema, drop_schema, server_version, transaction_count
from storage.transfer import copy_sqlite_to_postgres

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
SECRET = "bench-webhook-secret-0123456789"


def server_url(given: str | None) -> str:
    return given or os.environ.get("PARLEY_TEST_POSTGRES", "").strip() or DEFAULT_SERVER


@contextlib.asynccontextmanager
async def fresh_schema(admin_url: str) -> AsyncIterator[str]:
    """A new schema on the server for one run; yields a URL whose connections use it; dropped afterwards."""
    name, url = await create_schema(admin_url, "bench")
    try:
        yield url
    finally:
        await drop_schema(admin_url, name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BotGroup(LogReader):
    """Several processes read as one bot by the scenarios: their log lines merged in the order the bench
    read them, CPU summed, memory summed (each process's peak: an upper bound of the group's)."""

    def __init__(self, bots: list[BotProcess]) -> None:
        self.bots = bots
        self._seen = [0] * len(bots)
        self._lines: list[str] = []

    @property
    def log_path(self) -> Path:
        return self.bots[0].log_path

    def log_lines(self) -> list[str]:
        for index, bot in enumerate(self.bots):
            lines = bot.log_lines()
            self._lines.extend(lines[self._seen[index] :])
            self._seen[index] = len(lines)
        return self._lines

    def raise_if_exited(self) -> None:
        for bot in self.bots:
            bot.raise_if_exited()

    def cpu_seconds(self) -> tuple[float, float]:
        own = below = 0.0
        for bot in self.bots:
            mine, theirs = bot.cpu_seconds()
            own, below = own + mine, below + theirs
        return own, below

    def reaped_seconds(self) -> float:
        return sum(bot.reaped_seconds() for bot in self.bots)

    def reset_peak_tree(self) -> None:
        for bot in self.bots:
            bot.reset_peak_tree()

    @property
    def peak_tree(self) -> tuple[int, int]:
        return sum(b.peak_tree[0] for b in self.bots), sum(b.peak_tree[1] for b in self.bots)

    @property
    def peak_split(self) -> tuple[int, int]:
        """Each process's split at its own peak, summed: the bots' PSS and their codec workers'."""
        return sum(b.peak_split[0] for b in self.bots), sum(b.peak_split[1] for b in self.bots)

    def per_process_mb(self) -> list[dict[str, float]]:
        return [
            {"idle_or_now_mb": round(b.rss / 2**20, 1), "peak_mb": round(b.peak_rss / 2**20, 1)} for b in self.bots
        ]


async def _courier(telegram: FakeTelegram, addresses: list[str]) -> None:
    """Telegram and the balancer: every pending update POSTed at once, each batch starting at the next process."""
    turn = 0
    while True:
        if telegram.pending_updates:
            start = turn % len(addresses)
            turn += 1
            await telegram.post_updates(*addresses[start:], *addresses[:start])
        else:
            await telegram.signal.wait(0.05)


def _env(telegram: FakeTelegram, openai_api: FakeOpenAI, workdir: Path, url: str, port: int) -> dict[str, str]:
    return lab_env(
        telegram, openai_api, workdir / "unused.db", DATABASE_URL=url, PARLEY_LOG_LEVEL="INFO",
        PARLEY_MODEL_TIMEOUT_SECONDS="60", PARLEY_WEBHOOK_URL="https://bench.example/telegram",
        PARLEY_WEBHOOK_SECRET=SECRET, PARLEY_LISTEN=f"127.0.0.1:{port}",
    )  # fmt: skip


@contextlib.asynccontextmanager
async def cluster(
    workdir: Path, url: str, name: str, processes: int, reply_wav: bytes | None
) -> AsyncIterator[tuple[Lab, BotGroup, float]]:
    """Fresh stand-ins and `processes` × `parley run` in webhook mode on one PostgreSQL schema; yields the lab,
    the group and the seconds until every process had set its webhook."""
    async with stand_ins(REPLY, reply_wav) as (telegram, openai_api, bots):
        ports = [_free_port() for _ in range(processes)]
        bots.extend(
            BotProcess(_env(telegram, openai_api, workdir, url, port), workdir, f"{name}-{index}")
            for index, port in enumerate(ports)
        )
        group = BotGroup(bots)
        courier: asyncio.Task[None] | None = None
        try:
            started = time.monotonic()
            for bot in bots:
                await bot.start()
            await telegram.wait_for(
                lambda: len(telegram.calls_of("setWebhook")) >= processes or any(b.exited for b in bots),
                timeout=180, what="every process's setWebhook",
            )  # fmt: skip
            for bot in bots:
                if bot.exited:
                    raise RuntimeError(f"a bot did not start:\n{bot.log_path.read_text(errors='replace')[-3000:]}")
            ready = max(c.at for c in telegram.calls_of("setWebhook")) - started
            courier = asyncio.create_task(_courier(telegram, [f"http://127.0.0.1:{port}" for port in ports]))
            yield Lab(telegram, openai_api, group), group, ready
            for bot in bots:
                code = await bot.stop()
                if code != 0:
                    raise RuntimeError(f"a bot exited with {code} on SIGTERM; see {bot.log_path}")
        finally:
            if courier is not None:
                courier.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await courier


async def run(plan: dict[str, Any], workdir: Path, admin_url: str, speech: bytes | None, say: Any) -> dict[str, Any]:
    """Overhead, bursts and memory on PostgreSQL with one process and with two."""
    results: dict[str, Any] = {"server": await server_version(admin_url), "runs": []}
    big = workdir / "large-for-postgres.db"
    say(f"bench: seeding {plan['rss_users']:,} users × {plan['rss_turns_per_user']} turns (then copied to PostgreSQL)")
    seeded = await seed(big, users=plan["rss_users"], turns_per_user=plan["rss_turns_per_user"])
    for processes in (1, 2):
        run: dict[str, Any] = {"processes": processes}
        async with fresh_schema(admin_url) as url, cluster(workdir, url, f"pg{processes}", processes, speech) as (
            lab, group, ready,
        ):  # fmt: skip
            run["startup_seconds"] = round(ready, 2)
            run["overhead"] = []
            for index, (seconds, turns) in enumerate(plan["overhead"]):
                say(f"bench: PostgreSQL, {processes} process(es): overhead, {turns} turns with {seconds:g} s notes")
                run["overhead"].append(
                    await scenarios.overhead(
                        lab, seconds, turns, chat_id=100 + index, model_latency=plan["model_seconds"]
                    )
                )
            run["makespan"] = []
            for users in plan["makespan"]:
                say(f"bench: PostgreSQL, {processes} process(es): makespan, {users} users at once")
                before = await transaction_count(url)
                burst = await scenarios.makespan(
                    lab, users, first_chat=10_000 * users, model_latency=plan["model_seconds"]
                )
                # Other clients of the same database (none in a bench of its own) would add to this.
                burst["transactions_per_turn"] = round((await transaction_count(url) - before) / users, 1)
                run["makespan"].append(burst)
        async with fresh_schema(admin_url) as url:
            say(f"bench: PostgreSQL, {processes} process(es): copying {seeded['turns']:,} turns in")
            copied = time.monotonic()
            await copy_sqlite_to_postgres(big, url)
            copy_seconds = time.monotonic() - copied
            async with cluster(workdir, url, f"pg{processes}-large", processes, speech) as (lab, group, ready):
                idle = group.per_process_mb()
                say(f"bench: PostgreSQL, {processes} process(es): memory, {plan['rss_concurrent']} users at once")
                burst = await scenarios.makespan(
                    lab, plan["rss_concurrent"], first_chat=FIRST_USER, model_latency=plan["model_seconds"]
                )
                run["rss"] = {
                    "users": seeded["users"],
                    "turns": seeded["turns"],
                    "copy_seconds": round(copy_seconds, 1),
                    "startup_seconds": round(ready, 2),
                    "concurrent_turns": plan["rss_concurrent"],
                    "idle": idle,
                    "per_process": group.per_process_mb(),
                    "burst": burst,
                }
        results["runs"].append(run)
    return results


def table(results: dict[str, Any]) -> str:
    """The PostgreSQL figures as Markdown rows: one column per number of processes."""
    runs = results["runs"]
    heads = " | ".join(f"{r['processes']} process{'es' if r['processes'] > 1 else ''}" for r in runs)
    rows = [
        f"PostgreSQL {results['server']}, webhook mode, updates spread over the processes in turn.",
        "",
        f"| measure | {heads} |",
        "| --- |" + " --- |" * len(runs),
    ]

    def row(label: str, cells: list[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    for i, item in enumerate(runs[0]["overhead"]):
        cells = [r["overhead"][i]["overhead_ms"] for r in runs]
        row(
            f"bot overhead, {item['note_seconds']:g} s note (n={item['overhead_ms']['n']})",
            [f"median {o['median']:.0f} ms, p95 {o['p95']:.0f} ms" for o in cells],
        )
    for i, item in enumerate(runs[0]["makespan"]):
        row(
            f"makespan, {item['users']} users at once, {item['model_seconds']:g} s model",
            [f"{r['makespan'][i]['seconds']:.2f} s ({r['makespan'][i]['floor_ratio']:.2f}× CPU floor), CPU "
             f"{r['makespan'][i]['cpu_ms_per_turn']['total']:.0f} ms/turn, "
             f"{r['makespan'][i]['transactions_per_turn']:g} database transactions/turn" for r in runs],
        )  # fmt: skip
    first = runs[0]["rss"]
    row(
        f"memory, {first['users']:,} users and {first['turns']:,} turns, {first['concurrent_turns']} turns at once",
        [
            f"tree peak {r['rss']['burst']['peak_tree_mb']['pss']:.0f} MB PSS in all; per process peak "
            + ", ".join(f"{p['peak_mb']:.0f}" for p in r["rss"]["per_process"])
            + " MB RSS (idle after start "
            + ", ".join(f"{p['idle_or_now_mb']:.0f}" for p in r["rss"]["idle"])
            + " MB); burst "
            + f"{r['rss']['burst']['seconds']:.2f} s"
            for r in runs
        ],
    )
    row(
        "start → every webhook set",
        [f"{r['startup_seconds']:.2f} s (new), {r['rss']['startup_seconds']:.2f} s (large)" for r in runs],
    )
    row("copying the large database in (migrate-db)", [f"{r['rss']['copy_seconds']:.1f} s" for r in runs])
    return "\n".join(rows)
