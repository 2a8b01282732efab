"""The HTTP service on a real uvicorn on loopback, with the tiny untrained checkpoints.

The models make noise, not music: these tests check the service (statuses, bodies, store, pool,
security), never mood accuracy. Clips are 1-2 s so the suite stays fast on 2 cores.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import time

import httpx
import numpy as np
import pytest
import soundfile

from moodmusic.audio import load_audio, to_wav_bytes
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import NAMED_MOODS
from moodmusic.server.app import create_app
from moodmusic.server.background import BackgroundServer
from moodmusic.server.settings import Settings
from moodmusic.server.store import LocalClipStore

from conftest import tone

UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoints):
    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    chain = load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())  # the environment's narrator must not matter
    chain.compose("calm", 1.0, seed=0)  # warm once here, so each server below can skip its warm-up
    return chain


def settings_for(tmp_path, **changes) -> Settings:
    defaults = dict(store_dir=str(tmp_path / "store"), workers=2, queue_size=4, upload_limit_bytes=UPLOAD_LIMIT,
                    analyze_max_seconds=2.0, warmup=False)  # fmt: skip
    return Settings(**{**defaults, **changes})


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    with BackgroundServer(create_app(settings_for(tmp_path_factory.mktemp("server")), pipeline)) as running:
        yield running


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


class SlowPipeline:
    """The tiny pipeline, `delay` seconds slower per clip: makes saturation and deadlines deterministic."""

    def __init__(self, inner, delay: float):
        self.inner, self.delay = inner, delay

    def compose(self, *args, **kwargs):
        time.sleep(self.delay)
        return self.inner.compose(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def clip(client, **body) -> httpx.Response:
    return client.post("/v1/clips", json={"duration": 1, **body})


# --- each endpoint ------------------------------------------------------------------------------------
def test_operations_endpoints_and_page(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and set(ready["versions"]) == {"generator", "vocoder", "classifier", "narrator"}
    moods = client.get("/v1/moods").json()
    assert {m["name"]: (m["valence"], m["arousal"]) for m in moods["moods"]} == NAMED_MOODS
    assert moods["synonyms"]["relaxed"] == "calm"
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text and client.get("/static/app.js").status_code == 200
    assert "/v1/clips" in client.get("/openapi.json").json()["paths"]
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'moodmusic_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
    assert "moodmusic_pool_queued 0" in metrics.text and "moodmusic_http_request_seconds_bucket" in metrics.text


def test_clip_by_name_is_made_then_served_from_the_store(client):
    made = clip(client, mood="calm", duration=2, seed=11)
    assert made.status_code == 200, made.text
    body = made.json()
    assert body["cached"] is False and body["kind"] == "clip" and len(body["id"]) == 32
    assert body["asked"] == {"valence": 0.6, "arousal": -0.6, "quadrant": "calm"}
    assert body["heard"]["quadrant"] in ("happy", "angry", "sad", "calm") and body["heard"]["timeline"]
    assert 0 <= body["distance"] <= 2 * 2**0.5
    assert body["narration"]["narrative"] and body["narration"]["narrator"] == "template"
    assert {"generator", "vocoder", "mastering", "classifier", "narrator", "queue"} <= set(body["timings"])
    assert body["versions"]["narrator"] == "template" and body["duration"] == 2 and body["seed"] == 11
    # The mastered level, as a meter reads it, and the loudness the classifier heard: the same audio.
    level = body["level"]
    assert level["target_lufs"] == pytest.approx(-19 + 4 * -0.6) and abs(level["loudness_lufs"] - level["target_lufs"]) <= 2
    assert level["true_peak_dbtp"] <= -1 and level["gates_failed"] == [] and level["dead_air_seconds"] == 0
    assert body["heard"]["loudness_lufs"] == pytest.approx(level["loudness_lufs"], abs=0.01)

    again = clip(client, mood="calm", duration=2, seed=11).json()
    assert again["cached"] is True and again["id"] == body["id"]
    # The same point by valence and arousal is the same request.
    by_point = clip(client, valence=0.6, arousal=-0.6, duration=2, seed=11).json()
    assert by_point["id"] == body["id"]
    assert clip(client, mood="calm", duration=2, seed=12).json()["id"] != body["id"]

    meta = client.get(body["url"]).json()
    assert meta["id"] == body["id"] and meta["heard"] == body["heard"]
    audio = client.get(body["audio_url"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert abs(load_audio(audio.content).size - 2 * SAMPLE_RATE) < 2048
    mel = client.get(body["mel_url"])
    assert mel.status_code == 200 and mel.content.startswith(b"\x89PNG")
    assert client.get(body["mel_url"]).content == mel.content  # the second time from the store
    assert 'moodmusic_store_lookups_total{result="hit"}' in client.get("/metrics").text


def test_a_clip_in_another_format_is_another_clip_served_as_that_format(client):
    wav = clip(client, mood="happy", duration=2, seed=5, verify=False, narrate=False).json()
    ogg = clip(client, mood="happy", duration=2, seed=5, verify=False, narrate=False, format="ogg").json()
    assert ogg["format"] == "ogg" and ogg["id"] != wav["id"]
    assert clip(client, mood="happy", duration=2, seed=5, verify=False, narrate=False, format="ogg").json()["id"] == ogg["id"]
    wav_audio, ogg_audio = client.get(wav["audio_url"]), client.get(ogg["audio_url"])
    assert ogg_audio.headers["content-type"] == "audio/ogg" and ogg_audio.content.startswith(b"OggS")
    assert 'filename="' + ogg["id"] + '.ogg"' in ogg_audio.headers["content-disposition"]
    # The same samples (the same request and seed), a fraction of the bytes.
    decoded, original = load_audio(ogg_audio.content), load_audio(wav_audio.content)
    assert decoded.size == original.size and np.corrcoef(decoded, original)[0, 1] > 0.9
    assert len(ogg_audio.content) < len(wav_audio.content) / 4
    # A clip made as WAV is also served in another format, converted, not made again ...
    as_flac = client.get(wav["audio_url"], params={"format": "flac"})
    assert as_flac.status_code == 200 and as_flac.headers["content-type"] == "audio/flac" and as_flac.content.startswith(b"fLaC")
    assert 'filename="' + wav["id"] + '.flac"' in as_flac.headers["content-disposition"]
    assert np.array_equal(load_audio(as_flac.content), original)  # both 16-bit and lossless: the same samples
    as_ogg = client.get(wav["audio_url"], params={"format": "ogg"})
    assert as_ogg.headers["content-type"] == "audio/ogg" and load_audio(as_ogg.content).size == original.size
    # ... and a lossy one converts from its lossy file: the same length, the Vorbis samples.
    from_ogg = client.get(ogg["audio_url"], params={"format": "wav"})
    assert from_ogg.status_code == 200 and from_ogg.headers["content-type"] == "audio/wav"
    assert np.allclose(load_audio(from_ogg.content), decoded, atol=1 / 16384)
    assert client.get(wav["audio_url"], params={"format": "aiff"}).status_code == 422


def test_verify_and_narrate_are_added_to_a_stored_clip_when_asked(client):
    bare = clip(client, mood="sad", seed=3, verify=False, narrate=False).json()
    assert bare["heard"] is None and bare["narration"] is None and bare["distance"] is None
    full = clip(client, mood="sad", seed=3).json()
    assert full["cached"] is False and full["narration"] is not None and full["id"] == bare["id"]
    assert client.get(bare["url"]).json()["narration"] == full["narration"]
    assert clip(client, mood="sad", seed=3).json()["cached"] is True
    assert clip(client, mood="sad", seed=3, verify=False, narrate=False).json()["id"] == full["id"]


def test_trajectory_loop_and_seconds_alias(client):
    body = {"trajectory": [{"time": 0, "valence": -0.6, "arousal": -0.5}, {"time": 2, "valence": 0.7, "arousal": 0.6}],
            "seconds": 2, "loop": True, "seed": 1}  # fmt: skip
    response = client.post("/v1/clips", json=body)
    assert response.status_code == 200, response.text
    made = response.json()
    # A loop lasts the whole bars nearest the asked 2 s: one bar at the mean mood's tempo (88 bpm), in 4/4.
    tempo = made["tempo"]
    assert made["loop"] is True and made["bars"] == 1 and tempo["beats_per_bar"] == 4 and tempo["bpm"] == 88
    assert tempo["bpm"] == round(tempo["bpm"]) and tempo["bar_seconds"] == pytest.approx(4 * 60 / tempo["bpm"], abs=1e-6)
    assert made["duration"] == pytest.approx(tempo["bar_seconds"], abs=1e-4) and len(made["trajectory"]) == 2
    assert made["asked"]["valence"] == pytest.approx(0.05)
    assert load_audio(client.get(made["audio_url"]).content).size == made["audio"]["samples"] == made["audio"]["loop_length"] == round(tempo["bar_seconds"] * SAMPLE_RATE)


def test_a_loop_on_an_asked_grid_at_48_khz_carries_its_points_in_every_format(client):
    from moodmusic.loopfiles import read_ogg_loop, read_wav_markers

    body = {"mood": "tense", "duration": 8, "loop": True, "bpm": 90, "beats_per_bar": 3, "sample_rate": 48000, "verify": False, "narrate": False}
    made = client.post("/v1/clips", json=body).json()
    bar = 3 * 60 / 90  # 2 s
    assert made["tempo"]["bpm"] == 90 and made["tempo"]["beats_per_bar"] == 3 and made["bars"] == 4
    points = made["audio"]
    assert points == {"sample_rate": 48000, "samples": 384000, "bar_starts": [0, 96000, 192000, 288000],
                      "loop_start": 0, "loop_end": 384000, "loop_length": 384000}  # fmt: skip
    wav = client.get(made["audio_url"]).content
    markers = read_wav_markers(wav)
    assert (markers["sample_rate"], markers["frames"], markers["loop_start"], markers["loop_end"]) == (48000, 384000, 0, 384000)
    assert markers["markers"] == [(round(i * bar * 48000), f"bar {i + 1}") for i in range(4)]
    ogg = client.get(made["audio_url"], params={"format": "ogg"})  # converted, with its loop points
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".ogg") as f:
        f.write(ogg.content)
        f.flush()
        assert read_ogg_loop(f.name) == (0, 384000)
        assert soundfile.info(f.name).samplerate == 48000
    assert client.post("/v1/clips", json={**body, "sample_rate": 32000}).status_code == 422
    assert client.post("/v1/clips", json={**body, "bpm": 300}).status_code == 422
    assert client.post("/v1/clips", json={**body, "bpm": None}).status_code == 422


def test_stinger(client):
    response = client.post("/v1/stingers", json={"event": "hit", "mood": "epic", "seconds": 1.5, "seed": 2})
    assert response.status_code == 200, response.text
    made = response.json()
    assert made["kind"] == "stinger" and made["event"] == "hit" and made["heard"] is None
    assert client.get(made["audio_url"]).status_code == 200
    assert client.post("/v1/stingers", json={"event": "hit", "mood": "epic", "seconds": 1.5, "seed": 2}).json()["cached"] is True
    rise = client.post("/v1/stingers", json={"event": "rise", "valence": -0.3, "arousal": 0.2, "verify": True}).json()
    assert rise["heard"] is not None and rise["id"] != made["id"]


def test_analyze_an_upload(client):
    wav = to_wav_bytes(tone(1.5, 330.0))
    response = client.post("/v1/analyze", files={"file": ("tone.wav", wav, "audio/wav")}, data={"seed": "4"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["filename"] == "tone.wav" and result["truncated"] is False
    assert result["analyzed_seconds"] == pytest.approx(1.5, abs=0.01)
    assert -1 <= result["heard"]["valence"] <= 1 and result["narration"]["narrative"]
    # A 330 Hz tone at amplitude 0.3: -13.5 dBFS RMS, and BS.1770 reads a sine 0.69 dB lower (K-weighting is flat there).
    assert result["heard"]["loudness_lufs"] == pytest.approx(-14.2, abs=0.3)
    assert {"decode", "classifier", "narrator"} <= set(result["timings"])
    no_words = client.post("/v1/analyze", files={"file": ("t.wav", wav, "audio/wav")}, data={"narrate": "false"}).json()
    assert no_words["narration"] is None
    # Longer than the server's analyze_max_seconds (2 s here): only the start is analysed, and it says so.
    long = client.post("/v1/analyze", files={"file": ("long.wav", to_wav_bytes(tone(2.8)), "audio/wav")}).json()
    assert long["truncated"] is True and long["analyzed_seconds"] == pytest.approx(2.0)


# --- bad input: 4xx with a message that says what to fix, never a 500 -----------------------------------
@pytest.mark.parametrize(
    "body, expected",
    [
        ({"mood": "gloomy"}, "valid names: angry, calm"),
        ({"mood": "calm", "duration": 500}, "duration: Input should be less than or equal to 120"),
        ({"mood": "calm", "duration": 0.5}, "duration: Input should be greater than or equal to 1"),
        ({"mood": "calm", "duration": "long"}, "duration"),
        ({"valence": 1.5, "arousal": 0}, "valence must be in [-1, 1]"),
        ({"valence": 0.2, "arousal": -3}, "arousal must be in [-1, 1]"),
        ({"valence": 0.2}, "give both valence and arousal"),
        ({}, "give exactly one of: a mood name, valence and arousal, or a trajectory"),
        ({"mood": "calm", "valence": 0, "arousal": 0}, "give exactly one of"),
        ({"mood": "calm", "arousl": 0.5}, "arousl: Extra inputs are not permitted"),
        ({"mood": "calm", "format": "aiff"}, "format: Input should be 'wav', 'flac', 'ogg' or 'mp3'"),
        ({"mood": "calm", "seed": -1}, "seed"),
        ({"trajectory": []}, "trajectory"),
        ({"trajectory": [{"time": -1, "valence": 0, "arousal": 0}]}, "trajectory.0.time"),
        ({"trajectory": [{"time": 0, "valence": 0, "arousal": 2}]}, "arousal must be in [-1, 1]"),
        ({"trajectory": [[0, 0.1, 0.2]]}, "trajectory.0"),
    ],
)
def test_bad_clip_requests_are_422_with_a_message(client, body, expected):
    response = client.post("/v1/clips", json=body)
    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"{not json", "not valid JSON"),
        (b'{"valence": NaN, "arousal": 0}', "valence"),
        (b'["calm"]', "body"),
    ],
)
def test_malformed_bodies_are_422(client, content, expected):
    response = client.post("/v1/clips", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422 and expected in response.json()["detail"]


def test_bad_stinger_requests(client):
    response = client.post("/v1/stingers", json={"event": "boom", "mood": "calm", "seconds": 5})
    assert response.status_code == 422
    assert "event: Input should be 'rise', 'fall' or 'hit'" in response.json()["detail"] and "seconds" in response.json()["detail"]
    assert client.post("/v1/stingers", json={"event": "rise", "mood": "nope"}).status_code == 422
    assert client.post("/v1/stingers", json={"event": "rise", "mood": "calm", "trajectory": []}).status_code == 422


def test_bad_uploads(client):
    oversize = b"\0" * (UPLOAD_LIMIT + 1)
    response = client.post("/v1/analyze", files={"file": ("big.wav", oversize, "audio/wav")})
    assert response.status_code == 413 and "limit of 256 KB" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit is counted as the body streams in
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(8):
            yield b"\0" * (UPLOAD_LIMIT // 4)

    streamed = client.post("/v1/analyze", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert streamed.status_code == 413

    garbage = client.post("/v1/analyze", files={"file": ("song.mp3", b"not audio at all" * 100, "audio/mpeg")})
    assert garbage.status_code == 415 and "could not decode" in garbage.json()["detail"]
    assert client.post("/v1/analyze", files={"file": ("empty.wav", b"", "audio/wav")}).status_code == 415
    missing = client.post("/v1/analyze", data={"seed": "1"})
    assert missing.status_code == 422 and "file: Field required" in missing.json()["detail"]
    # Every other route takes small bodies only.
    huge_json = client.post("/v1/clips", content=b'{"mood": "' + b"a" * (2 * 1024 * 1024) + b'"}', headers={"content-type": "application/json"})
    assert huge_json.status_code == 413


def raw_get(server, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (httpx would normalise dot segments)."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/clips/abc", "/v1/clips/ABCDEF0123456789ABCDEF0123456789", "/v1/clips/0123456789abcdef0123456789abcdef0",
        "/v1/clips/../../../etc/passwd", "/v1/clips/..%2F..%2F..%2Fetc%2Fpasswd/audio", "/v1/clips/%2e%2e/audio",
        "/v1/clips/%2e%2e%2findex.sqlite/audio", "/v1/clips/..%5c..%5cindex.sqlite/audio", "/v1/clips/%00/audio",
        "/static/../server/app.py", "/static/%2e%2e/app.py",
    ],
)  # fmt: skip
def test_clip_ids_cannot_reach_outside_the_store(server, path):
    status, body = raw_get(server, path)
    assert status in (404, 422), (status, body[:200])
    assert b"root:" not in body and b"SQLite" not in body and b"import" not in body


def test_unknown_clip_id_is_404(client):
    response = client.get("/v1/clips/" + "0" * 32 + "/audio")
    assert response.status_code == 404 and "no clip with id" in response.json()["detail"]
    assert client.get("/v1/clips/xyz/mel.png").status_code == 422


# --- security ---------------------------------------------------------------------------------------------
def test_api_keys_rate_limit_and_cors(pipeline, tmp_path, server):
    settings = settings_for(tmp_path, api_keys=("s3cret", "other"), rate_limit_per_minute=60, rate_burst=3,
                            cors_origins=("http://game.example",))  # fmt: skip
    with BackgroundServer(create_app(settings, pipeline)) as secured, httpx.Client(base_url=secured.url, timeout=30) as c:
        missing = c.get("/v1/moods")
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["detail"]
        assert c.get("/v1/moods", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/healthz").status_code == 200 and c.get("/metrics").status_code == 200  # probes need no key
        key = {"Authorization": "Bearer s3cret"}
        statuses = [c.get("/v1/moods", headers=key).status_code for _ in range(4)]
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
        limited = c.get("/v1/moods", headers=key)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert c.get("/v1/moods", headers={"Authorization": "Bearer other"}).status_code == 200  # per key
        allowed = c.get("/healthz", headers={"Origin": "http://game.example"})
        assert allowed.headers["access-control-allow-origin"] == "http://game.example"
        assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "http://evil.example"}).headers
    # CORS is closed unless configured.
    with httpx.Client(base_url=server.url) as c:
        assert "access-control-allow-origin" not in c.get("/v1/moods", headers={"Origin": "http://game.example"}).headers


# --- store, pool, shutdown ------------------------------------------------------------------------------
def test_store_hits_after_a_restart(tiny_checkpoints, tmp_path):
    # The server loads the checkpoints itself here: the path `moodmusic serve` takes.
    settings = settings_for(tmp_path, checkpoints=str(tiny_checkpoints))
    request = {"mood": "tense", "duration": 1, "seed": 5}
    with BackgroundServer(create_app(settings.replace(warmup=True))) as first:
        made = httpx.post(first.url + "/v1/clips", json=request, timeout=60).json()
        assert made["cached"] is False
    with BackgroundServer(create_app(settings)) as second:
        again = httpx.post(second.url + "/v1/clips", json=request, timeout=60).json()
        assert again["cached"] is True and again["id"] == made["id"]
        audio = httpx.get(second.url + made["audio_url"])
        assert audio.status_code == 200 and load_audio(audio.content).size > 0


def test_store_evicts_least_recently_used_and_cleans_up_after_a_crash(tmp_path):
    mel = np.zeros((80, 10), dtype=np.float32)
    wav = to_wav_bytes(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))  # ~22 KB
    store = LocalClipStore(tmp_path, cap_bytes=10**9)
    ids = [store.new_id() for _ in range(4)]
    for i, clip_id in enumerate(ids[:3]):
        store.put(clip_id, f"key{i}", wav, mel, {"n": i})
        time.sleep(0.01)
    per_clip = store.stats()[1] // 3
    store.cap_bytes = 3 * per_clip  # room for three: the fourth evicts one
    store.get(ids[0])  # now the most recently used
    store.put(ids[3], "key3", wav, mel, {"n": 3})
    assert store.get(ids[1]) is None and store.get(ids[0]) is not None and store.find("key3").id == ids[3]
    assert store.stats() == (3, 3 * per_clip)
    # A racing identical request keeps the first clip's id.
    assert store.put(store.new_id(), "key3", wav, mel, {"n": 9}).id == ids[3]
    store.close()
    (tmp_path / "clips" / ("deadbeef" * 4 + ".audio.tmp")).write_bytes(b"partial")  # a write a crash interrupted
    (tmp_path / "clips" / f"{ids[0]}.audio").unlink()  # a file lost under its index row
    reopened = LocalClipStore(tmp_path, cap_bytes=10**9)
    assert reopened.get(ids[0]) is None and reopened.get(ids[3]) is not None
    assert not (tmp_path / "clips" / ("deadbeef" * 4 + ".audio.tmp")).exists() and not list((tmp_path / "clips").glob(f"{ids[0]}*"))
    reopened.close()


def fire(url: str, bodies: list[dict]) -> list[httpx.Response]:
    def post(body):
        return httpx.post(url + "/v1/clips", json=body, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as executor:
        return list(executor.map(post, bodies))


def test_saturated_pool_answers_503_with_retry_after(pipeline, tmp_path):
    settings = settings_for(tmp_path, workers=1, queue_size=1)
    with BackgroundServer(create_app(settings, SlowPipeline(pipeline, 0.8))) as busy:
        responses = fire(busy.url, [{"mood": "calm", "duration": 1, "seed": s, "verify": False, "narrate": False} for s in range(5)])
        statuses = sorted(r.status_code for r in responses)
        # One runs, one waits in the queue, the rest are refused at once (more succeed only if a slow
        # client arrives after a slot freed).
        assert set(statuses) == {200, 503} and statuses.count(200) >= 2, statuses
        refused = next(r for r in responses if r.status_code == 503)
        assert int(refused.headers["Retry-After"]) >= 1 and "at capacity" in refused.json()["detail"]
        assert f'route="/v1/clips",status="503"}} {statuses.count(503)}' in httpx.get(busy.url + "/metrics").text


def test_deadline_504_while_running_503_while_queued_and_the_late_clip_is_kept(pipeline, tmp_path):
    settings = settings_for(tmp_path, workers=1, queue_size=2, deadline_s=0.5)
    with BackgroundServer(create_app(settings, SlowPipeline(pipeline, 1.2))) as slow:
        first, second = {"mood": "dark", "duration": 1, "seed": 1}, {"mood": "dark", "duration": 1, "seed": 2}
        with concurrent.futures.ThreadPoolExecutor(2) as executor:
            running = executor.submit(fire, slow.url, [first])
            time.sleep(0.15)  # the first is on the worker before the second arrives
            queued = executor.submit(fire, slow.url, [second])
            late, waiting = running.result()[0], queued.result()[0]
        assert late.status_code == 504 and "deadline of 0.5 s" in late.json()["detail"]
        assert waiting.status_code == 503 and "Retry-After" in waiting.headers
        while httpx.get(slow.url + "/readyz").json()["running"]:  # the first job finishes on its worker and is stored
            time.sleep(0.05)
        assert httpx.post(slow.url + "/v1/clips", json=first, timeout=10).json()["cached"] is True


def test_shutdown_finishes_requests_in_flight(pipeline, tmp_path):
    settings = settings_for(tmp_path, workers=1, queue_size=1)
    server = BackgroundServer(create_app(settings, SlowPipeline(pipeline, 1.0))).start()
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        in_flight = executor.submit(fire, server.url, [{"mood": "epic", "duration": 1, "seed": 8}])
        time.sleep(0.3)
        server.stop()
        response = in_flight.result()[0]
    assert response.status_code == 200 and response.json()["cached"] is False
    assert not server.thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz", timeout=2)


# --- the web page, end to end in headless Chromium -----------------------------------------------------
def load_webpage_check():
    import importlib.util
    import shutil
    from pathlib import Path

    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromedriver are not installed (scripts/setup.sh installs them with apt)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    script = Path(__file__).resolve().parents[1] / "scripts" / "webpage_check.py"
    spec = importlib.util.spec_from_file_location("webpage_check", script)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    return check


def test_webpage_end_to_end_in_headless_chromium(tmp_path, capsys):
    check = load_webpage_check()
    screenshot = tmp_path / "page.png"
    code = check.main(["--tiny", "--steps", "generate,analyze", "--screenshot", str(screenshot), "--seconds", "2"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["bars"] >= 10 and abs(report["audio_s"] - 2.0) < 0.2 and report["narrative"]
    assert screenshot.read_bytes().startswith(b"\x89PNG")


def test_webpage_live_mode_in_headless_chromium(tmp_path, capsys):
    """The Live tab: WS /v1/stream plays, a drag on the pad reaches later chunks, pause/resume/stop."""
    check = load_webpage_check()
    screenshot = tmp_path / "live.png"
    code = check.main(["--tiny", "--steps", "live", "--live-chunks", "6", "--live-screenshot", str(screenshot)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    live = report["live"]
    assert live["chunks"] >= 6 + 2 and live["gaps"] == 0  # 6 before the drag, more after resuming
    assert live["reached_at_sequence"] > live["changed_at_sequence"] and live["dragged_to"] != live["started_at"]
    assert 1 <= live["mood_messages"] <= live["drag_s"] / 0.1 + 2 and live["chunks_while_paused"] <= 2
    assert screenshot.read_bytes().startswith(b"\x89PNG")
