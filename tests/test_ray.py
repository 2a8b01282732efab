"""The scaled-out server, for real: `moodmusic serve --ray` on a local Ray cluster (two HTTP replicas, two Composer
replicas) sharing a PostgreSQL clip store, both started here on loopback; and a bank and the closed loop made as Ray tasks.

What it checks: a clip made through one replica is served by another; a Composer replica killed in the middle of
requests loses none of them; overload still answers 503 with Retry-After; a live stream runs through the ingress.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

pytest.importorskip("ray", reason="the 'scale' extra (ray[serve]) is not installed")

from moodmusic.server.background import free_port, wait_until_ready  # noqa: E402
from moodmusic.server.local_postgres import LocalPostgres, server_binaries  # noqa: E402

pytestmark = pytest.mark.skipif(server_binaries() is None, reason="PostgreSQL's server is not installed (scripts/setup.sh installs it)")
ROOT = Path(__file__).resolve().parent.parent


def stop_ray() -> None:
    """Whatever Ray processes a failed test left behind (the server stops its own cluster on SIGTERM)."""
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def postgres():
    folder = tempfile.mkdtemp(prefix="moodmusic-ray-pg-")  # under /tmp: the postgres user must reach it
    with LocalPostgres(folder) as database:
        yield database
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(postgres):
    """`moodmusic serve --ray` with two ingress and two Composer replicas, each ingress taking 2 running + 2 queued jobs."""
    port = free_port()
    log = open(Path(tempfile.mkdtemp(prefix="moodmusic-ray-")) / "serve.log", "w+")
    command = [sys.executable, "-m", "moodmusic.server.cli", "--ray", "--composers", "2", "--ingress-replicas", "2",
               "--queue", "2", "--store", postgres.url, "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(process, url, Path(log.name), timeout_s=300)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
        stop_ray()
        log.close()


def replica_processes(deployment: str) -> list[psutil.Process]:
    """The processes of one deployment's replicas (Ray names them ray::ServeReplica:moodmusic:<deployment>)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(f"ServeReplica:moodmusic:{deployment}" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def test_a_clip_made_through_one_replica_is_served_by_another(cluster):
    made = httpx.post(f"{cluster}/v1/clips", json={"mood": "calm", "duration": 4, "seed": 11}, timeout=120)
    assert made.status_code == 200, made.text
    maker, clip = made.headers["x-moodmusic-replica"], made.json()
    assert clip["heard"] is not None and clip["narration"] is not None  # the Listener verified and narrated it
    answers = {}
    for _ in range(40):  # Ray's router picks between the two ingress replicas: ask until both have answered
        got = httpx.get(f"{cluster}{clip['audio_url']}", timeout=30)
        assert got.status_code == 200
        answers.setdefault(got.headers["x-moodmusic-replica"], got.content)
        if len(answers) == 2:
            break
    assert len(answers) == 2 and maker in answers, f"only {sorted(answers)} answered"
    first, second = answers.values()
    assert first == second and len(first) > 10_000
    heard = httpx.post(f"{cluster}/v1/analyze", files={"file": ("clip.wav", first)}, timeout=120)  # the Listener's analysis
    assert heard.status_code == 200, heard.text
    for axis in ("valence", "arousal"):  # the same music, heard from its 16-bit file
        assert abs(heard.json()["heard"][axis] - clip["heard"][axis]) < 0.05
    other = next(replica for replica in answers if replica != maker)
    for _ in range(40):  # its metadata and a conversion to FLAC, from the replica that did not make it
        meta = httpx.get(f"{cluster}/v1/clips/{clip['id']}", timeout=30)
        flac = httpx.get(f"{cluster}{clip['audio_url']}?format=flac", timeout=30)
        if {meta.headers["x-moodmusic-replica"], flac.headers["x-moodmusic-replica"]} == {other}:
            assert meta.json()["id"] == clip["id"] and meta.json()["cached"] is True
            assert flac.status_code == 200 and flac.content[:4] == b"fLaC"
            break
    else:
        pytest.fail("the other replica never answered both")


def test_a_composer_replica_killed_mid_request_loses_no_clip(cluster):
    before = replica_processes("Composer")
    assert len(before) == 2
    bodies = [{"mood": mood, "duration": 8, "seed": 100 + i} for i, mood in enumerate(["tense", "happy", "sad", "calm"])]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(httpx.post, f"{cluster}/v1/clips", json=body, timeout=180) for body in bodies]
        time.sleep(1.0)  # four 8 s clips on two Composers: both are mid-clip now
        victim = before[0]
        victim.send_signal(signal.SIGKILL)
        answers = [future.result() for future in futures]
    assert [a.status_code for a in answers] == [200] * 4, [a.text[:200] for a in answers]
    for answer in answers:  # every accepted clip is in the shared store
        assert httpx.get(f"{cluster}/v1/clips/{answer.json()['id']}/audio", timeout=30).status_code == 200
    assert not victim.is_running()
    deadline = time.monotonic() + 120  # Ray Serve replaces the dead replica
    while len(replica_processes("Composer")) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(replica_processes("Composer")) == 2


def test_overload_answers_503_with_retry_after(cluster):
    # Two ingress replicas, each 2 running + 2 queued: 24 requests at once cannot all be taken.
    bodies = [{"mood": "happy", "duration": 3, "seed": 1000 + i, "narrate": False} for i in range(24)]
    with concurrent.futures.ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda body: httpx.post(f"{cluster}/v1/clips", json=body, timeout=180), bodies))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 503}, statuses
    refused = [a for a in answers if a.status_code == 503]
    assert refused and statuses.count(200) >= 4, statuses
    for answer in refused:
        assert int(answer.headers["retry-after"]) >= 1 and "capacity" in answer.json()["detail"]


def test_a_live_stream_runs_through_the_ingress(cluster):
    from websockets.sync.client import connect

    with connect(cluster.replace("http", "ws") + "/v1/stream", open_timeout=60) as socket:
        socket.send(json.dumps({"type": "start", "mood": "calm", "chunk_seconds": 0.5}))
        started = json.loads(socket.recv(timeout=120))
        assert started["type"] == "started", started
        chunk = json.loads(socket.recv(timeout=60))
        audio = socket.recv(timeout=60)
        assert chunk["type"] == "chunk" and isinstance(audio, bytes) and len(audio) == 2 * chunk["samples"]
        socket.send(json.dumps({"type": "close"}))


def test_a_bank_made_as_ray_tasks_equals_one_made_in_process(tmp_path):
    base = [sys.executable, "-m", "moodmusic.cli", "bank", "--grid", "1x2", "--variants", "1", "--seconds", "4"]
    for name, extra in (("local", []), ("ray", ["--ray", "--ray-workers", "2"])):
        done = subprocess.run([*base, "--out", str(tmp_path / name), *extra], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    stop_ray()
    local, ray = (json.loads((tmp_path / name / "bank.json").read_text()) for name in ("local", "ray"))
    assert local["versions"] == ray["versions"] and len(ray["loops"]) == 2
    for ours, theirs in zip(local["loops"], ray["loops"]):
        # The same clip up to float rounding (one torch thread per Ray worker, two in process): same tempo, bars, loop points.
        assert {k: ours[k] for k in ("file", "seed", "bpm", "bars", "loop_start", "loop_end")} == {k: theirs[k] for k in ("file", "seed", "bpm", "bars", "loop_start", "loop_end")}
        assert abs(ours["heard"]["valence"] - theirs["heard"]["valence"]) < 0.05
        assert (tmp_path / "ray" / theirs["file"]).stat().st_size > 1000


def test_the_closed_loop_on_ray_hears_what_it_hears_in_process(tmp_path):
    base = [sys.executable, "-m", "moodmusic.cli", "evaluate", "--grid", "2", "--seeds", "2", "--seconds", "2", "--corpus", "", "--batch", "2"]
    for name, extra in (("local", []), ("ray", ["--ray", "--ray-workers", "2"])):
        done = subprocess.run([*base, "--out", str(tmp_path / name), *extra], capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    stop_ray()
    local, ray = (json.loads((tmp_path / name / "evaluation.json").read_text()) for name in ("local", "ray"))
    assert ray["clips"] == local["clips"] == 8  # four batches of two, spread over the two workers, back in order
    for ours, theirs in zip(local["per_clip"], ray["per_clip"]):
        assert (ours["valence"], ours["arousal"], ours["seed"]) == (theirs["valence"], theirs["arousal"], theirs["seed"])
        assert abs(ours["heard_valence"] - theirs["heard_valence"]) < 0.05 and abs(ours["heard_arousal"] - theirs["heard_arousal"]) < 0.05


def double_the_seed_dying_once(chain, item: tuple[int, str]) -> int:
    """A task for the cluster: item 3's worker dies (the process exits) the first time it is tried."""
    index, marker = item
    if index == 3 and not Path(marker).exists():
        Path(marker).write_text("died once")
        os._exit(1)
    return index * 2


def test_a_cluster_job_loses_no_item_when_a_worker_dies(tmp_path):
    import ray
    from ray import cloudpickle

    from moodmusic.cluster import ClusterChain
    from moodmusic.evaluation.tiny import write_tiny_checkpoints

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module by name
    marker = str(tmp_path / "died")
    try:
        chain = ClusterChain.start(checkpoints=str(write_tiny_checkpoints(tmp_path / "checkpoints")), workers=2)
        assert list(chain.map(double_the_seed_dying_once, [(i, marker) for i in range(8)])) == [i * 2 for i in range(8)]
        assert Path(marker).exists()  # a worker did die, and its item was made again by another
    finally:
        ray.shutdown()
        stop_ray()
