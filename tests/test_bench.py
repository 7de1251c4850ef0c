"""One small run of the benchmark command: it must keep working (its figures are not judged here)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def test_bench_smoke_run_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "--smoke",
        "--out",
        str(out),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=110)
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]

    table = stdout.decode()
    assert table.startswith("Machine: ") and "cores" in table
    assert "| measure | result | target |" in table
    for row in ("bot overhead, 5 s note", "makespan, 1 users at once", "prompt tokens per turn", "peak memory"):
        assert f"| {row}" in table, row
    assert "| start → first getUpdates |" in table

    results = json.loads(out.read_text())
    assert results["smoke"] is True
    assert {"machine", "overhead", "makespan", "makespan_other", "prompt_tokens", "rss", "startup"} <= results.keys()
    assert [item["note_seconds"] for item in results["overhead"]] == [5.0, 30.0]
    assert all(item["overhead_ms"]["median"] > 0 for item in results["overhead"])
    assert [item["users"] for item in results["makespan"]] == [1, 3]
    assert results["prompt_tokens"]["turns"] == 3 and len(results["prompt_tokens"]["per_turn"]) == 3
    assert results["rss"]["turns"] == 2000 and results["rss"]["peak_mb"] > 0
    assert results["rss"]["peak_tree_mb"]["pss"] > 0 and results["makespan"][-1]["cpu_ms_per_turn"]["total"] > 0
    # The tree's peak is split between the bot and its codec workers, as sampled at the same moment.
    tree = results["rss"]["peak_tree_mb"]
    assert tree["bot_pss"] > 0 and tree["workers_pss"] > 0
    assert abs(tree["bot_pss"] + tree["workers_pss"] - tree["pss"]) <= 0.2
    assert 0 < results["rss"]["idle_tree_mb"] <= tree["pss"]
    assert results["makespan_other"]["workers"] == 1 and results["makespan_other"]["users"] == 3
    # A voice turn runs no ffmpeg: decoding and encoding happen in the codec workers.
    assert all(item["cpu_ms_per_turn"]["ffmpeg_children"] == 0 for item in results["makespan"])
    assert "| load average (1 min) on the machine |" in table
    assert results["startup"]["empty_db_seconds"] > 0 and results["startup"]["large_db_seconds"] > 0


async def test_group_import_bench_runs() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.group_import", "--messages", "3000", cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=110)
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]
    figures = json.loads(stdout)
    assert figures["messages"] == 3000
    assert {"parse_messages_per_s", "store_messages_per_s", "find_cjk_ms"} <= set(figures)


async def test_bench_smoke_run_on_postgresql_with_one_and_two_processes(tmp_path: Path, postgres_database: str) -> None:
    out = tmp_path / "results-postgres.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench", "--smoke", "--postgres", postgres_database, "--out", str(out), cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=170)
    assert proc.returncode == 0, stderr.decode(errors="replace")[-3000:]

    table = stdout.decode()
    assert table.startswith("Machine: ") and "PostgreSQL " in table
    assert "| measure | 1 process | 2 processes |" in table
    for row in ("bot overhead, 5 s note", "makespan, 3 users at once", "memory, 200 users", "start → every webhook"):
        assert f"| {row}" in table, row

    results = json.loads(out.read_text())
    runs = results["postgres"]["runs"]
    assert [run["processes"] for run in runs] == [1, 2]
    for run in runs:
        assert [item["note_seconds"] for item in run["overhead"]] == [5.0, 30.0]
        assert all(item["overhead_ms"]["median"] > 0 for item in run["overhead"])
        assert [item["users"] for item in run["makespan"]] == [1, 3]
        assert run["makespan"][-1]["cpu_ms_per_turn"]["total"] > 0
        assert run["rss"]["turns"] == 2000 and len(run["rss"]["per_process"]) == run["processes"]
        assert all(process["peak_mb"] > 0 for process in run["rss"]["per_process"])
