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
    """The parameters of the log-mel spectrogram; `MEL` is the one instance every stage uses."""

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


CHUNK_FRAMES = 2048  # long audio is transformed this many frames (24 s) at a time: memory follows the chunk, not the file


def framewise(transform, audio: torch.Tensor, n_fft: int, chunk_frames: int = CHUNK_FRAMES) -> torch.Tensor:
    """`transform` ((..., samples) -> (..., F, 1 + samples // HOP_LENGTH), a centred STFT of `n_fft` points
    and anything frame by frame after it) over long audio, `chunk_frames` frames at a time. Each chunk is
    computed from its samples and a margin of half a window each side, and only the frames whose window
    lies inside it are kept, so the result is the one-shot transform's (to float rounding) while the
    STFT of a 10-minute file never sits in memory at once (500 MB for the mel's, 1.7 GB for the chroma's)."""
    samples = audio.shape[-1]
    frames = 1 + samples // HOP_LENGTH
    if frames <= chunk_frames + chunk_frames // 2:
        return transform(audio)
    margin = -(-n_fft // (2 * HOP_LENGTH)) + 1
    pieces = []
    for first in range(0, frames, chunk_frames):
        last = min(frames, first + chunk_frames)
        start, end = max(0, (first - margin) * HOP_LENGTH), min(samples, (last + margin) * HOP_LENGTH)
        offset = first - start // HOP_LENGTH
        pieces.append(transform(audio[..., start:end])[..., offset : offset + last - first])
    return torch.cat(pieces, dim=-1)


def log_mel(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Log-mel of mono audio at 22,050 Hz: (..., samples) -> (..., 80, 1 + samples // 256).

    >>> import numpy as np
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> mel = log_mel(tone)
    >>> tuple(mel.shape), int(mel.mean(dim=1).argmax())  # 1 s: 87 frames; band 11 (centred on 447 Hz) is the loudest
    ((80, 87), 11)
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    magnitude = framewise(_transform(audio.device), audio, MEL.n_fft)
    return torch.log(torch.clamp(magnitude, min=MEL.min_amplitude))


def filterbank() -> torch.Tensor:
    """The mel filterbank of this convention, (1 + n_fft // 2, n_mels): mel magnitude = |STFT| @ filterbank."""
    return _transform(torch.device("cpu")).mel_scale.fb.clone()


class SinusoidMelInverse(torch.nn.Module):
    """Mel magnitude -> linear magnitude, as a non-negative sum of sinusoids (one frame at a time).

    The mel has 80 bands for 513 STFT bins, so many spectra give the same mel. The least-squares
    answer (torchaudio's InverseMelScale) is the smoothest of them: it spreads each band's energy over
    the band, below 1 kHz 133 Hz wide, several semitones. Music is mostly partials, so here each frame
    is explained by sinusoids on a grid of `per_octave` steps from `lowest_hz` to `highest_hz`: each
    atom is the STFT magnitude of a Hann-windowed sinusoid (its main lobe over the 513 bins) and that
    lobe's mel. Non-negative least squares by multiplicative updates (Lee and Seung 2001) keeps few
    atoms active, and a partial's energy split between two overlapping bands places it between them.
    """

    def __init__(self, lowest_hz: float = 27.5, highest_hz: float = MEL.f_max, per_octave: int = 36, iterations: int = 100):
        super().__init__()
        self.iterations = iterations
        self.frequencies = lowest_hz * 2 ** (np.arange(int(per_octave * math.log2(highest_hz / lowest_hz)) + 1) / per_octave)  # Hz
        t = np.arange(MEL.n_fft) / MEL.sample_rate
        window = torch.hann_window(MEL.win_length, dtype=torch.float64).numpy()
        lobes = torch.from_numpy(np.abs(np.fft.rfft(window * np.cos(2 * np.pi * self.frequencies[:, None] * t), axis=1)).T).float()
        self.register_buffer("lobes", lobes)  # (bins, atoms)
        self.register_buffer("atoms", filterbank().T @ lobes)  # (mels, atoms): each atom's mel magnitude

    def amplitudes(self, mel_magnitude: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) mel magnitude -> (B, atoms, T) non-negative amplitude of each sinusoid."""
        atoms = self.atoms
        target = atoms.T @ mel_magnitude
        amplitudes = torch.full_like(target, 1e-3) * mel_magnitude.mean(dim=1, keepdim=True)  # flat start
        for _ in range(self.iterations):
            amplitudes = amplitudes * target / (atoms.T @ (atoms @ amplitudes) + 1e-10)
        return amplitudes

    def forward(self, mel_magnitude: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) mel magnitude -> (B, 513, T) linear magnitude."""
        return self.lobes @ self.amplitudes(mel_magnitude)


def frames_for_samples(n_samples: int) -> int:
    """Frames of the centred transform for a signal of n_samples."""
    return 1 + n_samples // MEL.hop_length


def frames_for_seconds(seconds: float) -> int:
    return frames_for_samples(int(round(seconds * MEL.sample_rate)))


def samples_for_frames(n_frames: int) -> int:
    """Samples a vocoder produces for n_frames (speechbrain HiFi-GAN `forward`: hop per frame)."""
    return n_frames * MEL.hop_length
