"""WS /v1/stream on a real uvicorn on loopback, driven by the async client (moodmusic.client)."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from moodmusic.livestream import LiveStream
from moodmusic import mastering
from moodmusic.mastering import StreamMaster
from moodmusic.mel import SAMPLE_RATE
from moodmusic.server.app import create_app
from moodmusic.server.background import BackgroundServer
from moodmusic.server.settings import Settings


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoints):
    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    return load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())


@pytest.fixture(scope="module")
def server(pipeline, tmp_path_factory):
    settings = Settings(store_dir=str(tmp_path_factory.mktemp("store")), warmup=False, max_streams=2)
    with BackgroundServer(create_app(settings, pipeline)) as running:
        yield running


def test_live_stream_chunks_join_the_one_shot_rendering(pipeline):
    """Chunks are fixed-size, numbered without gaps, and join exactly as a one-shot rendering of the same mel,
    mastered chunk by chunk (moodmusic.mastering.StreamMaster)."""
    live = LiveStream(pipeline, "calm", seed=3, chunk_seconds=0.5)
    chunks = [live.next_chunk() for _ in range(6)]
    assert [c.sequence for c in chunks] == list(range(6))
    assert all(c.samples == SAMPLE_RATE // 2 for c in chunks)
    streamed = np.concatenate([np.frombuffer(c.pcm, dtype="<i2") for c in chunks]).astype(np.float32) / 32767
    session = pipeline.generator.session("calm", seed=3)
    import torch

    mel = torch.cat([session.next_slice() for _ in range(live.session.frames_written // pipeline.generator.slice_frames)], dim=1)
    rendered = pipeline.vocoder.render(mel).numpy()[: streamed.size]
    master, step = StreamMaster(), SAMPLE_RATE // 2
    reference = np.concatenate([master.process(rendered[i : i + step], arousal=-0.6) for i in range(0, rendered.size, step)])
    assert np.max(np.abs(streamed - np.clip(reference, -1, 1))) < 2e-3  # 16-bit rounding and the crossfade guard
    assert mastering.true_peak_dbtp(streamed) <= mastering.TRUE_PEAK_CEILING_DBTP


def test_stream_mood_change_arrives_within_transition_plus_one_chunk(server):
    from moodmusic.client import MoodMusicClient

    async def scenario():
        async with MoodMusicClient(server.url) as client:
            async with client.stream(mood="calm", seed=1, chunk_seconds=0.5, buffer_seconds=5.0) as live:
                assert live.info["sample_rate"] == SAMPLE_RATE and live.info["format"] == "pcm_s16le"
                headers, changed_at = [], None
                async for header, pcm in live.chunks(limit=12):
                    assert len(pcm) == 2 * header["samples"]
                    headers.append(header)
                    if header["sequence"] == 2:
                        await live.set_mood(valence=-0.7, arousal=0.7, transition_s=1.0)
                        changed_at = header["sequence"]
                return headers, changed_at

    headers, changed_at = asyncio.run(scenario())
    assert [h["sequence"] for h in headers] == list(range(12))
    assert (headers[0]["valence"], headers[0]["arousal"]) == pytest.approx((0.6, -0.6))
    # Chunks already generated ahead (up to the buffer) keep the old mood; the target is reached within
    # the buffer + the transition + one chunk after the message.
    reached = [h["sequence"] for h in headers if (h["valence"], h["arousal"]) == pytest.approx((-0.7, 0.7))]
    assert reached, "the new mood never arrived"
    assert reached[0] - changed_at <= (5.0 + 1.0) / 0.5 + 1


def test_stream_bad_messages_and_limits(server):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def scenario():
        url = server.url.replace("http", "ws") + "/v1/stream"
        async with connect(url) as socket:  # a bad start closes with a message
            await socket.send(json.dumps({"type": "start", "mood": "grumpy"}))
            error = json.loads(await socket.recv())
        async with connect(url) as socket:  # so does a start that is not a JSON object (no crash, a message)
            await socket.send("[1]")
            not_object = json.loads(await socket.recv())
        async with connect(url) as socket:  # a bad message mid-stream answers an error, the stream goes on
            await socket.send(json.dumps({"type": "start", "valence": 0.2, "arousal": 0.1, "buffer_seconds": 0.5}))
            assert json.loads(await socket.recv())["type"] == "started"
            await socket.send(json.dumps({"type": "mood", "valence": 3}))
            await socket.send("not json")
            await socket.send(b"\x00\x01")  # binary from the client: an error, not a crashed handler
            kinds = []
            while kinds.count("error") < 3 or "chunk" not in kinds:
                message = await socket.recv()
                if isinstance(message, str):
                    kinds.append(json.loads(message)["type"])
            await socket.send(json.dumps({"type": "pause"}))
            await asyncio.sleep(0.3)
            await socket.send(json.dumps({"type": "close"}))
        # more streams than max_streams: the extra one is refused with 1013
        async with connect(url) as first, connect(url) as second, connect(url) as third:
            for s in (first, second):
                await s.send(json.dumps({"type": "start", "mood": "calm"}))
                assert json.loads(await s.recv())["type"] == "started"
            with pytest.raises(ConnectionClosed) as refused:
                await third.send(json.dumps({"type": "start", "mood": "calm"}))
                await third.recv()
        return error, not_object, kinds, refused.value

    error, not_object, kinds, refused = asyncio.run(scenario())
    assert error["type"] == "error" and "grumpy" in error["message"] and "calm" in error["message"]
    assert not_object == {"type": "error", "message": "messages must be JSON objects"}
    assert "chunk" in kinds and kinds.count("error") == 3
    assert getattr(refused, "rcvd", None) is not None and refused.rcvd.code == 1013


def test_evaluate_over_http(server):
    import httpx

    response = httpx.post(server.url + "/v1/evaluate", json={"grid": 2, "seeds": 1, "duration": 2}, timeout=120)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["clips"] == 4 and len(report["per_clip"]) == 4
    assert set(report) >= {"mood", "acoustic", "diversity", "realism", "narration", "acceptance", "timings"}
    bad = httpx.post(server.url + "/v1/evaluate", json={"grid": 50}, timeout=30)
    assert bad.status_code == 422 and "grid" in bad.text


def test_a_quantised_mood_change_lands_on_the_next_bar_line(pipeline):
    from moodmusic.mel import FRAMES_PER_SECOND

    live = LiveStream(pipeline, "calm", seed=2, chunk_seconds=0.5, bpm=100, beats_per_bar=3)  # bars of 1.8 s
    half_frame = 0.5 / FRAMES_PER_SECOND  # 5.8 ms: a change lands on the mel frame nearest its line
    asked, seen = [], []
    for n in range(16):
        chunk = live.next_chunk()
        if n in (1, 5, 7, 9):
            unit = "beat" if n == 7 else "bar"
            step = live.grid.beat_seconds if unit == "beat" else live.grid.bar_seconds
            frontier = live.generated_s
            when = live.set_mood(0.7 if n != 5 else -0.7, 0.6, at=unit)
            line = step * round(when / step)
            assert abs(when - line) <= half_frame and frontier - half_frame <= line < frontier + step  # the first line not yet generated
            asked.append(when)
        seen += [t for t, _, _ in chunk.changes]
        assert all(chunk.start_s <= t < chunk.start_s + 0.5 for t, _, _ in chunk.changes)  # the chunk that holds a change says so
    assert [(a, t) for a, t, _, _ in live.applied] == [(round(w * FRAMES_PER_SECOND),) * 2 for w in asked]  # each at its own frame
    assert seen == pytest.approx(asked)
    header = live.next_chunk().header()
    assert all(0 <= b < 0.5 for b in header["beats"]) and set(header["bars"]) <= set(header["beats"])


def test_a_stream_at_48_khz_with_a_stinger_on_the_bar(server):
    from moodmusic.client import MoodMusicClient

    async def scenario():
        async with MoodMusicClient(server.url) as client:
            async with client.stream(mood="tense", seed=4, chunk_seconds=0.5, buffer_seconds=1.0, bpm=120, sample_rate=48000) as live:
                assert live.info["sample_rate"] == 48000 and live.info["tempo"]["bpm"] == 120 and live.info["tempo"]["bar_seconds"] == 2.0
                headers = []
                async for header, pcm in live.chunks(limit=14):
                    assert len(pcm) == 2 * header["samples"] and header["sample_rate"] == 48000
                    headers.append(header)
                    if header["sequence"] == 1:
                        await live.stinger("hit", duration=1.0, at="bar")
                        await live.set_mood(valence=0.8, arousal=0.8, at="bar")
                return headers, list(live.scheduled)

    headers, scheduled = asyncio.run(scenario())
    # Resampled without gaps (soxr holds back its lookahead, under 10 ms), each chunk's time that of its first sample.
    assert 0 <= 14 * 0.5 * 48000 - sum(h["samples"] for h in headers) < 480
    assert [h["start_s"] for h in headers] == pytest.approx([sum(h["samples"] for h in headers[:i]) / 48000 for i in range(14)], abs=1e-4)
    assert [s["what"] for s in scheduled] == ["stinger", "mood"]
    stinger, mood = scheduled
    assert stinger["at_s"] % 2.0 == pytest.approx(0.0, abs=1e-4) and stinger["at_s"] > 0.5  # mixed in from the bar line's sample
    assert abs(mood["at_s"] - 2.0 * round(mood["at_s"] / 2.0)) <= 0.006 and mood["at_s"] > 0.5  # on the mel frame nearest the line
    changed = [c for h in headers for c in h.get("changes", [])]
    assert len(changed) == 1 and abs(changed[0]["at_s"] - scheduled[1]["at_s"]) <= 0.006
    assert all(b in h["beats"] for h in headers for b in h["bars"])
