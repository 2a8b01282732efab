"""A live stream that follows a game's mood: PCM chunks generated ahead of playback.

    from games.stream import LiveStream
    live = LiveStream(chain, mood="calm", seed=1)   # chain: moodmusic.pipeline.Pipeline
    chunk = live.next_chunk()                        # Chunk(sequence=0, pcm=b"...", valence, arousal, ...)
    live.set_mood(-0.6, 0.7, transition_s=3.0)      # glides over 3 s, like an RTPC with smoothing

The generator writes 32-frame slices (0.37 s) from the mood of the moment; the vocoder's
StreamRenderer turns them into audio whose joins are the samples a one-shot rendering would give
(vocoder/streaming.py), so chunk boundaries cannot click. Chunks have a fixed size (0.5 s by
default) and carry the mood of the newest slice that went into them. Every chunk is mastered
(`moodmusic.mastering.StreamMaster`): its short-term loudness follows the target of the mood of the
moment, with a gain that glides (no step at a join) and a limiter that keeps its state from chunk to chunk.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from moodmusic.mastering import StreamMaster
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import resolve

DEFAULT_CHUNK_SECONDS = 0.5


@dataclass(frozen=True)
class Chunk:
    sequence: int
    pcm: bytes  # 16-bit little-endian mono at 22,050 Hz
    samples: int
    start_s: float  # stream time of the first sample
    valence: float  # the mood this audio was generated for
    arousal: float

    def header(self) -> dict:
        return {"sequence": self.sequence, "samples": self.samples, "start_s": round(self.start_s, 4),
                "valence": round(self.valence, 4), "arousal": round(self.arousal, 4), "sample_rate": SAMPLE_RATE}  # fmt: skip


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


class LiveStream:
    """Endless audio for a mood that may change at any time; call `next_chunk()` as playback needs it."""

    def __init__(self, chain, mood="calm", seed: int = 0, chunk_seconds: float = DEFAULT_CHUNK_SECONDS):
        if not 0.05 <= chunk_seconds <= 5.0:
            raise ValueError(f"chunk_seconds must be between 0.05 and 5, got {chunk_seconds}")
        start = resolve(mood)
        self.session = chain.generator.session((start.valence, start.arousal), seed=seed)
        self.renderer = chain.vocoder.stream()
        self.chunk_samples = round(chunk_seconds * SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.float32)
        self.master = StreamMaster()
        self._sequence = 0
        self._lock = threading.Lock()  # a server changes the mood from one thread while another generates

    @property
    def mood(self) -> tuple[float, float]:
        return self.session.valence, self.session.arousal

    def set_mood(self, valence: float, arousal: float, transition_s: float = 0.0) -> None:
        with self._lock:
            self.session.set_mood(valence, arousal, transition_s)

    def next_chunk(self) -> Chunk:
        while self._pending.size < self.chunk_samples:
            with self._lock:
                mel = self.session.next_slice()
            audio = self.renderer.push(mel).cpu().numpy().astype(np.float32)
            self._pending = np.concatenate([self._pending, audio])
        piece, self._pending = self._pending[: self.chunk_samples], self._pending[self.chunk_samples :]
        piece = self.master.process(piece, self.session.arousal)
        chunk = Chunk(
            sequence=self._sequence, pcm=to_pcm16(piece), samples=piece.size,
            start_s=self._sequence * self.chunk_samples / SAMPLE_RATE, valence=self.session.valence, arousal=self.session.arousal,
        )  # fmt: skip
        self._sequence += 1
        return chunk
