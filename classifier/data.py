"""Training examples for the classifier: log-mels in memory, random crops, augmentation.

Augmentation works on the log-mel directly (cheap, no audio re-analysis) and targets what would
let the model learn FluidR3's rendering instead of the mood cues: overall gain, spectral tilt
(an EQ), background noise, time and frequency masking, and mixing with another clip of the same
quadrant (a second performance layered over the first, label averaged).

Weak labels (the real-music set) say only the sign of valence and of arousal, or nothing for a dimension
(value 0): each item says which sizes and which signs its label knows, and the loss asks for no more.

Corpus clips may also carry cue tracks (`corpus.render.cue_tracks`): per frame, whether a note of a
graded valence cue sounds. They are cropped, mixed and masked with the audio they describe, and train
the classifier's cue head (`moodmusic train classifier --cue-weight`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from moodmusic.classifier.features import N_CHROMA, context_profile, tonal_features
from moodmusic.corpus.cues import CUE_TRACKS
from moodmusic.corpus.loaders import LabelledClip
from moodmusic.audio import load_audio
from moodmusic.mastering import normalise_loudness
from moodmusic.mel import LOG_FLOOR, N_MELS, log_mel
from moodmusic.mood import quadrant_index

MAX_SECONDS_PER_FILE = 45.0  # user data sets hold whole songs; this many seconds per file are enough to learn from


@dataclass
class Example:
    """One labelled clip held in memory for training: its log-mel, tonal features, label and what the label knows."""

    mel: np.ndarray  # float16 (80, T)
    tonal: np.ndarray  # float16 (12, T) chroma, or (84, T): the semitone levels under it (classifier.features)
    valence: float
    arousal: float
    quadrant: int
    quadrant_only: bool
    source: str
    valence_sign_only: bool = False  # the audio carries the sign of this valence label, not its size
    weak: bool = False  # a weak label (real music): the sign of each dimension, 0 where not known
    cue_tracks: np.ndarray | None = None  # uint8 (2, T) where the graded valence cues sound, if the data knows


def load_examples(
    clips: list[LabelledClip], progress: bool = True, desc: str = "loading", semitones: bool = False, input_lufs: float | None = None
) -> list[Example]:
    """The clips' log-mels and tonal features; `semitones` for a classifier with a pitch branch; `input_lufs`
    for one whose front end brings every input to that loudness (the features are then computed from the
    normalised audio, as `analyze()` computes them)."""
    examples = []
    for clip in tqdm(clips, desc=desc, disable=not progress, unit="clip"):
        samples = load_audio(clip.audio, max_seconds=MAX_SECONDS_PER_FILE)
        if input_lufs is not None:
            samples = normalise_loudness(samples, input_lufs)
        samples = torch.from_numpy(samples)
        if clip.mel is not None and clip.mel.exists() and input_lufs is None:
            mel = np.load(clip.mel)
        else:
            mel = log_mel(samples).numpy().astype(np.float16)
        tonal = tonal_features(samples, semitones).numpy().astype(np.float16)
        cue_tracks = None
        if clip.cue_tracks is not None and clip.cue_tracks.exists():
            # On the mel's frames: audio passed through a renderer can come back a few samples longer or shorter.
            cue_tracks = np.load(clip.cue_tracks)[:, : mel.shape[1]]
            cue_tracks = np.pad(cue_tracks, ((0, 0), (0, mel.shape[1] - cue_tracks.shape[1])))
        examples.append(
            Example(mel, tonal, clip.valence, clip.arousal, quadrant_index(clip.valence, clip.arousal), clip.quadrant_only, clip.source, cue_tracks=cue_tracks, weak=clip.weak)
        )
    return examples


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly `augment` and `CropDataset` change the training crops (gain, tilt, noise, masks, mixing)."""

    gain_db: float = 6.0  # +- uniform; small against the corpus's 30 dB loudness range, which is a real cue
    tilt_db: float = 6.0  # +- dB across the mel band
    noise_probability: float = 0.3
    noise_db: tuple[float, float] = (-75.0, -50.0)  # noise floor level range
    mask_probability: float = 0.5
    max_time_mask: int = 24
    max_freq_mask: int = 10
    mix_probability: float = 0.2


DB_TO_LOG = np.log(10.0) / 20.0  # the mel is the natural log of magnitude


def augment(
    mel: np.ndarray, tonal: np.ndarray, rng: np.random.Generator, config: AugmentConfig, cue_tracks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gain, tilt and noise change the mel (the chroma is scaled per frame, so they barely touch it);
    masks hide the same frames in both, and in `cue_tracks` (changed in place): a hidden note is not heard."""
    mel, tonal = mel.astype(np.float32), tonal.astype(np.float32)
    gain = rng.uniform(-config.gain_db, config.gain_db)
    tilt = rng.uniform(-config.tilt_db, config.tilt_db) * np.linspace(-0.5, 0.5, N_MELS)[:, None]
    mel = mel + (gain + tilt) * DB_TO_LOG
    if rng.random() < config.noise_probability:
        level = np.exp(rng.uniform(*config.noise_db) * DB_TO_LOG)
        noise = level * np.abs(rng.normal(1.0, 0.3, size=mel.shape))
        mel = np.log(np.exp(mel) + noise)
    if rng.random() < config.mask_probability:
        t0, width = rng.integers(0, mel.shape[1]), rng.integers(1, config.max_time_mask)
        mel[:, t0 : t0 + width] = LOG_FLOOR
        tonal[:, t0 : t0 + width] = 0.0
        if cue_tracks is not None:
            cue_tracks[:, t0 : t0 + width] = 0
        f0, height = rng.integers(0, N_MELS), rng.integers(1, config.max_freq_mask)
        mel[f0 : f0 + height] = LOG_FLOOR
    return np.maximum(mel, LOG_FLOOR), tonal


def mix(first: tuple[np.ndarray, np.ndarray], second: tuple[np.ndarray, np.ndarray], weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Layer two performances: add mel magnitudes (approximately: the mel is a magnitude) and the
    tonal features (the chroma rescaled to max 1 per frame again; semitone levels averaged)."""
    mel = np.log(weight * np.exp(first[0].astype(np.float32)) + (1 - weight) * np.exp(second[0].astype(np.float32)) + 1e-12)
    tonal = weight * first[1].astype(np.float32) + (1 - weight) * second[1].astype(np.float32)
    tonal[:N_CHROMA] /= np.maximum(tonal[:N_CHROMA].max(axis=0, keepdims=True), 1e-6)
    return mel, tonal


@dataclass
class Crop:
    """One training window cut by `random_crop`: the mel, tonal features and cue tracks of the window, and the
    mean chroma around it."""

    mel: np.ndarray  # (80, frames)
    tonal: np.ndarray  # (tonal rows, frames)
    context: np.ndarray  # (12,) mean chroma around the window
    cue_tracks: np.ndarray | None  # (2, frames), None where the data does not know


def random_crop(example: Example, frames: int, rng: np.random.Generator, context_frames: int) -> Crop:
    """The same random window of the mel, the tonal features and the cue tracks, and the mean chroma
    around it (the mode head's context, taken as analysis takes it); short examples are padded with silence."""
    mel, tonal, cue_tracks = example.mel, example.tonal, example.cue_tracks
    if mel.shape[1] <= frames:
        pad = ((0, 0), (0, frames - mel.shape[1]))
        context = context_profile(tonal, 0, mel.shape[1], context_frames).numpy()
        return Crop(np.pad(mel, pad, constant_values=LOG_FLOOR), np.pad(tonal, pad), context, None if cue_tracks is None else np.pad(cue_tracks, pad))
    start = int(rng.integers(0, mel.shape[1] - frames + 1))
    window = slice(start, start + frames)
    context = context_profile(tonal, start, start + frames, context_frames).numpy()
    return Crop(mel[:, window], tonal[:, window], context, None if cue_tracks is None else cue_tracks[:, window])


class CropDataset(torch.utils.data.Dataset):
    """Random window crops of the examples, augmented; one epoch visits every example once."""

    def __init__(self, examples: list[Example], frames: int, augment_config: AugmentConfig | None, seed: int = 0, context_frames: int = 0):
        self.examples = examples
        self.frames = frames
        self.context_frames = context_frames
        self.augment_config = augment_config
        self.seed = seed
        self.epoch = 0
        # Mixing layers two performances of one quadrant; weak labels do not name a quadrant, so they are never mixed.
        self.by_quadrant = {q: [i for i, e in enumerate(examples) if e.quadrant == q and not e.weak] for q in range(4)}

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        example = self.examples[index]
        crop = random_crop(example, self.frames, rng, self.context_frames)
        mel, tonal, context, cue_tracks = crop.mel, crop.tonal, crop.context, crop.cue_tracks
        valence, arousal = example.valence, example.arousal
        config = self.augment_config
        mixed = None
        if config is not None:
            if not example.weak and rng.random() < config.mix_probability and len(self.by_quadrant[example.quadrant]) > 1:
                other = mixed = self.examples[int(rng.choice(self.by_quadrant[example.quadrant]))]
                weight = rng.uniform(0.6, 0.9)
                other_crop = random_crop(other, self.frames, rng, self.context_frames)
                mel, tonal = mix((mel, tonal), (other_crop.mel, other_crop.tonal), weight)
                context = weight * context + (1 - weight) * other_crop.context
                # A cue note of either layer still sounds in the mix.
                cue_tracks = None if cue_tracks is None or other_crop.cue_tracks is None else np.maximum(cue_tracks, other_crop.cue_tracks)
                valence = weight * valence + (1 - weight) * other.valence
                arousal = weight * arousal + (1 - weight) * other.arousal
            cue_tracks = None if cue_tracks is None else cue_tracks.copy()
            mel, tonal = augment(mel, tonal, rng, config, cue_tracks)
        cues_known = cue_tracks is not None
        return {
            "mel": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)),
            "tonal": torch.from_numpy(np.ascontiguousarray(tonal, dtype=np.float32)),
            "context": torch.from_numpy(np.ascontiguousarray(context, dtype=np.float32)),
            "valence_arousal": torch.tensor([valence, arousal], dtype=torch.float32),
            "quadrant": torch.tensor(example.quadrant),
            "has_point": torch.tensor(0.0 if example.quadrant_only else 1.0),
            "size_known": torch.tensor([0.0 if example.weak or example.valence_sign_only or (mixed is not None and mixed.valence_sign_only) else 1.0,
                                        0.0 if example.weak else 1.0]),
            "sign_known": torch.tensor([float(not example.weak or valence != 0), float(not example.weak or arousal != 0)]),
            "cue_tracks": torch.from_numpy(cue_tracks.astype(np.float32)) if cues_known else torch.zeros(len(CUE_TRACKS), self.frames),
            "cue_tracks_known": torch.tensor(1.0 if cues_known else 0.0),
        }


def mel_statistics(examples: list[Example], sample: int = 500) -> tuple[float, float]:
    """Mean and std of log-mel values over (a sample of) the training set, for input scaling."""
    rng = np.random.default_rng(0)
    picks = rng.choice(len(examples), size=min(sample, len(examples)), replace=False)
    values = np.concatenate([examples[i].mel.astype(np.float32).ravel() for i in picks])
    return float(values.mean()), float(values.std())
