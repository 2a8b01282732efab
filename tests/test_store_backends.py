"""The clip store's rules (server/store.py, `ClipStorage`) on both backends: the local folder and PostgreSQL.

One throwaway PostgreSQL cluster (server/local_postgres.py) serves the whole session; each test gets a new database.
The PostgreSQL tests also check what only a shared store has to do: two store objects on one database (two server
replicas) see each other's clips and share one cap, and two real servers serve each other's clips.
"""

from __future__ import annotations

import concurrent.futures
import io
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import httpx
import numpy as np
import pytest
import soundfile

from moodmusic.audio import load_audio, to_wav_bytes
from moodmusic.mel import SAMPLE_RATE
from moodmusic.server.background import free_port
from moodmusic.server.local_postgres import LocalPostgres, server_binaries
from moodmusic.server.store import InvalidClipId, LocalClipStore, StoreUnavailable, mel_bytes
from moodmusic.server.stores import open_store

NO_POSTGRES = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql (scripts/setup.sh does)"
MEL = np.linspace(-11.5, 2.0, 80 * 10, dtype=np.float32).reshape(80, 10)
AUDIO = to_wav_bytes(np.zeros(SAMPLE_RATE // 4, dtype=np.float32))  # ~11 KB
PER_CLIP = len(AUDIO) + len(mel_bytes(MEL))  # what one clip of AUDIO and MEL counts towards the cap


@pytest.fixture(scope="session")
def postgres():
    if server_binaries() is None:
        pytest.skip(NO_POSTGRES)
    # Not pytest's tmp_path: as root, PostgreSQL runs as the postgres user, who cannot enter pytest's folders.
    folder = tempfile.mkdtemp(prefix="moodmusic-postgres-")
    try:
        with LocalPostgres(folder) as cluster:
            yield cluster
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database_url(postgres) -> str:
    return postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["local", "postgres"])
def open_replica(request, tmp_path):
    """Opens a store of the backend under test with a cap; every call opens another object on the same storage."""
    opened = []

    def open_one(cap_bytes: int = 10**9):
        location = str(tmp_path / "store") if request.param == "local" else request.getfixturevalue("database_url")
        opened.append(open_store(location, cap_bytes))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_replica):
    return open_replica()


def put(store, key: str, audio: bytes = AUDIO, clip_id: str | None = None, **options):
    return store.put(clip_id or store.new_id(), key, audio, MEL, {"key": key, "size": len(audio)}, **options)


# --- both backends ---------------------------------------------------------------------------------
def test_a_clip_is_stored_found_and_read_back(store):
    made = put(store, "k1")
    assert made.meta == {"key": "k1", "size": len(AUDIO)}
    assert store.get(made.id) == made and store.find("k1") == made
    assert store.audio(made.id) == AUDIO
    mel = store.mel(made.id)
    assert mel.dtype == np.float16 and np.array_equal(mel, MEL.astype(np.float16))
    assert store.png(made.id) is None
    assert store.stats() == (1, PER_CLIP)
    missing = store.new_id()
    assert store.get(missing) is None and store.find("no such key") is None and store.png(missing) is None
    for read in (store.audio, store.mel):
        with pytest.raises(KeyError):
            read(missing)
    with pytest.raises(KeyError):
        store.add_png(missing, b"png")


@pytest.mark.parametrize("bad", ["abc", "A" * 32, "0" * 31, "0" * 33, "../" * 10 + "ab", "g" * 32, None])
def test_malformed_ids_are_refused(store, bad):
    calls = [store.get, store.audio, store.mel, store.png, lambda i: store.add_png(i, b"png"), lambda i: store.put(i, "k", AUDIO, MEL, {})]
    for call in calls:
        with pytest.raises(InvalidClipId):
            call(bad)


def test_the_first_clip_stored_under_a_key_wins_a_race(store):
    first = put(store, "k")
    second = put(store, "k", audio=AUDIO + b"later")
    assert second == first and store.audio(first.id) == AUDIO and store.stats()[0] == 1
    for attempt in range(5):  # two threads storing the same key at once: one clip, and both callers get its id
        key, start = f"race{attempt}", threading.Barrier(2)

        def racer(n: int):
            start.wait()
            return put(store, key, audio=AUDIO + bytes([n]))

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            kept = list(pool.map(racer, (0, 1)))
        assert kept[0].id == kept[1].id and store.audio(kept[0].id) in (AUDIO + b"\x00", AUDIO + b"\x01")
    assert store.stats()[0] == 6


def test_a_replacement_keeps_its_id_and_drops_the_old_image(store):
    first = put(store, "k")
    store.add_png(first.id, b"\x89PNG" + b"x" * 1000)
    bigger = AUDIO + b"y" * 500
    replaced = put(store, "k", audio=bigger, clip_id=first.id, replace=True)
    assert replaced.id == first.id and replaced.meta["size"] == len(bigger)
    assert store.audio(first.id) == bigger and store.png(first.id) is None  # the image was drawn from the old mel
    assert store.stats() == (1, PER_CLIP + 500)  # nor does it count any more
    other = put(store, "k", clip_id=store.new_id(), replace=True)  # a replacement under a new id: the old id is gone
    assert store.find("k") == other and store.get(first.id) is None and store.stats()[0] == 1


def test_least_recently_used_clips_are_evicted_down_to_the_cap(store):
    ids = [store.new_id() for _ in range(4)]
    for i, clip_id in enumerate(ids[:3]):
        put(store, f"key{i}", clip_id=clip_id)
        time.sleep(0.01)
    store.cap_bytes = 3 * PER_CLIP  # room for three: the fourth evicts one
    store.get(ids[0])  # now the most recently used
    put(store, "key3", clip_id=ids[3])
    assert store.get(ids[1]) is None and store.get(ids[0]) is not None and store.find("key3").id == ids[3]
    assert store.stats() == (3, 3 * PER_CLIP)
    huge = put(store, "huge", audio=AUDIO * 5)  # larger than the cap alone: everything else goes, never the clip just written
    assert store.stats()[0] == 1 and store.get(huge.id) is not None


def test_the_mel_image_counts_towards_the_cap(store):
    older = put(store, "older")
    time.sleep(0.01)
    newer = put(store, "newer")
    store.cap_bytes = 2 * PER_CLIP + 100
    png = b"\x89PNG" + b"p" * 500
    store.add_png(newer.id, png)  # over the cap now: the older clip goes, not the one the image was added to
    assert store.get(older.id) is None and store.png(newer.id) == png
    assert store.stats() == (1, PER_CLIP + len(png))
    store.add_png(newer.id, png)  # drawn twice (two requests at once): counted once
    assert store.stats() == (1, PER_CLIP + len(png))


def test_open_store_picks_the_backend_from_the_location(tmp_path):
    local = open_store(f"file://{tmp_path}/by-url", 10**6)
    assert isinstance(local, LocalClipStore) and local.root == tmp_path / "by-url"
    local.close()


# --- PostgreSQL: what a shared store must also do --------------------------------------------------------
def test_open_store_opens_postgres_for_both_url_schemes(database_url):
    from moodmusic.server.pgstore import PostgresClipStore

    for url in (database_url, database_url.replace("postgresql://", "postgres://")):
        store = open_store(url, 10**6)
        assert isinstance(store, PostgresClipStore)
        store.close()


def test_two_replicas_see_each_others_clips_and_share_one_cap(database_url):
    a, b = open_store(database_url, 10**9), open_store(database_url, 10**9)
    made = put(a, "k")
    assert b.get(made.id) == made and b.find("k") == made and b.audio(made.id) == AUDIO
    b.add_png(made.id, b"\x89PNG image")
    assert a.png(made.id) == b"\x89PNG image"
    assert put(b, "k").id == made.id  # the key is taken on every replica
    a.cap_bytes = b.cap_bytes = 2 * PER_CLIP + 100
    for i, replica in enumerate((a, b, a)):
        time.sleep(0.01)
        put(replica, f"more{i}")
    assert a.stats() == b.stats() == (2, 2 * PER_CLIP) and a.get(made.id) is None  # one cap over both: the oldest went
    a.close()
    b.close()


def test_replicas_writing_at_once_store_one_clip_per_key_and_keep_the_cap(database_url):
    replicas = [open_store(database_url, 10**9) for _ in range(4)]
    start = threading.Barrier(len(replicas))

    def same_key(replica):
        start.wait()
        return put(replica, "same").id

    with concurrent.futures.ThreadPoolExecutor(len(replicas)) as pool:
        assert len(set(pool.map(same_key, replicas))) == 1
        for replica in replicas:
            replica.cap_bytes = 3 * PER_CLIP

        def many_keys(replica):
            start.wait()
            for i in range(5):
                put(replica, f"{id(replica)}-{i}")

        list(pool.map(many_keys, replicas))  # 20 clips through 4 replicas at once, evicting each other's
    assert all(replica.stats() == (3, 3 * PER_CLIP) for replica in replicas)
    for replica in replicas:
        replica.close()


def test_a_lost_connection_is_opened_again(database_url):
    import psycopg

    store = open_store(database_url, 10**9)
    made = put(store, "k")
    with psycopg.connect(database_url, autocommit=True) as admin:  # what a database restart or failover does
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()")
    assert store.get(made.id) == made
    store.close()


def test_the_password_never_shows(database_url):
    secret = "hunter2%21secret"
    with_password = database_url.replace("postgres@", f"postgres:{secret}@") + f"?password={secret}"
    store = open_store(with_password, 10**6)  # the local cluster trusts its connections: any password is let in
    assert "hunter2" not in repr(store) and "postgres:***@127.0.0.1" in repr(store) and "password=***" in repr(store)
    store.close()
    unreachable = f"postgresql://moodmusic:{secret}@127.0.0.1:{free_port()}/clips?connect_timeout=2"
    with pytest.raises(StoreUnavailable) as refused:  # nothing listens on that port
        open_store(unreachable, 10**6)
    assert "hunter2" not in str(refused.value) and "cannot connect to the clip store" in str(refused.value)


def test_the_local_postgres_command_starts_and_stops_a_cluster(postgres):
    folder = tempfile.mkdtemp(prefix="moodmusic-postgres-cli-")
    command = [sys.executable, "-m", "moodmusic.server.local_postgres"]
    try:
        port = free_port()
        started = subprocess.run([*command, "start", folder, "--port", str(port)], capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{port}/moodmusic"
        store = open_store(url, 10**6)
        assert store.stats() == (0, 0)
        store.close()
        assert subprocess.run([*command, "stop", folder], capture_output=True, timeout=120).returncode == 0
        with pytest.raises(StoreUnavailable):
            open_store(url, 10**6)
    finally:
        subprocess.run([*command, "stop", folder], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


# --- two real servers on one database ------------------------------------------------------------------
@pytest.fixture(scope="module")
def pipeline(tiny_checkpoints):
    from moodmusic.narrator import TemplateNarrator
    from moodmusic.pipeline import load_pipeline

    chain = load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())
    chain.compose("calm", 1.0, seed=0)  # warm once, so the servers can skip their warm-up
    return chain


def test_a_clip_made_by_one_server_is_served_by_another(pipeline, database_url):
    from moodmusic.server.app import create_app
    from moodmusic.server.background import BackgroundServer
    from moodmusic.server.settings import Settings

    settings = Settings(store_dir=database_url, workers=1, warmup=False)
    request = {"mood": "tense", "duration": 1, "seed": 7, "format": "wav"}
    with BackgroundServer(create_app(settings, pipeline)) as first, BackgroundServer(create_app(settings, pipeline)) as second:
        made = httpx.post(first.url + "/v1/clips", json=request, timeout=60).json()
        assert made["cached"] is False
        assert httpx.get(second.url + made["url"]).json()["id"] == made["id"]
        audio = httpx.get(second.url + made["audio_url"])
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
        assert audio.content == httpx.get(first.url + made["audio_url"]).content and load_audio(audio.content).size > 0
        flac = httpx.get(second.url + made["audio_url"], params={"format": "flac"})
        assert flac.status_code == 200 and flac.headers["content-type"] == "audio/flac"
        assert len(soundfile.read(io.BytesIO(flac.content))[0]) == len(soundfile.read(io.BytesIO(audio.content))[0])
        png = httpx.get(second.url + made["mel_url"])  # drawn by the second server, then kept in the store
        assert png.status_code == 200 and png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
        assert httpx.get(first.url + made["mel_url"]).content == png.content
        again = httpx.post(second.url + "/v1/clips", json=request, timeout=60).json()
        assert again["cached"] is True and again["id"] == made["id"]
        assert "moodmusic_store_clips 1" in httpx.get(first.url + "/metrics").text
        assert httpx.get(second.url + "/v1/clips/" + "0" * 32 + "/audio").status_code == 404
