"""`python -m bench.codecs [--ffmpeg PATH] [--runs N]`: CPU per audio conversion, the whole process tree.

Compares the codec workers (PyAV in worker processes, parley/audio) with an ffmpeg subprocess over pipes
doing the same conversions (the design before the workers), and times the ffmpeg command-line jobs that
remain (silence scan, MP3 segment). CPU is user + system time of everything that did the work: this
process, its finished children (getrusage), and the codec workers (from /proc, since they live on: the
scheduler's nanosecond count where the kernel keeps it, else clock ticks).
Median of N runs after a warm-up run; the workers are started beforehand, as they are in the bot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.scenarios import spoken_reply
from lab import make_voice_ogg, make_wav
from parley.audio import AudioConverter, CodecPool, find_ffmpeg, read_wav

_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> float:
    """Seconds of CPU of a live process: from the scheduler's nanosecond count where the kernel keeps it
    (a conversion costs a few clock ticks, so whole ticks would round each run by up to a tick), else
    from its user and system ticks."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_cpu(pool: CodecPool) -> float:
    """Seconds of CPU so far: this process, its reaped children, and the live codec workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = sum(_proc_cpu(pid) for pid in pool.pids())
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + workers


async def measure(pool: CodecPool, runs: int, work: Callable[[], Awaitable[object]]) -> dict[str, float]:
    await work()  # warm-up: workers started, code paths loaded
    cpu, wall = [], []
    for _ in range(runs):
        before_cpu, before_wall = tree_cpu(pool), time.perf_counter()
        await work()
        wall.append((time.perf_counter() - before_wall) * 1000)
        cpu.append((tree_cpu(pool) - before_cpu) * 1000)
    return {"cpu_ms": round(statistics.median(cpu), 1), "wall_ms": round(statistics.median(wall), 1)}


async def ffmpeg_pipe(ffmpeg: str, args: list[str], stdin: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace"))
    return out


DECODE_ARGS = ["-i", "pipe:0", "-f", "s16le", "-acodec", "pcm_s16le", "-ac", "1", "-ar", "16000", "-vn"]
DECODE_ARGS += ["-af", "aresample=16000,asetnsamples=n=4000:p=0", "pipe:1"]
ENCODE_ARGS = ["-f", "wav", "-i", "pipe:0", "-f", "ogg", "-acodec", "libopus", "-ac", "1", "-b:a", "32k"]
ENCODE_ARGS += ["-vbr", "constrained", "-compression_level", "1", "-frame_duration", "60", "pipe:1"]


async def run(ffmpeg: str, runs: int) -> dict[str, Any]:
    note5, note30 = make_voice_ogg(5.0), make_voice_ogg(30.0)
    speech = spoken_reply() or make_wav(17.7, rate=24000)
    reply = read_wav(speech)
    long_note = make_voice_ogg(180.0)
    pool = CodecPool()
    converter = AudioConverter(ffmpeg, timeout=60, pool=pool)
    results: dict[str, Any] = {"ffmpeg": ffmpeg, "runs": runs, "reply_seconds": round(reply.duration, 1)}
    try:
        for name, note in (("decode_5s_note", note5), ("decode_30s_note", note30)):
            results[name] = {
                "workers": await measure(pool, runs, lambda note=note: converter.to_model_wav(note)),
                "ffmpeg_pipe": await measure(pool, runs, lambda note=note: ffmpeg_pipe(ffmpeg, DECODE_ARGS, note)),
            }
        results["encode_reply"] = {
            "workers": await measure(pool, runs, lambda: converter.to_voice_ogg(reply)),
            "ffmpeg_pipe": await measure(pool, runs, lambda: ffmpeg_pipe(ffmpeg, ENCODE_ARGS, speech)),
        }
        results["probe_30s_note"] = {"workers": await measure(pool, runs, lambda: converter.probe_seconds(note30))}
        results["silences_3min"] = {"ffmpeg_cli": await measure(pool, runs, lambda: converter.silences(long_note))}
        results["mp3_segment_60s_of_3min"] = {
            "ffmpeg_cli": await measure(pool, runs, lambda: converter.to_model_mp3(long_note, start=60, seconds=60))
        }
        results["worker_rss_mb"] = [round(_rss(pid) / 2**20, 1) for pid in pool.pids()]
    finally:
        await pool.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.codecs", description=__doc__.splitlines()[0])
    parser.add_argument("--ffmpeg", default=None, help="the ffmpeg binary (default: the one Parley finds)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.ffmpeg or find_ffmpeg(), args.runs)), indent=2))


if __name__ == "__main__":
    main()
