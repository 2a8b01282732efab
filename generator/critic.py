"""A mode critic for the generator's training: does a stretch of log-mel sound major or minor?

The corpus carries valence mostly in the mode (corpus/cues.py), and the generator's discriminator reads
mood from 0.74 s of mel, too short to hear a key (its mood reader stays near chance on valence). This
critic hears the mode in what the generator writes, and nothing else:

1. `MelPitchClasses`: the log-mel is unmixed back to a linear spectrum (the pseudo-inverse of the mel
   filterbank of docs/conventions.md), only its spectral peaks are kept (`classifier.features.spectral_peaks`,
   the classifier's own rule), and their energies from 300 Hz to 5 kHz are folded onto the 12 pitch
   classes. Below 300 Hz the mel's bands are wider than a semitone and fold to noise.
2. `classifier.model.ModeHead` reads the mean profile of the stretch: one small scorer tried at each of
   the 12 tonics, so the verdict does not depend on the key.

Everything is differentiable, so the generator can learn to move energy to the pitches that make the
asked mode. The critic is trained once on real train-split mels (major vs minor = sign of valence) and
frozen; the closed-loop evaluation's judge is the shipped classifier, which hears the rendered audio and
is never trained against. A first critic (the classifier's CRNN on 1.5 s of mel, regressing valence and
arousal) read valence's sign on only 67% of real val windows, and the generator fooled it within 200
steps with no gain for the judge (docs/generator.md); a 12-number pitch profile leaves no such room.

    moodmusic train critic --data data/corpus --out runs/critic
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from moodmusic import checkpoints
from moodmusic.mel import MEL


@dataclass
class CriticConfig:
    """The shape of a `ModeCritic`; saved as its checkpoint's config.json."""

    lowest_hz: float = 300.0
    highest_hz: float = 5000.0
    mode_hidden: int = 16
    window_frames: int = 256  # 3 s: the stretch the generator writes, eight slices, for the critic to read


@dataclass
class CriticTrainConfig:
    """The arguments of the critic's training (`moodmusic train critic`)."""

    data: str = "data/corpus"
    out: str = "runs/critic"
    steps: int = 1500
    batch_size: int = 256
    learning_rate: float = 1e-2
    seed: int = 0
    threads: int = 2


STAGE = "critic"


class MelPitchClasses(nn.Module):
    """(B, 80, T) log-mel -> (B, 12, T) energy of the spectral peaks per pitch class (C first)."""

    def __init__(self, lowest_hz: float = 300.0, highest_hz: float = 5000.0):
        super().__init__()
        from moodmusic.mel import filterbank

        bank = filterbank()  # (bins, mels)
        self.register_buffer("unmix", torch.linalg.pinv(bank.T))  # (bins, mels): least-squares linear spectrum
        frequencies = torch.linspace(0, MEL.sample_rate / 2, bank.shape[0])
        fold = torch.zeros(12, bank.shape[0])
        for index, frequency in enumerate(frequencies.tolist()):
            if lowest_hz <= frequency <= highest_hz:
                fold[round(69 + 12 * math.log2(frequency / 440.0)) % 12, index] = 1.0
        self.register_buffer("fold", fold)
        # Only the bins that fold onto a pitch class are searched for peaks (with one neighbour each side,
        # which decides whether an edge bin is a peak): the same profile at under half the cost, which
        # matters when guided sampling reads 8 candidates every 1.5 s.
        used = fold.sum(dim=0).nonzero().flatten()
        self.first_bin, self.last_bin = int(used[0]), int(used[-1])

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        from moodmusic.classifier.features import spectral_peaks

        linear = torch.relu(self.unmix @ torch.exp(log_mel))  # (B, bins, T)
        scaled = linear / linear.amax(dim=1, keepdim=True).clamp_min(1e-5)  # the loudest bin of all, as the chroma
        first, last = self.first_bin, self.last_bin
        band = spectral_peaks(scaled[:, first - 1 : last + 2])[:, 1:-1]
        return self.fold[:, first : last + 1] @ band**2


class ModeCritic(nn.Module):
    """The critic: a stretch of log-mel -> one logit, above 0 for major and below for minor; see the module docstring."""

    def __init__(self, lowest_hz: float = 300.0, highest_hz: float = 5000.0, mode_hidden: int = 16, window_frames: int = 256):
        super().__init__()
        from moodmusic.classifier.model import ModeHead

        self.pitch_classes = MelPitchClasses(lowest_hz, highest_hz)
        self.mode = ModeHead(mode_hidden)
        self.window_frames = window_frames

    def forward(self, log_mel: torch.Tensor) -> torch.Tensor:
        """(B, 80, T) log-mel -> (B,) major-minus-minor logit (> 0: major)."""
        return self.read_profile(self.pitch_classes(log_mel).mean(dim=2))

    def read_profile(self, profile: torch.Tensor) -> torch.Tensor:
        scores = self.mode(profile)
        return scores[:, 0] - scores[:, 1]


def build(config: CriticConfig) -> ModeCritic:
    return ModeCritic(**asdict(config))


def load(directory: str | Path) -> ModeCritic:
    """A trained critic (safetensors + config.json), frozen and in eval mode."""
    critic = build(CriticConfig(**checkpoints.load_config(Path(directory))))
    checkpoints.load_weights(critic, Path(directory))
    return critic.eval().requires_grad_(False)


def mode_loss(critic: ModeCritic, log_mel: torch.Tensor, valence: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the critic's verdict against the mode the corpus gives that valence."""
    return nn.functional.binary_cross_entropy_with_logits(critic(log_mel), (valence >= 0).float())


@torch.no_grad()
def pitch_profiles(critic: ModeCritic, mels: list[np.ndarray]) -> list[torch.Tensor]:
    """Per-frame pitch classes (12, T) of each clip, computed once: training then only averages windows."""
    return [critic.pitch_classes(torch.from_numpy(m.astype(np.float32))[None])[0] for m in mels]


def window_profiles(frames: list[torch.Tensor], length: int, starts: list[tuple[int, int]]) -> torch.Tensor:
    return torch.stack([frames[clip][:, start : start + length].mean(dim=1) for clip, start in starts])


@torch.no_grad()
def validate(critic: ModeCritic, frames: list[torch.Tensor], valence: np.ndarray, length: int) -> dict:
    """Mode accuracy (against the sign of valence) on three windows per val clip, and on whole clips."""
    starts = [(i, s) for i, f in enumerate(frames) for s in (0, (f.shape[1] - length) // 2, f.shape[1] - length)]
    major = valence >= 0
    windows = critic.read_profile(window_profiles(frames, length, starts)).numpy() > 0
    whole = critic.read_profile(torch.stack([f.mean(dim=1) for f in frames])).numpy() > 0
    return {
        "windows": len(starts),
        "window_accuracy": round(float(np.mean(windows == major[[i for i, _ in starts]])), 4),
        "clip_accuracy": round(float(np.mean(whole == major)), 4),
    }


def train(config: CriticTrainConfig, progress: bool = True) -> dict:
    from tqdm import tqdm

    from moodmusic.generator.data import load_training_mels

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    critic_config = CriticConfig()
    length = critic_config.window_frames
    critic = build(critic_config)
    train_mels, train_moods, val_mels, val_moods = load_training_mels(config.data)
    keep_train = [i for i, m in enumerate(train_mels) if m.shape[1] >= length]
    keep_val = [i for i, m in enumerate(val_mels) if m.shape[1] >= length]
    train_frames = pitch_profiles(critic, [train_mels[i] for i in keep_train])
    val_frames = pitch_profiles(critic, [val_mels[i] for i in keep_val])
    train_major = torch.tensor(train_moods[keep_train, 0] >= 0).float()
    val_valence = val_moods[keep_val, 0]
    optimizer = torch.optim.Adam(critic.mode.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    best: dict = {"window_accuracy": -1.0}
    started = time.perf_counter()
    for step in tqdm(range(1, config.steps + 1), desc="critic", unit="step", disable=not progress):
        clips = rng.integers(len(train_frames), size=config.batch_size)
        starts = [(int(c), int(rng.integers(0, train_frames[c].shape[1] - length + 1))) for c in clips]
        loss = nn.functional.binary_cross_entropy_with_logits(critic.read_profile(window_profiles(train_frames, length, starts)), train_major[clips])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 100 == 0 or step == config.steps:
            scores = validate(critic, val_frames, val_valence, length)
            entry = {"step": step, "loss": round(float(loss.detach()), 4), "minutes": round((time.perf_counter() - started) / 60, 2), **scores}
            with open(out / "log.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
            if scores["window_accuracy"] > best["window_accuracy"]:
                best = entry
                checkpoints.save(critic, critic_config, out / "best")
    (out / "best" / "metrics.json").write_text(json.dumps(best, indent=2) + "\n")
    return best


def export(best_dir: Path, config: CriticTrainConfig, best: dict, command: str, root: Path | None = None) -> None:
    """The best critic into checkpoints/critic/ (or `root`/critic), where guided sampling (generator/inference.py) finds it."""
    critic = load(best_dir)
    checkpoints.save(critic, CriticConfig(**checkpoints.load_config(best_dir)), checkpoints.stage_dir(STAGE, root))
    checkpoints.record(
        STAGE, model=critic, command=command, metrics=best, root=root,
        data=f"train-split clips of {config.data} (log-mels), 3 s windows, major = valence >= 0; kept: the best val-split window accuracy",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = CriticTrainConfig()
    parser.add_argument("--data", default=defaults.data, help="corpus folder (manifest.csv + mel/)")
    parser.add_argument("--out", default=defaults.out, help="run folder; the best critic (val window accuracy) goes to <out>/best")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument("--export", action="store_true", help="copy the best critic to checkpoints/critic/ (guided sampling reads it there)")


def run(args: argparse.Namespace) -> int:
    config = CriticTrainConfig(
        data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, threads=args.threads,
    )  # fmt: skip
    best = train(config)
    print(json.dumps(best))
    if args.export:
        from moodmusic.commandline import command_line

        export(Path(config.out) / "best", config, best, command_line(args))
    return 0
