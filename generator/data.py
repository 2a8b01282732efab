"""The corpus as the generator and its mode critic train on it: train and val mels with their moods, and the
random training windows drawn from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from moodmusic.mel import LOG_FLOOR


def load_training_mels(data: str, normalise_lufs: float | None = None) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Train and val split mels and moods of a corpus folder (mels precomputed by the builder).

    With `normalise_lufs`, every clip's mel is that of its audio brought to this loudness (a gain is a
    constant added to the log-mel; bins at the log floor stay there), so level carries no mood and the
    generator must write arousal with tempo, density and timbre (mastering sets the level afterwards)."""
    from moodmusic.corpus.loaders import load_corpus
    from moodmusic.audio import load_audio
    from moodmusic.mastering import integrated_loudness
    from moodmusic.mel import log_mel

    splits: dict[str, tuple[list, list]] = {"train": ([], []), "val": ([], [])}
    for clip in load_corpus(Path(data)):
        if clip.split not in splits:
            continue
        mel = np.load(clip.mel) if clip.mel and Path(clip.mel).exists() else log_mel(load_audio(clip.audio)).numpy()
        if normalise_lufs is not None:
            loudness = integrated_loudness(load_audio(clip.audio))
            if np.isfinite(loudness):
                shift = (normalise_lufs - loudness) / 20.0 * np.log(10.0)  # natural-log units of magnitude
                mel = np.where(mel > LOG_FLOOR + 1e-3, np.maximum(mel.astype(np.float32) + shift, LOG_FLOOR), LOG_FLOOR)
        splits[clip.split][0].append(mel.astype(np.float16))
        splits[clip.split][1].append((clip.valence, clip.arousal))
    (train_mels, train_moods), (val_mels, val_moods) = splits["train"], splits["val"]
    if not train_mels:
        raise SystemExit(f"{data} has no train-split clips")
    return train_mels, np.array(train_moods), val_mels, np.array(val_moods)


class WindowSampler:
    """Random (context + rollout + 1 slices) windows of train-split mels, left-padded with silence, with their moods.

    >>> mels = [np.zeros((80, 300), dtype=np.float32), np.zeros((80, 50), dtype=np.float32), np.ones((80, 400), dtype=np.float32)]
    >>> sampler = WindowSampler(mels, np.array([[0.5, 0.5], [0.0, 0.0], [-0.5, -0.5]]), context_frames=64, slice_frames=32, seed=0)
    >>> windows, moods = sampler.batch(step=0, size=4)       # the 50-frame clip is too short for a window: left out
    >>> tuple(windows.shape), sorted({tuple(m) for m in moods.tolist()}) <= [(-0.5, -0.5), (0.5, 0.5)]
    ((4, 80, 128), True)
    """

    def __init__(self, mels: list[np.ndarray], moods: np.ndarray, context_frames: int, slice_frames: int, seed: int, rollout_slices: int = 1):
        self.context_frames, self.slice_frames = context_frames, slice_frames
        self.window = context_frames + (rollout_slices + 1) * slice_frames
        pad = np.full((mels[0].shape[0], context_frames), LOG_FLOOR, dtype=np.float16)
        long_enough = [i for i, m in enumerate(mels) if m.shape[1] >= self.window - context_frames]  # a clip shorter than a window is left out,
        self.mels = [np.concatenate([pad, mels[i].astype(np.float16)], axis=1) for i in long_enough]
        self.moods = np.asarray(moods, dtype=np.float32)[long_enough]  # and its mood with it
        self.seed = seed

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 80, window) log-mel and (B, 2) moods; the draw depends only on (seed, step), so resumes repeat it."""
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(len(self.mels), size=size)
        windows = []
        for index in picks:
            mel = self.mels[index]
            start = int(rng.integers(0, mel.shape[1] - self.window + 1))
            windows.append(mel[:, start : start + self.window])
        return torch.from_numpy(np.stack(windows).astype(np.float32)), torch.from_numpy(self.moods[picks])
