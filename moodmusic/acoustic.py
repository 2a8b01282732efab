"""The independent acoustic judge: label-free descriptors that music-emotion research ties to mood.

It uses no model of ours, so it can check both the corpus labels (does the arousal we asked
for come out as tempo and loudness?) and, later, generated clips. Descriptors:
tempo (librosa beat tracker), onset rate, RMS loudness, spectral centroid, and a major/minor
estimate from chroma with the Krumhansl key profiles (moodmusic.tonality).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from moodmusic.mel import SAMPLE_RATE
from moodmusic.tonality import estimate_key_from_audio


@dataclass(frozen=True)
class AcousticFeatures:
    """The descriptors `acoustic_features` measures for one clip, as plain numbers and names, to compare with the mood asked for."""

    tempo_bpm: float
    onset_rate: float  # onsets per second
    rms_db: float  # mean RMS in dBFS
    centroid_hz: float  # mean spectral centroid
    mode: str  # "major" or "minor"
    key: str
    key_correlation: float

    def as_dict(self) -> dict:
        return asdict(self)


def acoustic_features(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> AcousticFeatures:
    import librosa

    warnings.filterwarnings("ignore", message="n_fft=.*is too large", category=UserWarning)
    samples = np.asarray(samples, dtype=np.float32)
    seconds = samples.size / sample_rate
    onset_envelope = librosa.onset.onset_strength(y=samples, sr=sample_rate)
    tempo = librosa.feature.tempo(onset_envelope=onset_envelope, sr=sample_rate)
    onsets = librosa.onset.onset_detect(onset_envelope=onset_envelope, sr=sample_rate)
    rms = librosa.feature.rms(y=samples)[0]
    centroid = librosa.feature.spectral_centroid(y=samples, sr=sample_rate)[0]
    key = estimate_key_from_audio(samples, sample_rate)
    return AcousticFeatures(
        tempo_bpm=float(np.atleast_1d(tempo)[0]),
        onset_rate=float(len(onsets) / max(seconds, 1e-9)),
        rms_db=float(20 * np.log10(np.mean(rms) + 1e-9)),
        centroid_hz=float(np.mean(centroid)),
        mode=key.mode,
        key=key.name,
        key_correlation=key.correlation,
    )


def warm_up() -> None:
    """Compile (and cache) librosa's numba kernels in this process before starting workers.

    Worker processes that compile the same kernels at once race on numba's on-disk cache and
    can leave a corrupt entry that crashes later runs; compiling once first avoids the race.
    """
    rng = np.random.default_rng(0)
    acoustic_features(rng.normal(0, 0.1, SAMPLE_RATE).astype(np.float32))
