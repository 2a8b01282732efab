"""The one log-mel convention of moodmusic (CONVENTIONS section 2).

It is exactly the convention of speechbrain's 22.05 kHz HiFi-GAN vocoders, so a mel written by
our generator can be rendered by any speechbrain HiFi-GAN, and a mel computed here from real
audio can train or test one. `speechbrain.lobes.models.HifiGAN.mel_spectrogram` with the
arguments of `MEL` computes the same numbers (tests/test_mel.py checks it to 1e-5); this module
keeps one cached transform per device so the hot paths do not rebuild filter banks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchaudio


@dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 22050
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    power: float = 1.0
    normalized: bool = False
    norm: str = "slaney"
    mel_scale: str = "slaney"
    min_amplitude: float = 1e-5  # log floor: ln(1e-5) = -11.51

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def log_floor(self) -> float:
        return math.log(self.min_amplitude)

    def as_dict(self) -> dict:
        return asdict(self)


MEL = MelConfig()
SAMPLE_RATE = MEL.sample_rate
HOP_LENGTH = MEL.hop_length
N_MELS = MEL.n_mels
FRAMES_PER_SECOND = MEL.frames_per_second
LOG_FLOOR = MEL.log_floor

_transforms: dict[str, torchaudio.transforms.MelSpectrogram] = {}


def _transform(device: torch.device) -> torchaudio.transforms.MelSpectrogram:
    key = str(device)
    if key not in _transforms:
        _transforms[key] = torchaudio.transforms.MelSpectrogram(
            sample_rate=MEL.sample_rate,
            n_fft=MEL.n_fft,
            win_length=MEL.win_length,
            hop_length=MEL.hop_length,
            f_min=MEL.f_min,
            f_max=MEL.f_max,
            n_mels=MEL.n_mels,
            power=MEL.power,
            normalized=MEL.normalized,
            norm=MEL.norm,
            mel_scale=MEL.mel_scale,
        ).to(device)
    return _transforms[key]


def log_mel(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Log-mel of mono audio at 22,050 Hz: (..., samples) -> (..., 80, 1 + samples // 256)."""
    audio = torch.as_tensor(audio, dtype=torch.float32)
    magnitude = _transform(audio.device)(audio)
    return torch.log(torch.clamp(magnitude, min=MEL.min_amplitude))


def filterbank() -> torch.Tensor:
    """The mel filterbank of this convention, (1 + n_fft // 2, n_mels): mel magnitude = |STFT| @ filterbank."""
    return _transform(torch.device("cpu")).mel_scale.fb.clone()


def frames_for_samples(n_samples: int) -> int:
    """Frames of the centred transform for a signal of n_samples."""
    return 1 + n_samples // MEL.hop_length


def frames_for_seconds(seconds: float) -> int:
    return frames_for_samples(int(round(seconds * MEL.sample_rate)))


def samples_for_frames(n_frames: int) -> int:
    """Samples a vocoder produces for n_frames (speechbrain HiFi-GAN `forward`: hop per frame)."""
    return n_frames * MEL.hop_length
