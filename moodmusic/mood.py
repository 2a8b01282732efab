"""The mood space every part of moodmusic agrees on (CONVENTIONS section 1).

A mood is a point (valence, arousal) of Russell's circumplex, each coordinate in [-1, 1]:
valence runs from unpleasant to pleasant, arousal from calm to energetic. Two discrete views
are derived from the point:

- the four quadrants of the valence/arousal plane (happy, angry, sad, calm), the classes of
  seeds 001 and 004;
- the four moods of the Analyst-Interpreter paper (chill, energy, emotion, upbeat), a soft distribution computed
  from the distance of the point to one prototype per mood.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

QUADRANTS: tuple[str, ...] = ("happy", "angry", "sad", "calm")

# The Analyst-Interpreter paper's four moods as prototype points of the same space.
SEED000_PROTOTYPES: dict[str, tuple[float, float]] = {
    "chill": (0.4, -0.6),
    "energy": (0.0, 0.9),
    "emotion": (-0.5, -0.3),
    "upbeat": (0.6, 0.6),
}
SEED000_MOODS: tuple[str, ...] = tuple(SEED000_PROTOTYPES)

# Softness of the seed-000 distribution: each extra squared distance of this much divides a
# mood's weight by e. 0.25 keeps a point near a prototype clearly dominant while blending points
# between prototypes, which is what the narrator needs ("upbeat with a chill side").
SEED000_TEMPERATURE = 0.25

# The one table of named moods. Synonyms that map to the same point are listed separately.
NAMED_MOODS: dict[str, tuple[float, float]] = {
    "happy": (0.7, 0.5),
    "angry": (-0.7, 0.7),
    "sad": (-0.7, -0.5),
    "calm": (0.6, -0.6),
    "tense": (-0.5, 0.6),
    "epic": (0.5, 0.9),
    "peaceful": (0.7, -0.7),
    "melancholic": (-0.6, -0.4),
    "mysterious": (-0.2, -0.3),
    "playful": (0.8, 0.4),
    "dark": (-0.7, 0.1),
    **SEED000_PROTOTYPES,
}
MOOD_SYNONYMS: dict[str, str] = {"relaxed": "calm"}


class MoodError(ValueError):
    """A mood that is out of range or unknown; the message says what is accepted."""


@dataclass(frozen=True)
class Mood:
    """A point (valence, arousal) of the mood space, each coordinate checked to lie in [-1, 1].

    >>> mood = Mood(valence=0.6, arousal=-0.6)
    >>> mood.quadrant, mood.as_tuple()
    ('calm', (0.6, -0.6))
    >>> Mood(valence=1.5, arousal=0.0)
    Traceback (most recent call last):
    moodmusic.mood.MoodError: valence must be in [-1, 1], got 1.5
    """

    valence: float
    arousal: float

    def __post_init__(self) -> None:
        for name in ("valence", "arousal"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise MoodError(f"{name} must be a finite number in [-1, 1], got {value!r}")
            if not -1.0 <= value <= 1.0:
                raise MoodError(f"{name} must be in [-1, 1], got {value}")

    @property
    def quadrant(self) -> str:
        return quadrant(self.valence, self.arousal)

    def as_tuple(self) -> tuple[float, float]:
        return (float(self.valence), float(self.arousal))


def quadrant(valence: float, arousal: float) -> str:
    """The quadrant of a point; zero counts as positive (docs/conventions.md).

    >>> quadrant(0.0, 0.0), quadrant(-0.1, -0.1)
    ('happy', 'sad')
    """
    if arousal >= 0:
        return "happy" if valence >= 0 else "angry"
    return "calm" if valence >= 0 else "sad"


def quadrant_index(valence: float, arousal: float) -> int:
    return QUADRANTS.index(quadrant(valence, arousal))


def quadrant_indices(valence: np.ndarray, arousal: np.ndarray) -> np.ndarray:
    """Vectorised `quadrant_index` for arrays of points."""
    valence, arousal = np.asarray(valence), np.asarray(arousal)
    positive_v, positive_a = valence >= 0, arousal >= 0
    return np.where(positive_a, np.where(positive_v, 0, 1), np.where(positive_v, 3, 2)).astype(np.int64)


def seed000_distribution(valence: float, arousal: float, temperature: float = SEED000_TEMPERATURE) -> dict[str, float]:
    """The Analyst-Interpreter paper's chill/energy/emotion/upbeat probabilities for a point (softmax of -d^2 / T)."""
    logits = np.array(
        [-((valence - pv) ** 2 + (arousal - pa) ** 2) / temperature for pv, pa in SEED000_PROTOTYPES.values()]
    )
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return {name: float(w) for name, w in zip(SEED000_MOODS, weights)}


def from_deam(value: float) -> float:
    """DEAM's 1..9 annotation scale to [-1, 1]."""
    return (float(value) - 5.0) / 4.0


def from_unit(value: float) -> float:
    """A [0, 1] annotation to [-1, 1]."""
    return 2.0 * float(value) - 1.0


def named(name: str) -> Mood:
    """The preset point of a named mood; the error lists every accepted name."""
    key = name.strip().lower()
    key = MOOD_SYNONYMS.get(key, key)
    if key not in NAMED_MOODS:
        raise MoodError(f"unknown mood {name!r}; valid names: {', '.join(sorted(NAMED_MOODS) + sorted(MOOD_SYNONYMS))}")
    return Mood(*NAMED_MOODS[key])


def resolve(mood: str | Mood | tuple[float, float]) -> Mood:
    """Accept a name, a Mood, or a (valence, arousal) pair wherever a mood is asked for.

    >>> resolve("Calm").quadrant, resolve((-0.5, 0.6)).quadrant
    ('calm', 'angry')
    >>> resolve((0.0, 1.5))
    Traceback (most recent call last):
    moodmusic.mood.MoodError: arousal must be in [-1, 1], got 1.5
    """
    if isinstance(mood, Mood):
        return mood
    if isinstance(mood, str):
        return named(mood)
    valence, arousal = mood
    return Mood(float(valence), float(arousal))


def nearest_named(valence: float, arousal: float) -> str:
    """The named mood closest to a point (for labels in reports and the narrator)."""
    return min(NAMED_MOODS, key=lambda n: (NAMED_MOODS[n][0] - valence) ** 2 + (NAMED_MOODS[n][1] - arousal) ** 2)


def grid_points(rows: int, cols: int, extent: float = 0.8) -> list[tuple[int, int, float, float]]:
    """(row, col, valence, arousal): columns run along valence, rows along arousal (row 0 = calmest)."""
    valences = np.linspace(-extent, extent, cols) if cols > 1 else np.zeros(1)
    arousals = np.linspace(-extent, extent, rows) if rows > 1 else np.zeros(1)
    return [(r, c, round(float(v), 3), round(float(a), 3)) for r, a in enumerate(arousals) for c, v in enumerate(valences)]
