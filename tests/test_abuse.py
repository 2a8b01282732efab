"""Abuse of the analysis upload, replayed against a real server on loopback (tiny untrained checkpoints):
decompression bombs, absurd sample rates, audio too short to analyse. Each asserts the bounded, clear answer."""

from __future__ import annotations

import io
import struct
import threading
import time

import httpx
import numpy as np
import pytest
import soundfile

from moodmusic import audio
from moodmusic.mel import SAMPLE_RATE
from server.app import create_app
from server.background import BackgroundServer
from server.settings import Settings


@pytest.fixture(scope="module")
def client(tiny_checkpoints, tmp_path_factory):
    from moodmusic.pipeline import load_pipeline
    from narrator import TemplateNarrator

    pipeline = load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())
    settings = Settings(store_dir=str(tmp_path_factory.mktemp("store")), workers=1, queue_size=4, analyze_max_seconds=2.0, warmup=False)
    with BackgroundServer(create_app(settings, pipeline)) as running, httpx.Client(base_url=running.url, timeout=60) as c:
        yield c


def silent_flac(seconds: float, rate: int = 44100) -> bytes:
    """A FLAC of silence, written block by block: FLAC packs silence to almost nothing (a bomb's shape)."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(rate * 10, dtype=np.int16)
        for _ in range(int(seconds // 10)):
            f.write(block)
    return buffer.getvalue()


def peak_memory_while(function) -> tuple[float, object]:
    """The rise of this process's resident memory (MB, sampled every 5 ms) while `function` runs, and its result."""
    import psutil

    process = psutil.Process()
    base, peak, done = process.memory_info().rss, [0], threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = function()
    finally:
        done.set()
        watcher.join()
    return (max(peak[0], process.memory_info().rss) - base) / 2**20, result


def test_a_compressed_hour_of_silence_decodes_only_what_is_analysed():
    bomb = silent_flac(3600)
    assert len(bomb) < 2_000_000  # an hour of audio in well under 2 MB
    rise, samples = peak_memory_while(lambda: audio.load_audio(bomb, max_seconds=3.0))
    assert samples.size == 3 * SAMPLE_RATE
    assert rise < 50  # decoding all of it would hold 3600 s x 44,100 x 4 bytes = 635 MB


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
