"""Hearing a whole piece of audio: cut its log-mel into ~3 s windows, read each, combine.

The same windowing serves validation during training, the `analyze()` API and the evaluation,
so a clip is always judged the same way.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from moodmusic.analysis import Analysis, MoodReading, TimelineWindow
from moodmusic.classifier.features import context_profile, tonal_features
from moodmusic.classifier.model import ClassifierConfig, MoodCRNN
from moodmusic import checkpoints
from moodmusic.audio import AudioDecodeError, AudioTooShortError, load_audio
from moodmusic.mastering import integrated_loudness, normalise_loudness
from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR, SAMPLE_RATE, log_mel
from moodmusic.mood import QUADRANTS

MIN_FRAMES = 32  # shorter windows are padded with silence (the log floor)
MIN_SAMPLES = 1024  # shorter audio is refused: the mel's 1,024-point STFT needs a frame of real samples (46 ms)
WINDOW_BATCH = 16  # windows per forward pass: bounds memory on files of any length (64: +87 MB and slower on 600 s)


def window_starts(n_frames: int, window: int, hop: int) -> list[int]:
    """Starts of full windows covering the frames; a tail of at least a third of a window gets a
    window of its own, aligned to the end (overlapping its neighbour) rather than padded with silence,
    which would read as quiet, calm music."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, hop))
    if n_frames - (starts[-1] + window) >= window // 3:
        starts.append(n_frames - window)
    return starts


def pad_frames(features: torch.Tensor, frames: int, value: float = LOG_FLOOR) -> torch.Tensor:
    if features.shape[-1] >= frames:
        return features
    return torch.nn.functional.pad(features, (0, frames - features.shape[-1]), value=value)


@dataclass
class WindowOutputs:
    """What the model read in each window of one piece of audio (`read_windows`), with the frame span and weight of
    each window, so that the whole clip's reading is their weighted mean."""

    starts: list[int]  # first frame of each window
    ends: list[int]  # one past its last frame
    weights: list[int]  # frames each window adds to the ones before it: its weight in the whole
    valence_arousal: np.ndarray  # (W, 2)
    quadrant_probabilities: np.ndarray  # (W, 4)
    embeddings: np.ndarray  # (W, D)
    mode_logits: np.ndarray  # (W,): > 0 major (0 without a mode head)
    cue_shares: np.ndarray | None = None  # (W, cue tracks): the share of each window the cue head says each cue fills

    def mean(self, per_window: np.ndarray) -> np.ndarray:
        """The whole clip's value of a per-window reading (W, ...): the mean weighted by the frames each window adds."""
        weights = np.asarray(self.weights, dtype=np.float64)
        return (weights / weights.sum()) @ per_window

    def combined(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Weighted means over windows: (valence, arousal), quadrant probabilities, embedding."""
        return self.mean(self.valence_arousal), self.mean(self.quadrant_probabilities), self.mean(self.embeddings)


@torch.inference_mode()
def read_windows(model: MoodCRNN, mel: torch.Tensor, tonal: torch.Tensor, window: int, hop: int | None = None) -> WindowOutputs:
    """Run the model over windows of a (80, T) log-mel and its tonal features (`model.tonal_rows`, T),
    WINDOW_BATCH windows at a time."""
    n_frames = mel.shape[-1]
    starts = window_starts(n_frames, window, hop or window)
    ends = [min(start + window, n_frames) for start in starts]
    weights = [end - max(start, previous_end) for start, end, previous_end in zip(starts, ends, [0] + ends[:-1])]
    outputs: list[dict[str, torch.Tensor]] = []
    for first in range(0, len(starts), WINDOW_BATCH):
        spans = list(zip(starts[first : first + WINDOW_BATCH], ends[first : first + WINDOW_BATCH]))
        mels = torch.stack([pad_frames(mel[:, s:e], MIN_FRAMES) for s, e in spans])
        tonals = torch.stack([pad_frames(tonal[:, s:e], MIN_FRAMES, value=0.0) for s, e in spans])
        contexts = torch.stack([context_profile(tonal, s, e, model.context_frames) for s, e in spans])
        outputs.append(model(mels, tonals, contexts))
    return WindowOutputs(
        starts=starts,
        ends=ends,
        weights=weights,
        valence_arousal=torch.cat([o["valence_arousal"] for o in outputs]).double().numpy(),
        quadrant_probabilities=torch.cat([torch.softmax(o["quadrant_logits"], dim=1) for o in outputs]).double().numpy(),
        embeddings=torch.cat([o["embedding"] for o in outputs]).double().numpy(),
        mode_logits=torch.cat([o["mode_logit"] for o in outputs]).double().numpy(),
        cue_shares=torch.cat([torch.sigmoid(o["cue_logits"]).mean(dim=1) for o in outputs]).double().numpy() if "cue_logits" in outputs[0] else None,
    )


class MoodClassifier:
    """The shipped (or any trained) classifier with the `analyze()` API."""

    def __init__(self, model: MoodCRNN, config: ClassifierConfig, version: str = "untrained"):
        self.model = model.eval()
        self.config = config
        self.version = version

    @property
    def window_frames(self) -> int:
        return self.config.window_frames

    def tonal_features(self, samples: torch.Tensor) -> torch.Tensor:
        """The tonal input this model reads, for mono samples at 22,050 Hz."""
        return tonal_features(samples, semitones=self.model.reads_semitones)

    def read(self, mel: torch.Tensor, tonal: torch.Tensor, hop: int | None = None) -> WindowOutputs:
        return read_windows(self.model, torch.as_tensor(mel, dtype=torch.float32), torch.as_tensor(tonal, dtype=torch.float32), self.window_frames, hop)

    def analyze_features(self, mel: torch.Tensor, tonal: torch.Tensor, duration: float | None = None) -> Analysis:
        windows = self.read(mel, tonal)
        (valence, arousal), quadrant_probabilities, embedding = windows.combined()
        timeline = []
        for start, end, va, probabilities in zip(windows.starts, windows.ends, windows.valence_arousal, windows.quadrant_probabilities):
            reading = MoodReading.from_point(va[0], va[1], dict(zip(QUADRANTS, probabilities)))
            timeline.append(TimelineWindow(**vars(reading), start=round(start / FRAMES_PER_SECOND, 3), end=round(end / FRAMES_PER_SECOND, 3)))
        return Analysis(
            overall=MoodReading.from_point(valence, arousal, dict(zip(QUADRANTS, quadrant_probabilities))),
            timeline=timeline,
            embedding=[float(x) for x in embedding],
            duration=float(duration if duration is not None else mel.shape[-1] / FRAMES_PER_SECOND),
        )

    def analyze(self, audio: str | os.PathLike | bytes | np.ndarray, loudness_lufs: float | None = None) -> Analysis:
        """Analyse a file path, encoded bytes, or mono float samples at 22,050 Hz.

        `loudness_lufs` is the input's integrated loudness when the caller has measured it already (the
        chain, after mastering); otherwise it is measured here. Raises moodmusic.audio.AudioDecodeError for
        undecodable or empty input, AudioTooShortError for audio shorter than MIN_SAMPLES.
        """
        samples = audio if isinstance(audio, np.ndarray) else load_audio(audio)
        if samples.size == 0:
            raise AudioDecodeError("the audio holds no samples")
        if samples.size < MIN_SAMPLES:
            raise AudioTooShortError(
                f"the audio is {samples.size} samples long ({1000 * samples.size / SAMPLE_RATE:.1f} ms at {SAMPLE_RATE:,} Hz); "
                f"at least {MIN_SAMPLES:,} samples ({1000 * MIN_SAMPLES / SAMPLE_RATE:.0f} ms) are needed to analyse it"
            )
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        loudness = integrated_loudness(samples) if loudness_lufs is None else float(loudness_lufs)
        samples = torch.from_numpy(normalise_loudness(samples, self.config.input_lufs, loudness))
        analysis = self.analyze_features(log_mel(samples), self.tonal_features(samples), duration=samples.numel() / SAMPLE_RATE)
        analysis.loudness_lufs = loudness if math.isfinite(loudness) else None
        return analysis


def build_model(config: ClassifierConfig) -> MoodCRNN:
    return MoodCRNN(**vars(config))


def load(directory: str | Path | None = None, device: str = "cpu") -> MoodClassifier:
    """The classifier in `directory` (default: the shipped checkpoints/classifier).

    >>> import numpy as np
    >>> ear = load()
    >>> chord = sum(np.sin(2 * np.pi * f * np.arange(3 * 22050) / 22050) for f in (262, 330, 392)).astype(np.float32) / 4
    >>> analysis = ear.analyze(chord)                  # 3 s of a C major chord
    >>> analysis.quadrant in ("happy", "angry", "sad", "calm"), analysis.duration, len(analysis.timeline)
    (True, 3.0, 1)
    >>> -1 <= analysis.overall.valence <= 1 and -1 <= analysis.overall.arousal <= 1
    True
    """
    directory = Path(directory) if directory else checkpoints.stage_dir("classifier")
    config = ClassifierConfig(**checkpoints.load_config(directory))
    model = checkpoints.load_weights(build_model(config), directory, device)
    version = checkpoints.sha256(directory / checkpoints.WEIGHTS_FILE)[:12]
    return MoodClassifier(model.to(device), config, version)
