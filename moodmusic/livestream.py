"""A live stream that follows a game's mood: PCM chunks generated ahead of playback.

    from moodmusic.livestream import LiveStream
    live = LiveStream(chain, mood="calm", seed=1)   # chain: moodmusic.pipeline.Pipeline
    chunk = live.next_chunk()                        # Chunk(sequence=0, pcm=b"...", valence, arousal, ...)
    live.set_mood(-0.6, 0.7, transition_s=3.0)      # glides over 3 s, like an RTPC with smoothing
    live.set_mood(0.7, 0.5, at="bar")               # lands on the next bar line not yet generated
    live.add_stinger(audio, at="bar")                # a stinger (22,050 Hz samples) mixed in from the next bar line

The generator writes 32-frame slices (0.37 s) from the mood of the moment; the vocoder's
StreamRenderer turns them into audio whose joins are the samples a one-shot rendering would give
(vocoder/streaming.py), so chunk boundaries cannot click. Chunks have a fixed size (0.5 s by
default) and carry the mood of the newest slice that went into them. Every chunk is mastered
(`moodmusic.mastering.StreamMaster`): its short-term loudness follows the target of the mood of the
moment, with a gain that glides (no step at a join) and a limiter that keeps its state from chunk to chunk.

Every stream has a tempo grid (moodmusic.tempo.Grid: the start mood's tempo, or the asked `bpm` and
`beats_per_bar`; beat 1 of bar 1 at the first sample). Each chunk says where its beats and bars fall. A
mood change or a stinger can be quantised (`at="beat"` or `"bar"`): it lands on the first beat or bar line
not yet generated. The generator then ends its slice at that line's frame (a mel frame is 11.6 ms, so a
change lands within 5.8 ms of the line) and writes on in the new mood. Chunks leave at 22,050 Hz, or
resampled to 44,100 or 48,000 Hz (soxr's streaming resampler: no seams between chunks).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from moodmusic.loopfiles import check_sample_rate
from moodmusic.mastering import StreamMaster
from moodmusic.mel import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE
from moodmusic.mood import Mood, resolve
from moodmusic.tempo import Grid

QUANTISE_CHOICES = ("now", "beat", "bar")

DEFAULT_CHUNK_SECONDS = 0.5


@dataclass(frozen=True)
class Chunk:
    """One piece of a live stream, as `LiveStream.next_chunk` returns it: 16-bit PCM, where it falls in
    the stream, and the mood it was generated for. `header()` is the JSON the server sends before the PCM."""

    sequence: int
    pcm: bytes  # 16-bit little-endian mono at `sample_rate`
    samples: int
    start_s: float  # stream time of the first sample
    valence: float  # the mood this audio was generated for
    arousal: float
    sample_rate: int = SAMPLE_RATE
    seconds: float = 0.0  # stream time the chunk covers
    grid: Grid | None = None
    changes: tuple = ()  # (stream time, valence, arousal) of the mood changes that took effect in this chunk

    def header(self) -> dict:
        header = {"sequence": self.sequence, "samples": self.samples, "start_s": round(self.start_s, 4),
                  "valence": round(self.valence, 4), "arousal": round(self.arousal, 4), "sample_rate": self.sample_rate}  # fmt: skip
        if self.grid is not None:
            header.update(self.grid.in_window(self.start_s, self.seconds))  # beats, bars: seconds from start_s
        if self.changes:
            header["changes"] = [{"at_s": round(t, 4), "valence": round(v, 4), "arousal": round(a, 4)} for t, v, a in self.changes]
        return header


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()


@dataclass
class _Change:
    frame: int  # the mel frame it takes effect at
    valence: float
    arousal: float
    transition_s: float


class LiveStream:
    """Endless audio for a mood that may change at any time; call `next_chunk()` as playback needs it."""

    def __init__(
        self, chain, mood="calm", seed: int = 0, chunk_seconds: float = DEFAULT_CHUNK_SECONDS, bpm: float | None = None,
        beats_per_bar: int | None = None, sample_rate: int = SAMPLE_RATE,
    ):  # fmt: skip
        if not 0.05 <= chunk_seconds <= 5.0:
            raise ValueError(f"chunk_seconds must be between 0.05 and 5, got {chunk_seconds}")
        start = resolve(mood)
        self.grid = Grid.for_mood(start.valence, start.arousal, bpm, beats_per_bar)
        self.sample_rate = check_sample_rate(sample_rate)
        self.session = chain.generator.session((start.valence, start.arousal), seed=seed)
        self.renderer = chain.vocoder.stream()
        self.chunk_samples = round(chunk_seconds * SAMPLE_RATE)  # at 22,050 Hz; resampled chunks vary by a sample
        self._pending = np.zeros(0, dtype=np.float32)
        self.master = StreamMaster()
        self._sequence = 0
        self._frames = 0  # mel frames generated: the stream time up to which the music is decided
        self._changes: list[_Change] = []  # quantised changes waiting for their frame
        self.applied: list[tuple[int, int, float, float]] = []  # (frame asked for, frame it took effect, valence, arousal)
        self._stingers: list[tuple[int, np.ndarray]] = []  # (first sample at 22,050 Hz, audio) to mix in
        self._resampler = None
        self._emitted = 0  # samples sent at `sample_rate`: a resampled stream's chunks start where the audio really is
        if self.sample_rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(SAMPLE_RATE, self.sample_rate, 1, dtype="float32", quality="HQ")
        self._lock = threading.Lock()  # a server changes the mood from one thread while another generates

    @property
    def mood(self) -> tuple[float, float]:
        return self.session.valence, self.session.arousal

    @property
    def generated_s(self) -> float:
        """Stream time up to which the music is already generated (a change lands at or after it)."""
        return self._frames / FRAMES_PER_SECOND

    def _line(self, at: str) -> int:
        """The frame of the first beat or bar line at or after the generated frontier."""
        if at not in QUANTISE_CHOICES:
            raise ValueError(f"at must be one of {', '.join(QUANTISE_CHOICES)}, got {at!r}")
        return self._frames if at == "now" else round(self.grid.next_line(self.generated_s, at) * FRAMES_PER_SECOND)

    def set_mood(self, valence: float, arousal: float, transition_s: float = 0.0, at: str = "now") -> float:
        """Change the mood now, or on the next beat or bar line (`at`); a glide of `transition_s` starts there.
        Returns the stream time (s) the change takes effect."""
        Mood(valence, arousal)
        with self._lock:
            frame = self._line(at)
            if at == "now":
                self.session.set_mood(valence, arousal, transition_s)
                self.applied.append((frame, frame, float(valence), float(arousal)))
            else:
                self._changes.append(_Change(frame, float(valence), float(arousal), float(transition_s)))
                self._changes.sort(key=lambda c: c.frame)
        return frame / FRAMES_PER_SECOND

    def add_stinger(self, audio: np.ndarray, at: str = "bar") -> float:
        """Mix `audio` (mono, 22,050 Hz, mastered) into the stream from the next beat or bar line (`at`), or from
        the first sample not yet generated ("now"). Returns the stream time it starts."""
        if at not in QUANTISE_CHOICES:
            raise ValueError(f"at must be one of {', '.join(QUANTISE_CHOICES)}, got {at!r}")
        with self._lock:
            # On the line's own sample (a mood change can only land on a mel frame; a stinger is mixed sample by sample).
            start = self._frames * HOP_LENGTH if at == "now" else round(self.grid.next_line(self.generated_s, at) * SAMPLE_RATE)
            self._stingers.append((start, np.asarray(audio, dtype=np.float32)))
        return start / SAMPLE_RATE

    def _next_mel(self):
        """The next slice, ended early at a pending change's frame; the change is applied when its frame comes."""
        with self._lock:
            changed = []
            while self._changes and self._changes[0].frame <= self._frames:
                change = self._changes.pop(0)
                self.session.set_mood(change.valence, change.arousal, change.transition_s)
                self.applied.append((change.frame, self._frames, change.valence, change.arousal))
                changed.append((self._frames / FRAMES_PER_SECOND, change.valence, change.arousal))
            frames = self.session.model.slice_frames
            if self._changes:
                frames = min(frames, self._changes[0].frame - self._frames)
            mel = self.session.next_slice(frames=frames)
            self._frames += mel.shape[-1]
            return mel, changed

    def _mix_stingers(self, piece: np.ndarray, first: int) -> np.ndarray:
        """Add the stingers that overlap samples [first, first + piece.size) (22,050 Hz stream samples)."""
        kept = []
        for start, audio in self._stingers:
            lo, hi = max(start, first), min(start + audio.size, first + piece.size)
            if hi > lo:
                piece[lo - first : hi - first] += audio[lo - start : hi - start]
            if start + audio.size > first + piece.size:
                kept.append((start, audio))
        self._stingers = kept
        return piece

    def next_chunk(self) -> Chunk:
        changes = []
        while self._pending.size < self.chunk_samples:
            mel, changed = self._next_mel()
            changes += changed
            audio = self.renderer.push(mel).cpu().numpy().astype(np.float32)
            self._pending = np.concatenate([self._pending, audio])
        piece, self._pending = self._pending[: self.chunk_samples].copy(), self._pending[self.chunk_samples :]
        start = self._sequence * self.chunk_samples
        with self._lock:
            piece = self._mix_stingers(piece, start)
        piece = self.master.process(piece, self.session.arousal)
        if self._resampler is not None:
            # soxr holds back its filter's lookahead (about 9 ms): the chunk's times are those of the samples sent.
            piece = self._resampler.resample_chunk(piece)
        start_s, seconds = self._emitted / self.sample_rate, piece.size / self.sample_rate
        self._emitted += piece.size
        chunk = Chunk(
            sequence=self._sequence, pcm=to_pcm16(piece), samples=piece.size, start_s=start_s, valence=self.session.valence,
            arousal=self.session.arousal, sample_rate=self.sample_rate, seconds=seconds, grid=self.grid,
            changes=tuple(c for c in changes),
        )  # fmt: skip
        self._sequence += 1
        return chunk
