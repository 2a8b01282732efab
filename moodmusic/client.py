"""An async Python client for a moodmusic server: clips, stingers, analysis and live streams.

    import asyncio
    from moodmusic.client import MoodMusicClient

    async def main():
        async with MoodMusicClient("http://127.0.0.1:8000") as client:
            clip = await client.clip(mood="calm", duration=10, seed=1)
            wav = await client.clip_audio(clip["id"])
            async with client.stream(mood="calm") as live:          # WS /v1/stream
                async for header, pcm in live.chunks(limit=20):    # 16-bit mono PCM at 22,050 Hz
                    if header["sequence"] == 5:
                        await live.set_mood(valence=-0.6, arousal=0.7, transition_s=2.0)

    asyncio.run(main())
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import AsyncIterator

import httpx


class MoodMusicError(RuntimeError):
    """An error answer from the server (HTTP status 400 and up, or an error message on a stream): `status` and `message`."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


class LiveStreamConnection:
    """One WebSocket stream; use as `async with client.stream(...) as live`."""

    def __init__(self, url: str, start: dict, headers: dict):
        self.url, self.start, self.headers = url, start, headers
        self.info: dict = {}
        self.scheduled: list[dict] = []  # the server's {"type": "scheduled", "what", "at_s"} answers, as they arrive
        self._socket = None

    async def __aenter__(self) -> LiveStreamConnection:
        from websockets.asyncio.client import connect

        self._socket = await connect(self.url, additional_headers=self.headers, max_size=2**24)
        await self._socket.send(json.dumps({"type": "start", **self.start}))
        reply = json.loads(await self._socket.recv())
        if reply.get("type") != "started":
            await self._socket.close()
            raise MoodMusicError(400, reply.get("message", str(reply)))
        self.info = reply
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def chunks(self, limit: int | None = None) -> AsyncIterator[tuple[dict, bytes]]:
        """(header, pcm) pairs as they arrive; error messages from the server raise MoodMusicError."""
        received = 0
        while limit is None or received < limit:
            message = json.loads(await self._socket.recv())
            if message.get("type") == "error":
                raise MoodMusicError(400, message["message"])
            if message.get("type") == "scheduled":
                self.scheduled.append(message)
            if message.get("type") != "chunk":
                continue
            pcm = await self._socket.recv()
            received += 1
            yield message, pcm

    async def set_mood(self, mood: str | None = None, valence: float | None = None, arousal: float | None = None, transition_s: float = 0.0,
                       at: str = "now") -> None:  # fmt: skip
        """Change the mood now, or on the next beat or bar line (`at`: "now", "beat", "bar")."""
        body = {"type": "mood", "transition_s": transition_s, "at": at}
        body.update({"mood": mood} if mood is not None else {"valence": valence, "arousal": arousal})
        await self._socket.send(json.dumps(body))

    async def stinger(self, event: str, duration: float = 2.0, seed: int = 0, at: str = "bar") -> None:
        """Mix a stinger ("rise", "fall", "hit") for the current mood into the stream from the next bar line (`at`)."""
        await self._socket.send(json.dumps({"type": "stinger", "event": event, "duration": duration, "seed": seed, "at": at}))

    async def pause(self) -> None:
        await self._socket.send(json.dumps({"type": "pause"}))

    async def resume(self) -> None:
        await self._socket.send(json.dumps({"type": "resume"}))

    async def close(self) -> None:
        if self._socket is not None:
            try:
                await self._socket.send(json.dumps({"type": "close"}))
            except Exception:  # noqa: BLE001 - already closed is fine
                pass
            await self._socket.close()
            self._socket = None


class MoodMusicClient:
    """The client for one server: one method per endpoint, returning the JSON answer (or the bytes of a clip's WAV).

    Use as `async with MoodMusicClient(url, api_key=...) as client`; see the module docstring.
    """

    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=timeout)

    async def __aenter__(self) -> MoodMusicClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._http.aclose()

    async def _json(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise MoodMusicError(response.status_code, detail if isinstance(detail, str) else json.dumps(detail))
        return response.json()

    async def moods(self) -> dict:
        return await self._json(await self._http.get("/v1/moods"))

    async def clip(self, **request) -> dict:
        """POST /v1/clips: mood= or valence=/arousal= or trajectory=[{time, valence, arousal}], duration, seed, loop, verify, narrate."""
        return await self._json(await self._http.post("/v1/clips", json=request))

    async def stinger(self, **request) -> dict:
        """POST /v1/stingers: event (rise, fall, hit), mood or valence/arousal, duration 1-3 s, seed."""
        return await self._json(await self._http.post("/v1/stingers", json=request))

    async def clip_audio(self, clip_id: str) -> bytes:
        response = await self._http.get(f"/v1/clips/{clip_id}/audio")
        if response.status_code >= 400:
            await self._json(response)
        return response.content

    async def analyze(self, audio: str | Path | bytes, filename: str = "audio.wav") -> dict:
        data = Path(audio).read_bytes() if isinstance(audio, (str, Path)) else audio
        name = Path(audio).name if isinstance(audio, (str, Path)) else filename
        return await self._json(await self._http.post("/v1/analyze", files={"file": (name, data)}))

    def stream(self, mood: str | None = "calm", valence: float | None = None, arousal: float | None = None, seed: int = 0,
               chunk_seconds: float = 0.5, buffer_seconds: float = 1.5, bpm: float | None = None, beats_per_bar: int = 4,
               sample_rate: int = 22050) -> LiveStreamConnection:  # fmt: skip
        start = {"seed": seed, "chunk_seconds": chunk_seconds, "buffer_seconds": buffer_seconds, "beats_per_bar": beats_per_bar, "sample_rate": sample_rate}
        if bpm is not None:
            start["bpm"] = bpm
        start.update({"valence": valence, "arousal": arousal} if valence is not None else {"mood": mood})
        url = "ws" + self.base_url[len("http") :] + "/v1/stream"
        return LiveStreamConnection(url, start, self.headers)
