"""Concurrent live streams through the real server: do they all stay ahead of playback, and is memory flat?

Starts `python -m moodmusic.server.cli` (what `moodmusic serve` runs; moodmusic.evaluation.load_test's start_server), opens
`--streams` WebSocket streams with moodmusic.client, and plays each one as a game would: playback starts
when its first chunk arrives and then runs at real time, so chunk k is needed `k x chunk_seconds` after
the first. A chunk's lead is how long before it is needed it arrived (negative: an underrun). Halfway,
every stream changes mood, as a game would. The server's resident memory is sampled every second.

    python -m moodmusic.evaluation.stream_load                    # 4 streams x 60 s, shipped checkpoints
    python -m moodmusic.evaluation.stream_load --streams 2 --seconds 10 --tiny

Prints JSON, then a Markdown summary. Exit status 1 on an underrun or memory growth (median RSS of the
last 10 s against the first 10 s after every stream started) above --max-growth-mb.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil


MOODS = [("calm", "tense"), ("happy", "sad"), ("tense", "calm"), ("sad", "happy")]


async def play(url: str, index: int, seconds: float, chunk_seconds: float, buffer_seconds: float) -> dict:
    from moodmusic.client import MoodMusicClient

    first_mood, second_mood = MOODS[index % len(MOODS)]
    leads: list[float] = []
    sequences: list[int] = []
    connected = time.perf_counter()
    first_arrival = None
    async with MoodMusicClient(url) as client:
        async with client.stream(mood=first_mood, seed=index, chunk_seconds=chunk_seconds, buffer_seconds=buffer_seconds) as live:
            played = 0.0  # seconds of audio received before this chunk
            async for header, pcm in live.chunks():
                now = time.perf_counter()
                if first_arrival is None:
                    first_arrival = now
                leads.append(first_arrival + played - now)
                sequences.append(header["sequence"])
                played += header["samples"] / live.info["sample_rate"]
                if len(sequences) == 1 + int(seconds / 2 / chunk_seconds):
                    await live.set_mood(mood=second_mood, transition_s=2.0)
                if played >= seconds:
                    break
    return {
        "stream": index, "moods": [first_mood, second_mood], "chunks": len(sequences), "seconds": played,
        "time_to_first_audio_s": (first_arrival or connected) - connected,
        "min_lead_s": min(leads[1:]) if len(leads) > 1 else None, "median_lead_s": statistics.median(leads),
        "sequence_gaps": sum(1 for a, b in zip(sequences, sequences[1:]) if b != a + 1),
    }  # fmt: skip


async def sample_memory(server: psutil.Process, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        samples.append((time.perf_counter(), server.memory_info().rss / 2**20))
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


async def run(url: str, server: psutil.Process, args) -> dict:
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_memory(server, samples, stop))
    started = time.perf_counter()
    streams = await asyncio.gather(*(play(url, i, args.seconds, args.chunk_seconds, args.buffer_seconds) for i in range(args.streams)))
    stop.set()
    await sampler
    wall = time.perf_counter() - started
    window = min(10.0, args.seconds / 4)
    first = [rss for t, rss in samples if t - started <= window + 2.0]  # +2 s: every stream has started by then
    last = [rss for t, rss in samples if t >= started + wall - window]
    leads = [s["min_lead_s"] for s in streams if s["min_lead_s"] is not None]
    return {
        "streams": args.streams, "seconds_per_stream": args.seconds, "chunk_seconds": args.chunk_seconds,
        "buffer_seconds": args.buffer_seconds, "wall_s": wall,
        "min_lead_s": min(leads) if leads else None, "underruns": sum(1 for s in streams if (s["min_lead_s"] or 0) < 0),
        "sequence_gaps": sum(s["sequence_gaps"] for s in streams),
        "time_to_first_audio_s": statistics.median(s["time_to_first_audio_s"] for s in streams),
        "server_rss_mb": {"first": statistics.median(first) if first else None, "last": statistics.median(last) if last else None,
                          "peak": max(rss for _, rss in samples) if samples else None},
        "per_stream": streams,
    }  # fmt: skip


def markdown(summary: dict) -> str:
    rss = summary["server_rss_mb"]
    growth = rss["last"] - rss["first"] if rss["first"] is not None and rss["last"] is not None else float("nan")
    lines = [
        f"{summary['streams']} WebSocket streams x {summary['seconds_per_stream']:g} s through the server "
        f"({summary['chunk_seconds']:g} s chunks, server buffer {summary['buffer_seconds']:g} s; every stream changes mood halfway), "
        f"{summary['wall_s']:.1f} s wall.",
        "",
        "| stream | moods | chunks | time to first audio | smallest lead | median lead | sequence gaps |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in summary["per_stream"]:
        lines.append(f"| {s['stream']} | {' -> '.join(s['moods'])} | {s['chunks']} | {1000 * s['time_to_first_audio_s']:.0f} ms | "
                     f"{s['min_lead_s']:+.3f} s | {s['median_lead_s']:+.3f} s | {s['sequence_gaps']} |")  # fmt: skip
    def mb(value) -> str:  # a run too short for a window has no median there
        return "n/a" if value is None else f"{value:.0f} MB"

    lines += ["", f"Underruns: {summary['underruns']}. Server RSS (median): first 10 s {mb(rss['first'])}, last 10 s "
              f"{mb(rss['last'])} (growth {growth:+.1f} MB), peak {mb(rss['peak'])}."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from moodmusic.evaluation.load_test import add_server_target, start_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_target(parser, "stream from")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per stream")
    parser.add_argument("--chunk-seconds", type=float, default=0.5)
    parser.add_argument("--buffer-seconds", type=float, default=1.5, help="how far the server may generate ahead")
    parser.add_argument("--workers", type=int, default=2, help="the started server's inference threads")
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    if args.streams < 1 or args.seconds <= 0:
        parser.error("--streams and --seconds must be positive")

    with tempfile.TemporaryDirectory() as folder:
        process = None
        if args.url:
            url, pid = args.url.rstrip("/"), args.server_pid
        else:
            process, url = start_server(args, Path(folder))
            pid = process.pid
        try:
            server = psutil.Process(pid) if pid else psutil.Process()
            summary = asyncio.run(run(url, server, args))
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
    print(json.dumps(summary, indent=2))
    print(markdown(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    rss = summary["server_rss_mb"]
    grew = rss["first"] is not None and rss["last"] is not None and rss["last"] - rss["first"] > args.max_growth_mb
    return 1 if summary["underruns"] or summary["sequence_gaps"] or grew else 0


if __name__ == "__main__":
    sys.exit(main())
