"""Bounded load on loopback: a mix of clip, analysis and mood requests at a fixed concurrency.

Starts `python -m moodmusic.server.cli` (what `moodmusic serve` runs) in its own process, sends the requests,
and reports per route p50/p95 latency, the statuses (errors by code), and the server's resident
memory over the first 50 requests against the last 50. Prints JSON, then a Markdown table.

    python -m moodmusic.evaluation.load_test                        # shipped checkpoints, 240 requests at concurrency 4
    python -m moodmusic.evaluation.load_test --tiny --requests 200  # tiny untrained models (plumbing only)
    python -m moodmusic.evaluation.load_test --url http://127.0.0.1:8000 --server-pid 1234

Exit status 1 when a 5xx other than 503 came back or memory grew (last 50 vs first 50) by more
than --max-growth-mb.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import numpy as np
import psutil



def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def synthetic_song(seconds: float) -> bytes:
    """A WAV to upload: chords that change every 2 s with a pulse, so the classifier has something to hear."""
    from moodmusic.audio import to_wav_bytes
    from moodmusic.mel import SAMPLE_RATE

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    roots = np.array([220.0, 261.6, 196.0, 246.9])[(t // 2).astype(int) % 4]
    chord = sum(np.sin(2 * np.pi * roots * ratio * t) for ratio in (1.0, 1.26, 1.5))
    pulse = 0.6 + 0.4 * (np.sin(2 * np.pi * 2 * t) > 0)
    return to_wav_bytes((0.12 * chord * pulse).astype(np.float32))


def plan(count: int, clip_seconds: float, seed_repeat: float) -> list[tuple[str, dict]]:
    """Requests in a fixed interleaved order: 2 clips, 1 analysis, 1 mood list per 4; some clip requests repeat
    an earlier seed (store hits), the rest are new."""
    rng = np.random.default_rng(0)
    moods = ["calm", "happy", "sad", "tense", "epic", "peaceful", "dark", "playful"]
    requests: list[tuple[str, dict]] = []
    clips: list[dict] = []
    for i in range(count):
        kind = ("clip", "analyze", "clip", "moods")[i % 4]
        if kind == "clip":
            if clips and rng.random() < seed_repeat:
                body = clips[int(rng.integers(0, len(clips)))]
            else:
                body = {"mood": moods[i % len(moods)], "duration": clip_seconds, "seed": i, "verify": True, "narrate": True}
                clips.append(body)
            requests.append(("clip", body))
        else:
            requests.append((kind, {}))
    return requests


def start_server(args, scratch: Path) -> tuple[subprocess.Popen, str]:
    from moodmusic.evaluation.bench import package_env
    from moodmusic.server.background import ServerStartError, free_port, wait_until_ready

    checkpoints = args.checkpoints
    if args.tiny:
        from moodmusic.evaluation.tiny import write_tiny_checkpoints  # the one definition of the tiny test models

        checkpoints = str(write_tiny_checkpoints(scratch / "checkpoints"))
    port = free_port()
    command = [sys.executable, "-m", "moodmusic.server.cli", "--port", str(port), "--store", str(scratch / "store"),
               "--workers", str(args.workers), "--narrator", "template"]  # fmt: skip
    if checkpoints:
        command += ["--checkpoints", checkpoints]
    process = subprocess.Popen(command, env=package_env(), stdout=subprocess.DEVNULL, stderr=open(scratch / "server.log", "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, scratch / "server.log")
    except ServerStartError as error:
        raise SystemExit(str(error)) from None
    return process, url


def run_load(url: str, server: psutil.Process, requests: list[tuple[str, dict]], concurrency: int, song: bytes) -> list[dict]:
    results: list[dict] = []
    lock = threading.Lock()
    local = threading.local()

    def send(item: tuple[int, tuple[str, dict]]) -> None:
        index, (kind, body) = item
        client = getattr(local, "client", None) or httpx.Client(base_url=url, timeout=120)
        local.client = client
        started = time.perf_counter()
        try:
            if kind == "clip":
                response = client.post("/v1/clips", json=body)
                cached = response.status_code == 200 and response.json()["cached"]
            elif kind == "analyze":
                response = client.post("/v1/analyze", files={"file": ("song.wav", song, "audio/wav")})
                cached = False
            else:
                response = client.get("/v1/moods")
                cached = False
            status = response.status_code
        except httpx.HTTPError as error:
            status, cached = f"client error: {type(error).__name__}", False
        latency = time.perf_counter() - started
        with lock:
            results.append({"index": index, "route": kind, "status": status, "latency_s": latency, "cached": cached,
                            "order": len(results), "server_rss_mb": server.memory_info().rss / 2**20})  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(concurrency) as executor:
        list(executor.map(send, enumerate(requests)))
    return results


def summarise(results: list[dict], elapsed: float, args) -> dict:
    by_route: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_route[r["route"]].append(r)
    routes = {}
    for route, items in sorted(by_route.items()):
        ok = [r["latency_s"] for r in items if r["status"] == 200]
        fresh = [r["latency_s"] for r in items if r["status"] == 200 and not r["cached"]]
        routes[route] = {
            "requests": len(items), "ok": len(ok), "p50_s": percentile(ok, 50), "p95_s": percentile(ok, 95),
            "p50_uncached_s": percentile(fresh, 50) if route == "clip" else None,
            "store_hits": sum(r["cached"] for r in items) if route == "clip" else None,
            "statuses": dict(Counter(str(r["status"]) for r in items)),
        }  # fmt: skip
    ordered = sorted(results, key=lambda r: r["order"])
    first, last = ordered[:50], ordered[-50:]
    # Medians: RSS swings by ~100 MB from request to request as buffers are freed and reused; a leak
    # moves the median, a swing does not.
    rss_first = statistics.median(r["server_rss_mb"] for r in first)
    rss_last = statistics.median(r["server_rss_mb"] for r in last)
    errors = Counter(str(r["status"]) for r in results if r["status"] != 200)
    bad_5xx = {s: n for s, n in errors.items() if s.startswith("5") and s != "503" or s.startswith("client")}
    return {
        "requests": len(results), "concurrency": args.concurrency, "workers": args.workers, "clip_seconds": args.clip_seconds,
        "analyze_seconds": args.analyze_seconds, "elapsed_s": elapsed, "throughput_rps": len(results) / elapsed,
        "routes": routes, "errors": dict(errors), "unexpected_errors": bad_5xx,
        "server_rss_mb": {"first_50": rss_first, "last_50": rss_last, "growth": rss_last - rss_first,
                          "floor_first_50": min(r["server_rss_mb"] for r in first),
                          "floor_last_50": min(r["server_rss_mb"] for r in last), "peak": max(r["server_rss_mb"] for r in results)},
        "ok": not bad_5xx and rss_last - rss_first <= args.max_growth_mb,
    }  # fmt: skip


def markdown(summary: dict) -> str:
    lines = [
        f"{summary['requests']} requests at concurrency {summary['concurrency']} ({summary['workers']} workers), "
        f"{summary['elapsed_s']:.1f} s, {summary['throughput_rps']:.1f} requests/s",
        "",
        "| route | requests | p50 (s) | p95 (s) | statuses |",
        "|---|---:|---:|---:|---|",
    ]
    names = {"clip": f"POST /v1/clips ({summary['clip_seconds']:g} s, verify + narrate)",
             "analyze": f"POST /v1/analyze ({summary['analyze_seconds']:g} s file)", "moods": "GET /v1/moods"}  # fmt: skip
    for route, r in summary["routes"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(r["statuses"].items()))
        extra = f"; store hits {r['store_hits']}, p50 of new clips {r['p50_uncached_s']:.3f} s" if route == "clip" else ""
        lines.append(f"| {names.get(route, route)} | {r['requests']} | {r['p50_s']:.3f} | {r['p95_s']:.3f} | {statuses}{extra} |")
    rss = summary["server_rss_mb"]
    lines += ["", f"Server RSS (median): first 50 requests {rss['first_50']:.0f} MB, last 50 {rss['last_50']:.0f} MB "
              f"(growth {rss['growth']:+.1f} MB); lowest {rss['floor_first_50']:.0f} -> {rss['floor_last_50']:.0f} MB, peak {rss['peak']:.0f} MB. "
              f"Errors by status: {summary['errors'] or 'none'}."]  # fmt: skip
    return "\n".join(lines)


def add_server_target(parser: argparse.ArgumentParser, verb: str) -> None:
    """--url (a running server, with --server-pid for its memory), or a server started here: --checkpoints or --tiny."""
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help=f"{verb} an already running server (then give --server-pid for its memory)")
    target.add_argument("--checkpoints", help="start a server on this checkpoints folder (default: the shipped one)")
    target.add_argument("--tiny", action="store_true", help="start a server on tiny untrained models")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's process id, for its memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_target(parser, "load")
    parser.add_argument("--requests", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="the started server's inference threads")
    parser.add_argument("--clip-seconds", type=float, default=10.0)
    parser.add_argument("--analyze-seconds", type=float, default=60.0, help="length of the uploaded file")
    parser.add_argument("--seed-repeat", type=float, default=0.2, help="share of clip requests that repeat an earlier one")
    parser.add_argument("--max-growth-mb", type=float, default=50.0, help="memory growth that fails the run")
    parser.add_argument("--json", type=Path, help="also write the summary (and every request) here")
    args = parser.parse_args(argv)
    if args.requests < 100:
        parser.error("--requests must be at least 100 (the memory check compares the first 50 with the last 50)")

    song = synthetic_song(args.analyze_seconds)
    requests = plan(args.requests, args.clip_seconds, args.seed_repeat)
    with tempfile.TemporaryDirectory() as scratch:
        process = None
        if args.url:
            url, pid = args.url.rstrip("/"), args.server_pid
            if pid is None:
                parser.error("--url needs --server-pid (the memory report reads the server's RSS)")
        else:
            process, url = start_server(args, Path(scratch))
            pid = process.pid
        try:
            started = time.perf_counter()
            results = run_load(url, psutil.Process(pid), requests, args.concurrency, song)
            summary = summarise(results, time.perf_counter() - started, args)
        finally:
            if process is not None:
                process.terminate()  # SIGTERM: the server finishes what is in flight, then exits
                process.wait(60)
    if args.json:
        args.json.write_text(json.dumps({**summary, "results": results}, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print()
    print(markdown(summary))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
