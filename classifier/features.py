"""The classifier's second input: a chroma (12 pitch classes) aligned frame by frame with the log-mel.

Mode (major or minor) is the strongest valence cue, and it is a relation between pitches a
semitone apart. The shared 80-bin mel cannot resolve that below about 1 kHz (its Slaney bins are
67 Hz wide there, a semitone at 440 Hz is 26 Hz), so the classifier also reads a chroma from a
4096-point STFT (5.4 Hz bins), with the mel's hop so both have the same frames (1 + N // 256).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from moodmusic.mel import HOP_LENGTH, SAMPLE_RATE

CHROMA_N_FFT = 4096
N_CHROMA = 12


@lru_cache(maxsize=1)
def _filterbank() -> torch.Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=CHROMA_N_FFT, n_chroma=N_CHROMA))


@lru_cache(maxsize=1)
def _window() -> torch.Tensor:
    return torch.hann_window(CHROMA_N_FFT)


def chroma(audio: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., samples) at 22,050 Hz -> (..., 12, 1 + samples // 256), each frame scaled to max 1.

    Scaling per frame keeps loudness out of this input (the mel carries it); frames of near
    silence stay near zero instead of being blown up to noise.
    """
    audio = torch.as_tensor(audio, dtype=torch.float32)
    shape = audio.shape
    flat = audio.reshape(-1, shape[-1])
    if flat.shape[-1] < CHROMA_N_FFT // 2 + 1:  # reflect padding needs at least half a window
        flat = torch.nn.functional.pad(flat, (0, CHROMA_N_FFT // 2 + 1 - flat.shape[-1]))
    spectrum = torch.stft(flat, CHROMA_N_FFT, HOP_LENGTH, window=_window(), center=True, return_complex=True).abs() ** 2
    energy = torch.einsum("cf,bft->bct", _filterbank(), spectrum)
    energy = energy[..., : 1 + shape[-1] // HOP_LENGTH]
    peak = energy.amax(dim=1, keepdim=True)
    floor = 1e-6 * energy.amax(dim=(1, 2), keepdim=True) + 1e-10
    scaled = energy / torch.maximum(peak, floor)
    return scaled.reshape(*shape[:-1], N_CHROMA, scaled.shape[-1])
