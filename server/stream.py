"""`WS /v1/stream`: endless music that follows a game's mood.

Protocol (JSON text messages; audio as binary messages):
  client -> {"type": "start", "mood": "calm"} or {"type": "start", "valence": 0.6, "arousal": -0.6},
            optional "seed", "chunk_seconds" (0.1-2, default 0.5), "buffer_seconds" (0.5-10, default 1.5),
            "bpm" (40-240, default the mood's tempo), "beats_per_bar" (default 4), "sample_rate" (22050, 44100, 48000)
  server -> {"type": "started", "sample_rate": 22050, "format": "pcm_s16le", "channels": 1, "chunk_samples": N,
             "tempo": {"bpm", "beats_per_bar", "beat_seconds", "bar_seconds"}}
  server -> {"type": "chunk", "sequence": n, "samples": N, "start_s": t, "valence": v, "arousal": a,
             "beats": [...], "bars": [...] (seconds from start_s), "changes": [{"at_s", "valence", "arousal"}] (when any)}
            followed at once by one binary message: N little-endian int16 samples
  client -> {"type": "mood", "valence": v, "arousal": a, "transition_s": 2.0, "at": "now" | "beat" | "bar"} (or "mood": "tense")
            {"type": "stinger", "event": "rise" | "fall" | "hit", "duration": 2, "seed": 0, "at": "bar" | "beat" | "now"}
            {"type": "pause"} / {"type": "resume"} / {"type": "close"}
  server -> {"type": "scheduled", "what": "mood" | "stinger", "at_s": t} for a mood change or stinger: the stream time it lands
  server -> {"type": "error", "message": "..."} for a bad message (the stream goes on)

A quantised change ("at": "beat" or "bar") lands on the first beat or bar line the stream has not generated yet:
at most `buffer_seconds` plus one bar after the message.

A stream paused for longer than `stream_pause_timeout_s` (default 300 s) is closed with an error message
and close reason, so it gives its slot back.

Flow control: the server stays at most `buffer_seconds` ahead of real-time playback (counted from the
first chunk, with pauses excluded) and awaits each send, so a slow client holds back generation
instead of growing the server's memory. Generation runs in a thread (`anyio.to_thread`), so the event
loop keeps serving other requests; `max_streams` bounds how many streams run at once (over it the
socket closes with code 1013, "try again later").
"""

from __future__ import annotations

import asyncio
import json
import time

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from moodmusic.loopfiles import OUTPUT_SAMPLE_RATES
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import Mood, MoodError, resolve
from moodmusic.pipeline import STINGER_EVENTS
from moodmusic.tempo import BEATS_PER_BAR_CHOICES, MAX_BPM, MIN_BPM

QUANTISE = ("now", "beat", "bar")

router = APIRouter()
MAX_MESSAGE_CHARS = 4096  # a control message is a few dozen characters


def _mood_of(message: dict) -> Mood:
    if "mood" in message and message["mood"] is not None:
        return resolve(str(message["mood"]))
    if "valence" in message and "arousal" in message:
        try:
            return Mood(float(message["valence"]), float(message["arousal"]))
        except (TypeError, ValueError) as error:
            raise MoodError(f"valence and arousal must be numbers in [-1, 1]: {error}") from error
    raise MoodError('give "mood" (a name) or "valence" and "arousal"')


def _seed(message: dict) -> int:
    seed = message.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= 2**31 - 1:
        raise ValueError(f"seed must be a whole number from 0 to {2**31 - 1}, got {seed!r}")
    return seed


def _number(message: dict, key: str, default: float | None, low: float, high: float) -> float | None:
    value = message.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{key} must be a number between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _choice(message: dict, key: str, choices: tuple, default):
    value = message.get(key, default)
    if isinstance(value, bool) or value not in choices:
        raise ValueError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


async def _receive_object(websocket: WebSocket) -> dict:
    """The client's next message as a JSON object; ValueError for a binary, non-JSON or non-object message
    (`receive_text` would raise KeyError on a binary one and crash the handler)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    if message.get("text") is None:
        raise ValueError("messages must be JSON text, not binary")
    if len(message["text"]) > MAX_MESSAGE_CHARS:
        raise ValueError(f"messages must be at most {MAX_MESSAGE_CHARS:,} characters")
    try:
        value = json.loads(message["text"])
    except RecursionError:
        raise ValueError("messages must be flat JSON objects, not deeply nested ones") from None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise ValueError("messages must be JSON objects")
    return value


@router.websocket("/v1/stream")
async def stream(websocket: WebSocket) -> None:
    from fastapi import HTTPException

    from moodmusic.livestream import LiveStream
    from moodmusic.server.security import StreamLimiter, check_access
    from moodmusic.server.services import get_services

    services = get_services(websocket)
    await websocket.accept()
    try:  # browsers cannot set headers on a WebSocket, so the key may also come as ?token= (kept out of the logs)
        token = websocket.query_params.get("token")
        address = websocket.client.host if websocket.client else "unknown"
        check_access(websocket.headers.get("authorization") or (f"Bearer {token}" if token else None), services.settings.api_keys, services.limiter, address)
    except HTTPException as error:
        await websocket.close(code=1013 if error.status_code == 429 else 1008, reason=str(error.detail)[:120])
        return
    limiter: StreamLimiter = services.streams
    if not limiter.try_acquire():
        await websocket.close(code=1013, reason=f"all {limiter.max_streams} streams are busy; retry in a few seconds")
        return
    try:
        try:
            start = await asyncio.wait_for(_receive_object(websocket), timeout=30)
            if start.get("type") != "start":
                raise ValueError('the first message must be {"type": "start", ...}')
            mood = _mood_of(start)
            seed = _seed(start)
            chunk_seconds = _number(start, "chunk_seconds", 0.5, 0.1, 2.0)
            buffer_seconds = _number(start, "buffer_seconds", 1.5, 0.5, 10.0)
            bpm = _number(start, "bpm", None, MIN_BPM, MAX_BPM)
            beats_per_bar = _choice(start, "beats_per_bar", BEATS_PER_BAR_CHOICES, 4)
            sample_rate = _choice(start, "sample_rate", OUTPUT_SAMPLE_RATES, SAMPLE_RATE)
            live = LiveStream(services.pipeline, (mood.valence, mood.arousal), seed=seed, chunk_seconds=chunk_seconds, bpm=bpm,
                              beats_per_bar=beats_per_bar, sample_rate=sample_rate)  # fmt: skip
        except (ValueError, MoodError, TypeError, asyncio.TimeoutError) as error:
            await websocket.send_text(json.dumps({"type": "error", "message": str(error) or "no start message within 30 s"}))
            await websocket.close(code=1008)
            return
        await websocket.send_text(json.dumps({"type": "started", "sample_rate": live.sample_rate, "format": "pcm_s16le", "channels": 1,
                                              "chunk_samples": round(live.chunk_samples * live.sample_rate / SAMPLE_RATE),
                                              "tempo": live.grid.as_dict()}))  # fmt: skip
        await _run(websocket, live, chunk_seconds, buffer_seconds, services.settings.stream_pause_timeout_s, services.pipeline)
    except WebSocketDisconnect:
        pass
    finally:
        limiter.release()


async def _run(websocket: WebSocket, live, chunk_seconds: float, buffer_seconds: float, pause_timeout_s: float = 300.0, chain=None) -> None:
    paused = False
    paused_at = 0.0
    played_before_pause = 0.0  # seconds of playback time accumulated before the current run
    started_at: float | None = None
    sent = 0
    closed = False

    async def listen() -> None:
        nonlocal paused, paused_at, played_before_pause, started_at, closed
        while not closed:
            try:
                message = await _receive_object(websocket)
            except ValueError as error:
                await websocket.send_text(json.dumps({"type": "error", "message": str(error)}))
                continue
            kind = message.get("type")
            try:
                if kind == "mood":
                    mood = _mood_of(message)
                    at = _choice(message, "at", QUANTISE, "now")
                    when = live.set_mood(mood.valence, mood.arousal, _number(message, "transition_s", 0.0, 0.0, 60.0), at=at)
                    if at != "now":
                        await websocket.send_text(json.dumps({"type": "scheduled", "what": "mood", "at_s": round(when, 4)}))
                elif kind == "stinger":
                    event = _choice(message, "event", STINGER_EVENTS, None)
                    at, seconds, seed = _choice(message, "at", QUANTISE, "bar"), _number(message, "duration", 2.0, 1.0, 3.0), _seed(message)
                    valence, arousal = live.mood
                    made = await anyio.to_thread.run_sync(lambda: chain.stinger(event, (valence, arousal), seconds, seed, bpm=live.grid.bpm,
                                                                                beats_per_bar=live.grid.beats_per_bar))  # fmt: skip
                    when = live.add_stinger(made.audio, at=at)
                    await websocket.send_text(json.dumps({"type": "scheduled", "what": "stinger", "at_s": round(when, 4)}))
                elif kind == "pause" and not paused:
                    paused, paused_at = True, time.monotonic()
                    if started_at is not None:
                        played_before_pause += time.monotonic() - started_at
                elif kind == "resume" and paused:
                    paused, started_at = False, time.monotonic()
                elif kind == "close":
                    closed = True
                elif kind not in ("pause", "resume"):
                    raise ValueError('type must be one of "mood", "stinger", "pause", "resume", "close"')
            except (ValueError, MoodError) as error:
                await websocket.send_text(json.dumps({"type": "error", "message": str(error)}))

    async def produce() -> None:
        nonlocal started_at, sent
        while not closed:
            played = played_before_pause + (time.monotonic() - started_at if started_at is not None and not paused else 0.0)
            if paused and time.monotonic() - paused_at > pause_timeout_s:
                # A paused stream holds one of the few stream slots: give it back after a while, saying why.
                await websocket.send_text(json.dumps({"type": "error", "message": f"paused for more than {pause_timeout_s:g} s; the stream is closed, start a new one"}))
                await websocket.close(code=1000, reason=f"paused for more than {pause_timeout_s:g} s")
                return
            if paused or sent * chunk_seconds >= played + buffer_seconds:
                await asyncio.sleep(0.02)
                continue
            chunk = await anyio.to_thread.run_sync(live.next_chunk)
            await websocket.send_text(json.dumps({"type": "chunk", **chunk.header()}))
            await websocket.send_bytes(chunk.pcm)
            if started_at is None:
                started_at = time.monotonic()
            sent += 1

    async with anyio.create_task_group() as tasks:

        async def until_closed(coroutine) -> None:
            nonlocal closed
            try:
                await coroutine()
            except (WebSocketDisconnect, RuntimeError):
                pass  # the client went away (RuntimeError: a send after the socket closed)
            finally:
                closed = True
                tasks.cancel_scope.cancel()

        tasks.start_soon(until_closed, listen)
        tasks.start_soon(until_closed, produce)
    try:
        await websocket.close()
    except RuntimeError:
        pass  # the client closed first
