"""The corpus as the generator and its mode critic train on it: train and val mels with their moods."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_training_mels(data: str, normalise_lufs: float | None = None) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray], np.ndarray]:
    """Train and val split mels and moods of a corpus folder (mels precomputed by the builder).

    With `normalise_lufs`, every clip's mel is that of its audio brought to this loudness (a gain is a
    constant added to the log-mel; bins at the log floor stay there), so level carries no mood and the
    generator must write arousal with tempo, density and timbre (mastering sets the level afterwards)."""
    from moodmusic.corpus.loaders import load_corpus
    from moodmusic.audio import load_audio
    from moodmusic.mastering import integrated_loudness
    from moodmusic.mel import LOG_FLOOR, log_mel

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
