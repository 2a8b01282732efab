"""Sampling: clips of any length grow slice by slice from a mood, a trajectory of moods, or given context.

    import generator
    g = generator.load()                                   # the shipped weights (checkpoints/generator/)
    mel = g.generate("calm", seconds=20, seed=7)           # (80, T) log-mel
    mel = g.generate([(0, -0.6, -0.5), (10, 0.7, 0.6)], seconds=20, seed=7)  # sad -> happy over 10 s
    more = g.generate("calm", seconds=10, seed=8, context=mel)             # continue a clip
    session = g.session("tense", seed=3)                    # an endless stream
    session.set_mood(0.6, -0.6, transition_s=4.0)
    chunk = session.next_slice()                            # (80, 32)

A seed fixes every random draw (a torch.Generator per clip), so the same request gives the same mel
on the same machine. The latent follows a slow random walk from slice to slice (each step keeps 90%
of the previous latent's direction, still N(0, 1) at every slice), so a clip keeps a character
instead of changing its mind every 0.37 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR
from moodmusic.mood import Mood, MoodError, resolve

from generator.model import GeneratorConfig, MelSliceGenerator

LATENT_PERSISTENCE = 0.9
MIN_SECONDS, MAX_SECONDS = 1.0, 120.0

MoodLike = Union[str, Mood, tuple[float, float]]
TrajectoryPoint = tuple[float, float, float]  # (time in s, valence, arousal)


@dataclass(frozen=True)
class Trajectory:
    """Moods over time, linearly interpolated; constant before the first point and after the last."""

    times: tuple[float, ...]
    valence: tuple[float, ...]
    arousal: tuple[float, ...]

    @classmethod
    def of(cls, mood: MoodLike | Sequence[TrajectoryPoint] | Trajectory) -> Trajectory:
        if isinstance(mood, Trajectory):
            return mood
        if isinstance(mood, (str, Mood)) or (isinstance(mood, tuple) and len(mood) == 2 and not isinstance(mood[0], (tuple, list))):
            point = resolve(mood)
            return cls((0.0,), (point.valence,), (point.arousal,))
        points = [tuple(float(x) for x in p) for p in mood]
        if not points or any(len(p) != 3 for p in points):
            raise MoodError("a trajectory is a non-empty list of (time_s, valence, arousal) points")
        times = [p[0] for p in points]
        if any(not math.isfinite(t) or t < 0 for t in times) or any(b < a for a, b in zip(times, times[1:])):
            raise MoodError("trajectory times must be finite, non-negative and in increasing order")
        for _, valence, arousal in points:
            Mood(valence, arousal)  # range check with the standard message
        return cls(tuple(times), tuple(p[1] for p in points), tuple(p[2] for p in points))

    def at(self, seconds: float) -> tuple[float, float]:
        return float(np.interp(seconds, self.times, self.valence)), float(np.interp(seconds, self.times, self.arousal))


def check_seconds(seconds: float) -> float:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"duration must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} seconds, got {seconds!r}")
    return float(seconds)


class Session:
    """One clip growing slice by slice: the generator's state between calls (for streams and clips)."""

    def __init__(self, model: MelSliceGenerator, mood: MoodLike, seed: int, context: torch.Tensor | np.ndarray | None = None):
        self.model = model
        self.device = next(model.parameters()).device
        self.rng = torch.Generator(device="cpu").manual_seed(int(seed))
        start = Trajectory.of(mood).at(0.0)
        self.valence, self.arousal = start
        self._glide: tuple[float, float, float, float, float] | None = None  # from v, a, to v, a, frames left
        self.context = self._initial_context(context)
        self.latent = torch.randn(1, model.latent_dim, generator=self.rng)
        self.frames_written = 0

    def _initial_context(self, context) -> torch.Tensor:
        frames = self.model.context_frames
        start = torch.full((1, self.model.n_mels, frames), LOG_FLOOR)
        if context is not None:
            given = torch.as_tensor(context, dtype=torch.float32)
            if given.dim() != 2 or given.shape[0] != self.model.n_mels:
                raise ValueError(f"context must be a log-mel of shape ({self.model.n_mels}, T), got {tuple(given.shape)}")
            given = given[:, -frames:]
            start[0, :, frames - given.shape[1] :] = given
        return start.to(self.device)

    @property
    def slice_seconds(self) -> float:
        return self.model.slice_frames / FRAMES_PER_SECOND

    def set_mood(self, valence: float, arousal: float, transition_s: float = 0.0) -> None:
        """Glide from the current mood to this one over `transition_s` seconds (0: at the next slice)."""
        Mood(valence, arousal)
        if transition_s < 0 or not math.isfinite(transition_s):
            raise MoodError(f"transition_s must be a finite number >= 0, got {transition_s}")
        slices = max(1, math.ceil(transition_s / self.slice_seconds))
        self._glide = (self.valence, self.arousal, float(valence), float(arousal), slices, 0)

    def _advance_mood(self) -> None:
        if self._glide is None:
            return
        v0, a0, v1, a1, slices, done = self._glide
        done += 1
        t = min(1.0, done / slices)
        self.valence, self.arousal = v0 + (v1 - v0) * t, a0 + (a1 - a0) * t
        self._glide = None if t >= 1.0 else (v0, a0, v1, a1, slices, done)

    def draw_noise(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This slice's latent (one step of the random walk) and frame noise, from the session's own seed."""
        fresh = torch.randn(1, self.model.latent_dim, generator=self.rng)
        self.latent = LATENT_PERSISTENCE * self.latent + math.sqrt(1 - LATENT_PERSISTENCE**2) * fresh
        frame_noise = torch.randn(1, self.model.frame_noise_channels, self.model.context_frames + self.model.slice_frames, generator=self.rng)
        return self.latent.to(self.device), frame_noise.to(self.device)

    @torch.inference_mode()
    def next_slice(self) -> torch.Tensor:
        """The next (80, slice_frames) log-mel frames, at the mood this slice was generated for (self.valence, self.arousal)."""
        self._advance_mood()
        latent, frame_noise = self.draw_noise()
        mood = torch.tensor([[self.valence, self.arousal]], device=self.device)
        out = self.model(self.context, mood, latent, frame_noise)
        self.context = torch.cat([self.context, out], dim=2)[..., -self.model.context_frames :]
        self.frames_written += out.shape[-1]
        return out[0].cpu()


class MelGenerator:
    """The loaded generator with its version; `generate` for clips, `session` for streams."""

    def __init__(self, model: MelSliceGenerator, config: GeneratorConfig, version: str = "untrained"):
        self.model = model.eval()
        self.config = config
        self.version = version

    @property
    def slice_frames(self) -> int:
        return self.config.slice_frames

    def session(self, mood: MoodLike, seed: int = 0, context=None) -> Session:
        return Session(self.model, mood, seed, context)

    def generate(
        self, mood: MoodLike | Sequence[TrajectoryPoint] | Trajectory, seconds: float, seed: int = 0, context=None, progress=None
    ) -> torch.Tensor:
        """A (80, T) log-mel of `seconds` (1 to 120) for a mood or a trajectory; `progress(done, total)` is called per slice."""
        return self.generate_batch([mood], seconds, [seed], [context], progress)[0]

    @torch.inference_mode()
    def generate_batch(self, moods: Sequence, seconds: float, seeds: Sequence[int], contexts: Sequence | None = None, progress=None) -> torch.Tensor:
        """Many clips of one length at once (one forward pass per slice for all): (B, 80, T)."""
        seconds = check_seconds(seconds)
        if len(moods) != len(seeds):
            raise ValueError("one seed per mood")
        trajectories = [Trajectory.of(m) for m in moods]
        sessions = [Session(self.model, (t.valence[0], t.arousal[0]), s, c) for t, s, c in zip(trajectories, seeds, contexts or [None] * len(moods))]
        total_frames = round(seconds * FRAMES_PER_SECOND)
        n_slices = math.ceil(total_frames / self.slice_frames)
        device = sessions[0].device
        context = torch.cat([s.context for s in sessions])
        pieces = []
        for index in range(n_slices):
            centre = (index + 0.5) * self.slice_frames / FRAMES_PER_SECOND
            mood = torch.tensor([t.at(centre) for t in trajectories], dtype=torch.float32, device=device)
            latents, noises = zip(*(s.draw_noise() for s in sessions))
            out = self.model(context, mood, torch.cat(latents), torch.cat(noises))
            context = torch.cat([context, out], dim=2)[..., -self.model.context_frames :]
            pieces.append(out)
            if progress is not None:
                progress(index + 1, n_slices)
        return torch.cat(pieces, dim=2)[..., :total_frames].cpu()
