"""Key and mode estimation with the Krumhansl-Kessler key profiles.

One definition serves two uses: the corpus builder finds the key of a score excerpt (from
note durations per pitch class) before it changes the mode, and the label-free acoustic judges
(corpus audibility check, closed-loop evaluation) estimate major/minor from audio chroma.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


@dataclass(frozen=True)
class Key:
    """A key (tonic and mode) as `estimate_key` finds it, with how well the pitch classes fit it.

    >>> key = Key(tonic=9, mode="minor", correlation=0.8)
    >>> key.name
    'A minor'
    >>> key = estimate_key([1, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1])   # the notes of the G major scale
    >>> key.tonic, key.mode, key.name, round(key.correlation, 2)
    (7, 'major', 'G major', 0.76)
    """

    tonic: int  # pitch class 0..11
    mode: str  # "major" or "minor"
    correlation: float  # Pearson r of the best profile; near 0 means no clear key

    @property
    def name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"


def _correlations(weights: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Pearson r between the weights and the profile rotated to each of the 12 tonics."""
    rotated = np.stack([np.roll(profile, tonic) for tonic in range(12)])
    w = weights - weights.mean()
    r = rotated - rotated.mean(axis=1, keepdims=True)
    denominator = np.sqrt((r**2).sum(axis=1) * (w**2).sum()) + 1e-12
    return (r @ w) / denominator


def estimate_key(pitch_class_weights: np.ndarray) -> Key:
    """The best-correlated of the 24 major and minor keys for 12 pitch-class weights.

    >>> c_major_triad = [1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0]   # C, E, G
    >>> a_minor_triad = [1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0]   # A, C, E
    >>> estimate_key(c_major_triad).name, estimate_key(a_minor_triad).name
    ('C major', 'A minor')
    """
    weights = np.asarray(pitch_class_weights, dtype=np.float64).reshape(12)
    major = _correlations(weights, MAJOR_PROFILE)
    minor = _correlations(weights, MINOR_PROFILE)
    if major.max() >= minor.max():
        tonic = int(major.argmax())
        return Key(tonic, "major", float(major[tonic]))
    tonic = int(minor.argmax())
    return Key(tonic, "minor", float(minor[tonic]))


def estimate_key_from_audio(samples: np.ndarray, sample_rate: int) -> Key:
    """Key of an audio signal from its mean constant-Q chroma."""
    import librosa

    chroma = librosa.feature.chroma_cqt(y=samples, sr=sample_rate)
    return estimate_key(chroma.mean(axis=1))
