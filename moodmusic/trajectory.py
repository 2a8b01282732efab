"""Moods over time, and the clip lengths the system writes: the types every stage and the server share.

    Trajectory.of("calm")                              # one mood, constant
    Trajectory.of([(0, -0.6, -0.5), (10, 0.7, 0.6)])   # sad -> happy over 10 s
    check_seconds(20)                                  # a length in [MIN_SECONDS, MAX_SECONDS], or ValueError
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from moodmusic.mood import Mood, MoodError, resolve

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
        if any(not math.isfinite(p[0]) or p[0] < 0 for p in points):
            raise MoodError("trajectory times must be finite and non-negative")
        points.sort(key=lambda p: p[0])  # taken in time order (stable: of two points at one time, the later listed wins)
        times = [p[0] for p in points]
        for _, valence, arousal in points:
            Mood(valence, arousal)  # range check with the standard message
        return cls(tuple(times), tuple(p[1] for p in points), tuple(p[2] for p in points))

    def at(self, seconds: float) -> tuple[float, float]:
        return float(np.interp(seconds, self.times, self.valence)), float(np.interp(seconds, self.times, self.arousal))


def check_seconds(seconds: float) -> float:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise ValueError(f"duration must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} seconds, got {seconds!r}")
    return float(seconds)
