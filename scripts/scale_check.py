"""The scale-out acceptance, in one run on this machine: `moodmusic serve` (one process) against `moodmusic serve --ray`
(two Composer replicas), same load, same models, and a bank made in process against one made as Ray tasks.

    .venv/bin/python scripts/scale_check.py                      # writes docs/scale_check.md and docs/scale_check.json
    .venv/bin/python scripts/scale_check.py --requests 40 --rounds 1 --bank 3x3

Load: POST /v1/clips, 10 s clips with verify and narrate, every request another seed (nothing from the store), at
concurrency 4 (no two servers, nor rounds, share a seed: the two on PostgreSQL share its store). Servers in turn, in rounds (single, single on PostgreSQL, Ray, then again), so a slow minute of the host
falls on all of them; the p50 of each server over all its rounds is quoted, with each round's. The Ray server keeps
its clips in PostgreSQL (started here, server/local_postgres.py); "single + postgres" separates what the store costs
from what Ray costs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
MOODS = ["calm", "happy", "tense", "sad", "epic", "peaceful", "angry", "melancholic"]


def start(command: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    from moodmusic.server.background import ServerStartError, free_port, wait_until_ready

    port = free_port()
    process = subprocess.Popen([*command, "--port", str(port)], stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, log, timeout_s=400)
    except ServerStartError as error:
        raise SystemExit(f"{' '.join(command)}: {error}") from None
    return process, url


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(120)
    except subprocess.TimeoutExpired:
        process.kill()


def tree_rss_mb(process: subprocess.Popen, ray: bool) -> float:
    """Resident memory of the server: its process tree, and for Ray every process of the cluster it started."""
    procs = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    if ray:
        procs += [p for p in psutil.process_iter(["cmdline"]) if any("ray::" in c or "/ray/" in c for c in (p.info["cmdline"] or []))]
    seen, total = set(), 0
    for proc in procs:
        if proc.pid in seen:
            continue
        seen.add(proc.pid)
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total / 2**20


def load(url: str, process: subprocess.Popen, requests: int, concurrency: int, seconds: float, first_seed: int, ray: bool) -> dict:
    from moodmusic.evaluation.load_test import run_load

    plan = [("clip", {"mood": MOODS[i % len(MOODS)], "duration": seconds, "seed": first_seed + i, "verify": True, "narrate": True})
            for i in range(requests)]  # fmt: skip
    for warm in range(2):  # one clip per worker before timing: lazy initialisation is not what is measured
        httpx.post(url + "/v1/clips", json={"mood": "calm", "duration": seconds, "seed": 10**6 + first_seed + warm}, timeout=120)
    started = time.perf_counter()
    results = run_load(url, psutil.Process(process.pid), plan, concurrency, b"")
    elapsed = time.perf_counter() - started
    latencies = sorted(r["latency_s"] for r in results if r["status"] == 200)
    statuses: dict[str, int] = {}
    for r in results:
        statuses[str(r["status"])] = statuses.get(str(r["status"]), 0) + 1
    return {"p50_s": round(statistics.median(latencies), 3), "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3),
            "clips_per_s": round(len(latencies) / elapsed, 3), "statuses": statuses, "rss_mb": round(tree_rss_mb(process, ray))}  # fmt: skip


def bank(out: Path, grid: str, seconds: float, extra: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "moodmusic.cli", "bank", "--grid", grid, "--variants", "1", "--seconds", str(seconds),
                           "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bank {extra} failed:\n{done.stderr[-3000:]}")
    return round(time.perf_counter() - started, 2)


def main(argv: list[str] | None = None) -> int:
    from moodmusic.server.local_postgres import LocalPostgres

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60, help="clip requests per server per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--bank", default="5x5", help="the bank job's grid (one 10 s loop per cell)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scale_check")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="moodmusic-scale-"))
    scratch.chmod(0o755)  # PostgreSQL runs as its own user, which must reach its folder in here
    python = [sys.executable, "-m", "moodmusic.server.cli", "--narrator", "template", "--queue", "64", "--jobs-per-client", "64"]
    report: dict = {"requests": args.requests, "concurrency": args.concurrency, "seconds": args.seconds, "rounds": [], "host": {
        "cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)}}  # fmt: skip
    with LocalPostgres(scratch / "postgres") as postgres:
        servers = {
            "single": python + ["--workers", "2", "--store", str(scratch / "store")],
            "single + postgres": python + ["--workers", "2", "--store", postgres.url],
            "ray, 2 composers": python + ["--ray", "--composers", "2", "--store", postgres.url],
        }
        for round_index in range(args.rounds):
            for server_index, (name, command) in enumerate(servers.items()):
                print(f"round {round_index + 1}: {name}", flush=True)
                process, url = start(command, scratch / f"{name.replace(' ', '_')}.log")
                try:
                    result = load(url, process, args.requests, args.concurrency, args.seconds, first_seed=(round_index * 10 + server_index + 1) * 1000,
                                  ray="ray" in name)  # fmt: skip
                finally:
                    stop(process)
                    if "ray" in name:
                        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
                print(f"  {result}", flush=True)
                report["rounds"].append({"round": round_index + 1, "server": name, **result})
    summary = {}
    for name in servers:
        rows = [r for r in report["rounds"] if r["server"] == name]
        summary[name] = {"p50_s": round(statistics.median(r["p50_s"] for r in rows), 3),
                         "clips_per_s": round(statistics.median(r["clips_per_s"] for r in rows), 3),
                         "rss_mb": max(r["rss_mb"] for r in rows)}  # fmt: skip
    single = summary["single"]["p50_s"]
    for name in summary:
        summary[name]["p50_vs_single"] = round(summary[name]["p50_s"] / single, 3)
    report["summary"] = summary

    print(f"bank {args.bank}: in process, then as Ray tasks", flush=True)
    in_process = bank(scratch / "bank-local", args.bank, args.seconds, [])
    on_ray = bank(scratch / "bank-ray", args.bank, args.seconds, ["--ray", "--ray-workers", "2"])
    subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
    report["bank"] = {"grid": args.bank, "seconds": args.seconds, "in_process_s": in_process, "ray_2_workers_s": on_ray,
                      "ratio": round(on_ray / in_process, 3)}  # fmt: skip
    shutil.rmtree(scratch, ignore_errors=True)

    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Scale-out check", "",
        f"`scripts/scale_check.py`, {time.strftime('%Y-%m-%d')}, this host ({report['host']['cpus']} CPUs, {report['host']['memory_gb']} GB); "
        f"POST /v1/clips, {args.seconds:g} s clips with verify + narrate, each another seed, concurrency {args.concurrency}, "
        f"{args.requests} requests per server per round, {args.rounds} rounds in turn.", "",
        "| server | p50 (s) | vs single | clips/s | memory (MB, all processes) | p50 per round |", "|---|---|---|---|---|---|",
    ]  # fmt: skip
    for name, row in summary.items():
        rounds = ", ".join(f"{r['p50_s']:.3f}" for r in report["rounds"] if r["server"] == name)
        lines.append(f"| {name} | {row['p50_s']:.3f} | {row['p50_vs_single']:.2f}x | {row['clips_per_s']:.2f} | {row['rss_mb']} | {rounds} |")
    b = report["bank"]
    lines += ["", f"Bank job ({b['grid']}, one {b['seconds']:g} s loop a cell, start-up included): in process {b['in_process_s']:.1f} s, "
              f"as Ray tasks on 2 workers {b['ray_2_workers_s']:.1f} s ({b['ratio']:.2f}x).", ""]  # fmt: skip
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
