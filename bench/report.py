"""The machine description, the printed table, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from parley.audio import find_ffmpeg

TARGETS = {"overhead_30s_median_ms": 80.0, "cpu_ms_per_turn": 50.0, "floor_ratio_100": 1.25, "tree_mb": 150.0}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "ffmpeg": _version(find_ffmpeg()),
    }


def system_ffmpeg() -> tuple[str, str] | None:
    """An ffmpeg on PATH other than the wheel's (a distribution's, say), with its version; None without one."""
    found = shutil.which("ffmpeg")
    if found is None or Path(found).resolve() == Path(find_ffmpeg()).resolve():
        return None
    return found, _version(found)


def _version(ffmpeg: str) -> str:
    words = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True).stdout.split()
    return words[2] if len(words) > 2 else "?"


def _mark(value: float, target: float) -> str:
    return "✓" if value <= target else "✗ missed"


def table(results: dict[str, Any]) -> str:
    """A Markdown table (it goes into the README as printed)."""
    m = results["machine"]
    rows = [
        f"Machine: {m['cores']} cores, {m['cpu']}, Python {m['python']}, ffmpeg {m['ffmpeg']}"
        f"{' (smoke run: reduced sizes)' if results['smoke'] else ''}. Model replies: {results['reply_audio']}.",
        "",
        "| measure | result | target |",
        "| --- | --- | --- |",
    ]
    at_once = [results["overhead_at_once"]] if "overhead_at_once" in results else []
    for item in results["overhead"] + at_once:
        o = item["overhead_ms"]
        target = ""
        model = item.get("model_seconds", 0.0)
        streamed = f"the reply streamed over {model:g} s" if model else "the whole reply at once"
        if item["note_seconds"] == 30 and model:
            limit = TARGETS["overhead_30s_median_ms"]
            target = f"median ≤ {limit:g} ms {_mark(o['median'], limit)}"
        steps = ", ".join(f"{k} {v:.0f}" for k, v in item["bot_steps_median_ms"].items() if k not in ("model", "total"))
        rows.append(
            f"| bot overhead, {item['note_seconds']:g} s note, {streamed} (n={o['n']}) | median {o['median']:.0f} ms, "
            f"p95 {o['p95']:.0f} ms (steps, median ms: {steps}) | {target} |"
        )
    for item in results["makespan"]:
        target = ""
        if item["users"] == 100:
            limit = TARGETS["floor_ratio_100"]
            target = f"≤ {limit:g}× floor {_mark(item['floor_ratio'], limit)}"
        rows.append(
            f"| makespan, {item['users']} users at once, {item['model_seconds']:g} s model | "
            f"{item['seconds']:.2f} s (ratio {item['ratio']:.2f}; CPU floor {item['floor_seconds']:.2f} s, "
            f"{item['floor_ratio']:.2f}× it) | {target} |"
        )
    w = results["makespan_other"]
    rows.append(
        f"| makespan, {w['users']} users at once, PARLEY_WORKERS={w['workers']} | {w['seconds']:.2f} s "
        f"(ratio {w['ratio']:.2f}; {w['floor_ratio']:.2f}× its floor), process tree peak "
        f"{w['peak_tree_mb']['pss']:.0f} MB | |"
    )
    last = results["makespan"][-1]
    bursts = [last, results["rss_burst"], results["rss_tokenizer"]["burst"], w]
    cpu = last["cpu_ms_per_turn"]
    totals = sorted(b["cpu_ms_per_turn"]["total"] for b in bursts)
    ffmpeg_ms = max(b["cpu_ms_per_turn"].get("ffmpeg_children", 0.0) for b in bursts)
    limit = TARGETS["cpu_ms_per_turn"]
    rows.append(
        f"| CPU per voice turn, whole process tree (5 s note in, the reply out; burst of {last['users']}) | "
        f"{cpu['total']:.0f} ms: bot {cpu['bot']:.0f} ms, codec workers {cpu['workers_and_children']:.0f} ms; "
        f"{totals[0]:.0f}–{totals[-1]:.0f} ms over the run's {len(bursts)} bursts; ffmpeg children "
        f"{ffmpeg_ms:.0f} ms | ≤ {limit:g} ms {_mark(cpu['total'], limit)} |"
    )
    if "system_ffmpeg" in results:
        f = results["system_ffmpeg"]
        o, b = f["overhead"], f["burst"]
        rows.append(
            f"| with {f['path']} ({f['version']}) in place of the wheel's ffmpeg | overhead, {o['note_seconds']:g} s "
            f"note: median {o['overhead_ms']['median']:.0f} ms; burst of {b['users']}: {b['seconds']:.2f} s "
            f"({b['floor_ratio']:.2f}× its floor), CPU per turn {b['cpu_ms_per_turn']['total']:.0f} ms (ffmpeg "
            f"children {b['cpu_ms_per_turn']['ffmpeg_children']:.0f} ms), process tree "
            f"{b['peak_tree_mb']['pss']:.0f} MB | |"
        )
    t = results["prompt_tokens"]
    rows.append(
        f"| prompt tokens per turn over {t['turns']} turns | first {t['first']}, median {t['median']:.0f}, "
        f"max {t['max']}, last {t['last']} | |"
    )
    r = results["rss"]
    tree = r["peak_tree_mb"]
    rows.append(
        f"| peak memory, process tree (PSS), {r['users']:,} users and {r['turns']:,} stored turns, "
        f"{r['concurrent_turns']} turns at once | {tree['pss']:.0f} MB: the bot {tree['bot_pss']:.0f} MB, codec "
        f"workers {tree['workers_pss']:.0f} MB at that moment (the tree before the burst {r['idle_tree_mb']:.0f} MB; "
        f"RSS summed {tree['rss']:.0f} MB; the bot alone peaked at {r['peak_mb']:.0f} MB RSS, idle after start "
        f"{r['idle_mb']:.0f} MB; tokenizer "
        f"{'loaded' if r.get('tokenizer_loaded') else 'not needed'}) | ≤ {TARGETS['tree_mb']:g} MB "
        f"{_mark(tree['pss'], TARGETS['tree_mb'])} |"
    )
    if "rss_tokenizer" in results:
        k = results["rss_tokenizer"]
        rows.append(
            f"| the same, other users, every context near its budget (PARLEY_CONTEXT_TOKENS={k['context_tokens']}) | "
            f"{k['peak_mb']:.0f} MB, tokenizer {'loaded' if k['tokenizer_loaded'] else 'not loaded'} | |"
        )
    loads = [b.get("load_average", 0.0) for b in bursts]
    rows.append(
        f"| load average (1 min) on the machine | at the start {results.get('load_average_start', 0):.1f}, "
        f"at the bursts {min(loads):.1f}–{max(loads):.1f}, at the end {results.get('load_average_end', 0):.1f} | |"
    )
    s = results["startup"]
    rows.append(
        f"| start → first getUpdates | {s['empty_db_seconds']:.2f} s (new database), "
        f"{s['large_db_seconds']:.2f} s ({r['turns']:,} turns) | |"
    )
    return "\n".join(rows)


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
