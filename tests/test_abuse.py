"""Abuse of the analysis upload, replayed against a real server on loopback (tiny untrained checkpoints):
decompression bombs, absurd sample rates, audio too short to analyse. Each asserts the bounded, clear answer."""

from __future__ import annotations

import json
import struct
import time

import httpx
import numpy as np
import pytest

from moodmusic import audio
from moodmusic.evaluation.tiny import silent_flac
from moodmusic.mel import SAMPLE_RATE
from moodmusic.server.app import create_app
from moodmusic.server.background import BackgroundServer
from moodmusic.server.settings import Settings


@pytest.fixture(scope="module")
def client(tiny_checkpoints, tmp_path_factory):
    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    pipeline = load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())
    settings = Settings(store_dir=str(tmp_path_factory.mktemp("store")), workers=1, queue_size=4, analyze_max_seconds=2.0, warmup=False)
    with BackgroundServer(create_app(settings, pipeline)) as running, httpx.Client(base_url=running.url, timeout=60) as c:
        yield c


def test_a_compressed_hour_of_silence_decodes_only_what_is_analysed():
    bomb = silent_flac(3600)
    assert len(bomb) < 2_000_000  # an hour of audio in well under 2 MB
    from moodmusic.evaluation.bench import PeakMemory

    with PeakMemory() as memory:
        samples = audio.load_audio(bomb, max_seconds=3.0)
    assert samples.size == 3 * SAMPLE_RATE
    assert memory.rise_mb < 50  # decoding all of it would hold 3600 s x 44,100 x 4 bytes = 635 MB


def test_the_bomb_uploaded_is_analysed_as_its_first_seconds(client):
    started = time.perf_counter()
    response = client.post("/v1/analyze", files={"file": ("silence.flac", silent_flac(3600), "audio/flac")}, data={"narrate": "false"})
    assert time.perf_counter() - started < 10
    body = response.json()
    assert response.status_code == 200 and body["truncated"] is True and body["analyzed_seconds"] == pytest.approx(2.0)


def wav_declaring(rate: int, frames: int = 1000) -> bytes:
    """A 16-bit mono WAV whose header declares `rate`, written by hand as an attacker would."""
    data = np.zeros(frames, dtype="<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


@pytest.mark.parametrize("rate", [1, 100, 3_999, 1_000_000])
def test_absurd_sample_rates_are_refused_before_decoding(client, rate):
    response = client.post("/v1/analyze", files={"file": ("odd.wav", wav_declaring(rate), "audio/wav")})
    assert response.status_code == 415
    assert f"{rate:,} Hz" in response.json()["detail"] and "4,000 to 384,000 Hz" in response.json()["detail"]


@pytest.mark.parametrize("samples", [1, 220, 512, 1023])
def test_audio_too_short_to_analyse_is_a_422_that_says_the_minimum(client, samples):
    wav = audio.to_wav_bytes(np.full(samples, 0.1, dtype=np.float32))
    response = client.post("/v1/analyze", files={"file": ("short.wav", wav, "audio/wav")})
    assert response.status_code == 422 and "at least 1,024 samples (46 ms)" in response.json()["detail"]


def test_the_shortest_audio_analysed(client):
    wav = audio.to_wav_bytes(np.full(1024, 0.1, dtype=np.float32))
    assert client.post("/v1/analyze", files={"file": ("short.wav", wav, "audio/wav")}, data={"narrate": "false"}).status_code == 200


# --- keys, logs and streams --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_pipeline(tiny_checkpoints):
    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    return load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())


def test_guessing_keys_meets_the_rate_limit(tiny_pipeline, tmp_path):
    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, api_keys=("s3cret",), rate_limit_per_minute=6, rate_burst=6, warmup=False)
    with BackgroundServer(create_app(settings, tiny_pipeline)) as running, httpx.Client(base_url=running.url, timeout=30) as c:
        statuses = [c.get("/v1/moods", headers={"Authorization": f"Bearer guess{i}"}).status_code for i in range(30)]
        assert statuses[:6] == [401] * 6 and set(statuses[6:]) == {429}
        limited = c.get("/v1/moods", headers={"Authorization": "Bearer guess-again"})
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_one_key_cannot_fill_the_queue_for_everyone(tiny_pipeline, tmp_path):
    import concurrent.futures

    class Slow:  # the tiny pipeline, 1 s slower per clip: the jobs overlap for certain
        def __init__(self, inner):
            self.inner = inner

        def compose(self, *args, **kwargs):
            time.sleep(1.0)
            return self.inner.compose(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, queue_size=8, jobs_per_client=2, api_keys=("greedy", "polite"), warmup=False)
    with BackgroundServer(create_app(settings, Slow(tiny_pipeline))) as running:

        def post(key_and_seed):
            key, seed = key_and_seed
            body = {"mood": "calm", "duration": 1, "seed": seed, "verify": False, "narrate": False}
            return httpx.post(running.url + "/v1/clips", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)

        with concurrent.futures.ThreadPoolExecutor(4) as executor:
            sent = [executor.submit(post, ("greedy", s)) for s in range(4)]
            time.sleep(0.3)
            assert httpx.get(running.url + "/readyz").json()["running"] == 1  # the greedy key's jobs hold their places,
            polite = post(("polite", 99))  # and another key is still served
            greedy = [future.result() for future in sent]
        statuses = sorted(r.status_code for r in greedy)
        assert statuses == [200, 200, 429, 429], statuses
        refused = next(r for r in greedy if r.status_code == 429)
        assert "2 jobs queued or running" in refused.json()["detail"] and int(refused.headers["Retry-After"]) >= 1
        assert polite.status_code == 200
        assert post(("greedy", 7)).status_code == 200  # its jobs finished: its places are free again


def stream_url(running, query: str = "") -> str:
    return running.url.replace("http://", "ws://") + "/v1/stream" + query


def test_the_stream_key_never_reaches_the_log(tiny_pipeline, tmp_path, capfd, caplog):
    import asyncio
    import contextlib
    import logging

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, api_keys=("s3cret-key",), warmup=False)
    caplog.set_level(logging.INFO)  # as `moodmusic serve` logs (INFO): access and connection lines
    with BackgroundServer(create_app(settings, tiny_pipeline), log_level="info") as running:

        async def visit():
            for token in ("s3cret-key", "wrong-guess"):
                async with connect(stream_url(running, f"?token={token}")) as socket:
                    with contextlib.suppress(ConnectionClosed):  # the wrong key is closed at once
                        await socket.send('{"type": "close"}')
                        await socket.recv()
            httpx.get(running.url + "/healthz?token=s3cret-key&x=1")

        asyncio.run(visit())
    captured = capfd.readouterr()  # the server's own log lines: uvicorn's access lines (stdout) and connection lines (stderr)
    server_records = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("uvicorn"))  # not the test client's own log
    text = captured.out + captured.err + server_records
    assert "/v1/stream" in text and "/healthz" in text and "token=[redacted]" in text  # the lines are there,
    assert "s3cret-key" not in text and "wrong-guess" not in text  # the keys are not


@pytest.mark.parametrize("start, expected", [
    ('{"type": "start", "mood": "calm", "seed": Infinity}', "seed must be a whole number"),
    ('{"type": "start", "mood": "calm", "seed": 1e400}', "seed must be a whole number"),
    ('{"type": "start", "valence": NaN, "arousal": 0}', "valence"),
    ("[" * 100_000 + "]" * 100_000, "at most 4,096 characters"),
    ('{"a":' * 2000 + "1" + "}" * 2000, "at most 4,096 characters"),
    ('{"a":' * 600 + "1" + "}" * 600, "the first message must be"),
    ("[" * 2000 + "]" * 2000, "not deeply nested"),
])  # fmt: skip
def test_every_bad_start_message_gets_an_error_message(tiny_pipeline, tmp_path, start, expected):
    import asyncio

    from websockets.asyncio.client import connect

    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, warmup=False)
    with BackgroundServer(create_app(settings, tiny_pipeline)) as running:

        async def visit():
            async with connect(stream_url(running), max_size=None) as socket:
                await socket.send(start)
                return json.loads(await asyncio.wait_for(socket.recv(), 10))

        reply = asyncio.run(visit())
    assert reply["type"] == "error" and expected in reply["message"]


def test_a_paused_stream_gives_its_slot_back(tiny_pipeline, tmp_path):
    import asyncio

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, max_streams=1, stream_pause_timeout_s=1.0, warmup=False)
    with BackgroundServer(create_app(settings, tiny_pipeline)) as running:

        async def visit():
            async with connect(stream_url(running)) as paused:
                await paused.send('{"type": "start", "mood": "calm", "chunk_seconds": 0.5}')
                assert json.loads(await paused.recv())["type"] == "started"
                await paused.send('{"type": "pause"}')
                async with connect(stream_url(running)) as refused:  # the only slot is held
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(refused.recv(), 10)
                    assert closed.value.rcvd.code == 1013
                messages = []
                with pytest.raises(ConnectionClosed) as ended:
                    while True:
                        messages.append(await asyncio.wait_for(paused.recv(), 10))
                errors = [json.loads(m) for m in messages if isinstance(m, str) and '"error"' in m]
                assert errors and "paused for more than 1 s" in errors[-1]["message"]
                assert "paused for more than 1 s" in ended.value.rcvd.reason
            async with connect(stream_url(running)) as next_client:  # the slot is free again
                await next_client.send('{"type": "start", "mood": "calm"}')
                assert json.loads(await asyncio.wait_for(next_client.recv(), 10))["type"] == "started"

        asyncio.run(visit())


# --- the store's folder --------------------------------------------------------------------------------------
def test_the_store_refuses_a_folder_it_did_not_make_and_never_deletes_a_users_file(tmp_path):
    from moodmusic.server.store import MARKER_FILE, LocalClipStore, StoreFolderError

    users = tmp_path / "documents"
    (users / "clips" / "holiday").mkdir(parents=True)
    (users / "clips" / "notes.txt").write_text("mine")
    with pytest.raises(StoreFolderError, match="not a moodmusic clip store"):
        LocalClipStore(users, 10**6)
    assert (users / "clips" / "notes.txt").read_text() == "mine" and (users / "clips" / "holiday").is_dir()

    store = LocalClipStore(tmp_path / "store", 10**6)  # a new folder is the store's, marked
    assert (tmp_path / "store" / MARKER_FILE).exists()
    (store.clips_dir / "notes.txt").write_text("put here by hand")
    (store.clips_dir / "subfolder").mkdir()
    orphan = store.clips_dir / ("ab" * 16 + ".audio")
    orphan.write_bytes(b"left by a crash")
    store = LocalClipStore(tmp_path / "store", 10**6)  # reopened: cleans its own orphan, nothing else
    assert not orphan.exists() and (store.clips_dir / "notes.txt").exists() and (store.clips_dir / "subfolder").is_dir()


def test_serve_refuses_a_foreign_store_folder_before_loading_models(tmp_path):
    import subprocess
    import sys

    (tmp_path / "clips" / "sub").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "moodmusic.server.cli", "--store", str(tmp_path), "--port", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "not a moodmusic clip store" in result.stderr
    assert (tmp_path / "clips" / "sub").is_dir()


# --- work nobody waits for ------------------------------------------------------------------------------------
def test_an_evaluation_past_its_deadline_is_stopped_and_says_so(tiny_pipeline, tmp_path):
    from moodmusic.evaluation.closed_loop import ClosedLoopConfig, evaluate_grid

    # Warm the acoustic judge first: its beat tracker's first call compiles (numba, 10-20 s in a fresh
    # environment), one step that no stop can cut short; this test is about the grid's remaining work.
    evaluate_grid(tiny_pipeline, ClosedLoopConfig(grid=2, seeds=1, seconds=2.0, corpus=None, progress=False))
    tiny_pipeline.compose("calm", 1.0, seed=0)  # and the clip path's first call, so the last request below fits its 1 s deadline
    settings = Settings(store_dir=str(tmp_path / "store"), workers=1, deadline_s=1.0, warmup=False)
    with BackgroundServer(create_app(settings, tiny_pipeline)) as running, httpx.Client(base_url=running.url, timeout=60) as c:
        response = c.post("/v1/evaluate", json={"grid": 5, "seeds": 2, "duration": 5})
        assert response.status_code == 504 and "its work was stopped" in response.json()["detail"]
        assert "answered from the store" not in response.json()["detail"]
        freed = time.monotonic()
        while c.get("/readyz").json()["running"] and time.monotonic() - freed < 30:
            time.sleep(0.1)
        assert c.get("/readyz").json()["running"] == 0
        # The whole grid (50 clips of 5 s) takes about 6.5 s with these tiny models, 5.5 s of it after the 1 s deadline;
        # stopped, the worker is free within a clip or two.
        assert time.monotonic() - freed < 2.5
        assert c.post("/v1/clips", json={"mood": "calm", "duration": 1}).status_code == 200  # the worker serves again


# --- the published contract says what the server enforces --------------------------------------------------
def test_the_contract_states_the_clip_id_form_and_strict_booleans(client):
    contract = client.get("/openapi.json").json()
    for path in ("/v1/clips/{clip_id}", "/v1/clips/{clip_id}/audio", "/v1/clips/{clip_id}/mel.png"):
        parameter = next(p for p in contract["paths"][path]["get"]["parameters"] if p["name"] == "clip_id")
        assert parameter["schema"]["pattern"] == "^[0-9a-f]{32}$"
    assert client.get("/v1/clips/" + "A" * 32).status_code == 422  # schema-invalid: refused by the schema's own rule
    assert client.get("/v1/clips/" + "a" * 32).status_code == 404  # schema-valid: a clip that does not exist
    response = client.post("/v1/clips", json={"mood": "calm", "duration": 1, "narrate": 0})
    assert response.status_code == 422 and "narrate" in response.json()["detail"]
    body = contract["components"]["schemas"]["ClipRequest"]
    assert [form["required"] for form in body["oneOf"]] == [["mood"], ["valence", "arousal"], ["trajectory"]]
    assert body["dependentRequired"] == {"valence": ["arousal"], "arousal": ["valence"]}
    assert body["properties"]["valence"]["maximum"] == 1 and "pattern" in body["properties"]["mood"]
    for refused in ({"mood": "calm", "valence": None}, {"valence": "0.5", "arousal": 0}, {"mood": "gloomy"}, {"mood": "calm", "seed": False}):
        response = client.post("/v1/clips", json={**refused, "duration": 1})
        assert response.status_code == 422, refused
    assert "valid names" in client.post("/v1/clips", json={"mood": "gloomy"}).json()["detail"]
    assert client.post("/v1/clips", json={"mood": " Calm ", "duration": 1, "narrate": False}).status_code == 200


# --- a bounded, seeded fuzz run ----------------------------------------------------------------------------------
def random_value(rng: np.random.Generator, depth: int = 0):
    kind = rng.integers(0, 9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return bool(rng.integers(0, 2))
    if kind == 2:
        return int(rng.choice([0, 1, -1, 7, 2**31, -(2**63), 10**30]))
    if kind == 3:
        return float(rng.choice([0.5, -0.7, 1.5, 1e308, -1e-300, 30.0, 121.0]))
    if kind == 4:
        return str(rng.choice(["calm", "tense", "", "x" * 300, "../../etc", "\u00e9\u0000", "wav", "ogg", "rise"]))
    if kind == 5:
        return "NaN"  # replaced by a bare NaN token in the body
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.integers(0, 4))]
    keys = ["mood", "valence", "arousal", "duration", "seconds", "seed", "loop", "verify", "narrate", "format", "trajectory", "event", "time", "x"]
    return {str(rng.choice(keys)): random_value(rng, depth + 1) for _ in range(rng.integers(0, 5))}


def test_seeded_fuzz_finds_no_5xx_and_no_crash(client):
    import asyncio

    rng = np.random.default_rng(2026)
    statuses = []
    for case in range(300):
        if case % 3 == 2:  # random bytes as an upload
            data = rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8).tobytes()
            if case % 9 == 2:  # or a real header with a random body
                data = audio.to_wav_bytes(np.zeros(2000, dtype=np.float32))[:44] + data
            response = client.post("/v1/analyze", files={"file": ("f.wav", data)}, data={"narrate": str(rng.choice(["true", "0", "yes", "maybe"]))})
        else:
            body = random_value(rng)
            if isinstance(body, dict) and rng.random() < 0.5:
                body.setdefault("duration", 1)
            text = json.dumps(body).replace('"NaN"', "NaN")
            path = "/v1/clips" if case % 3 == 0 else "/v1/stingers"
            response = client.post(path, content=text.encode(), headers={"content-type": "application/json"})
        statuses.append(response.status_code)
        assert response.status_code < 500, (case, response.status_code, response.text[:200])
        if response.status_code >= 400:
            assert response.json()["detail"]  # every refusal says what to fix
    assert {200, 422} <= set(statuses) and client.get("/readyz").status_code == 200

    from websockets.asyncio.client import connect

    async def stream_fuzz():
        replies = []
        async with connect(client.base_url.copy_with(scheme="ws").join("/v1/stream").__str__()) as socket:
            await socket.send('{"type": "start", "mood": "calm", "chunk_seconds": 0.5}')
            assert json.loads(await socket.recv())["type"] == "started"
            for _ in range(60):
                if rng.random() < 0.3:
                    await socket.send(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes())
                else:
                    message = random_value(rng)
                    if isinstance(message, dict) and rng.random() < 0.6:
                        message["type"] = str(rng.choice(["mood", "pause", "resume", "start", "bogus"]))
                    await socket.send(json.dumps(message).replace('"NaN"', "NaN"))
            await socket.send('{"type": "close"}')
            async for reply in socket:
                if isinstance(reply, str):
                    replies.append(json.loads(reply)["type"])
        return replies

    replies = asyncio.run(asyncio.wait_for(stream_fuzz(), 60))
    assert "error" in replies and set(replies) <= {"chunk", "error"}  # every bad message answered, the stream went on
    assert client.get("/readyz").status_code == 200


def test_the_api_docs_state_this_servers_limits(client):
    description = client.get("/openapi.json").json()["info"]["description"]
    for limit in ("Uploads up to 50 MB", "first 2 s are analysed", "at most 8 of them per API key", "paused over 300 s", "4 streams at once"):
        assert limit in description, limit
