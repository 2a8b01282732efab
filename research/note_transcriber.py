"""A small note transcriber for our corpus: can a model that finds notes count the doubled thirds better than the ear?

The ear's open target (valence MAE <= 0.15) is held up by one thing: how much of a positive clip's melody the
corpus doubles a third above (docs/classifier.md). The ear's cue head finds that share at Spearman 0.67 on the v3
test. The corpus builder knows every note it renders (`corpus.render.note_rolls`), so a model can be taught to find
notes, and from them the frames where the top note has a third under it. This script trains one on the semitone
levels the ear reads (`classifier.features`, C2..B7), with frame heads for that "third under the top note", the
doubling track and the clash track, and writes each clip's shares of them for `research/valence_readout.py`.

    python research/note_transcriber.py train --corpus data/corpus-v3 --epochs 10 --out runs/transcriber
    python research/note_transcriber.py shares --corpus data/corpus-v3 --checkpoint runs/transcriber --out runs/transcriber/shares.npz

An experiment, not a stage of the system: nothing here is shipped or imported by the server.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from moodmusic.classifier.data import load_examples
from moodmusic.classifier.features import HIGHEST_MIDI, LOWEST_MIDI, N_CHROMA
from moodmusic.corpus.loaders import LabelledClip, load_any

SPLITS = ("train", "val", "test")
HARMONICS = (0, 12, 19, 24, 28, -12)  # semitones to partials 2-5 and the octave below: a note's evidence at its pitch
CROP_FRAMES = 256
FRAME_HEADS = ("third under the top note", "doubling", "clash")


def harmonic_stack(levels: torch.Tensor) -> torch.Tensor:
    """(B, 72, T) semitone levels -> (B, 6, 72, T): channel h at pitch p holds the level at p + HARMONICS[h], so a
    3x3 kernel sees a note's partials at the note (Bittner et al. 2017, harmonic CQT)."""
    shifted = []
    for shift in HARMONICS:
        if shift >= 0:
            shifted.append(nn.functional.pad(levels[:, shift:], (0, 0, 0, shift)))
        else:
            shifted.append(nn.functional.pad(levels[:, :shift], (0, 0, -shift, 0)))
    return torch.stack(shifted, dim=1)


class NoteTranscriber(nn.Module):
    """Convolutions over (pitch, time) of the harmonic stack -> a note logit per semitone and frame, and per frame
    logits for FRAME_HEADS read from all pitches at once (the top note's place matters)."""

    def __init__(self, channels: int = 24, pitches: int = HIGHEST_MIDI - LOWEST_MIDI + 1):
        super().__init__()

        def block(inputs: int, outputs: int, kernel: tuple[int, int], dilation: tuple[int, int]) -> nn.Sequential:
            padding = tuple((k // 2) * d for k, d in zip(kernel, dilation))
            return nn.Sequential(nn.Conv2d(inputs, outputs, kernel, padding=padding, dilation=dilation), nn.BatchNorm2d(outputs), nn.ReLU())

        self.body = nn.Sequential(
            block(len(HARMONICS), channels, (5, 5), (1, 1)),
            block(channels, channels, (3, 3), (1, 1)),
            block(channels, channels, (3, 3), (1, 2)),  # time dilations: a note's onset and its hold
            block(channels, channels, (3, 3), (1, 4)),
        )
        self.notes = nn.Conv2d(channels, 1, 1)
        self.squeeze = nn.Conv2d(channels, 4, 1)
        self.frames = nn.Sequential(nn.Conv1d(5 * pitches, 64, 3, padding=1), nn.ReLU(), nn.Conv1d(64, len(FRAME_HEADS), 3, padding=1))

    def forward(self, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 72, T) -> note logits (B, 72, T), frame logits (B, 3, T)."""
        hidden = self.body(harmonic_stack(levels))
        notes = self.notes(hidden)[:, 0]
        pitch_map = torch.cat([self.squeeze(hidden).flatten(1, 2), torch.sigmoid(notes)], dim=1)
        return notes, self.frames(pitch_map)


def third_under_top(roll: torch.Tensor) -> torch.Tensor:
    """(B, P, T) bool -> (B, T) float: 1 where the highest sounding note has a note a minor or major third below it."""
    pitch = torch.arange(roll.shape[1]).view(1, -1, 1)
    top = torch.where(roll, pitch, torch.full_like(pitch, -1)).amax(dim=1)

    def sounds(below: int) -> torch.Tensor:
        return torch.gather(roll, 1, (top - below).clamp_min(0).unsqueeze(1))[:, 0] & (top - below >= 0)

    return ((sounds(3) | sounds(4)) & (top >= 0)).float()


def _notes_of_task(arguments: tuple) -> list[tuple[str, np.ndarray, float]]:
    from moodmusic.corpus.build import BuildConfig, arrange_task
    from moodmusic.corpus.render import note_rolls

    task, config_dict = arguments
    config = BuildConfig(**config_dict)
    rows, arranged = arrange_task(task, config)
    notes = []
    for row, clip in zip(rows, arranged):
        rolls = note_rolls(clip, config.seconds)[:, LOWEST_MIDI : HIGHEST_MIDI + 1]
        notes.append((row["id"], rolls.any(axis=0), same_instrument_third_share(rolls)))  # per channel only for the share: 16x the memory
    return notes


def corpus_notes(folder: Path, workers: int = 2) -> dict[str, tuple[np.ndarray, float]]:
    """clip id -> (its notes on C2..B7, (72, frames) bool; its same-instrument third share), re-arranged from the recorded plan."""
    from dataclasses import asdict

    from moodmusic.corpus.build import BuildConfig, plan

    config = BuildConfig(**{**json.loads((folder / "build.json").read_text()), "out": str(folder)})
    notes = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        tasks = [(task, asdict(config)) for task in plan(config)]
        for result in tqdm(pool.map(_notes_of_task, tasks, chunksize=4), total=len(tasks), desc="arranging", unit="piece"):
            notes.update({clip_id: (roll, share) for clip_id, roll, share in result})
    return notes


def clip_id(clip: LabelledClip) -> str:
    return clip.audio.stem


def split_tensors(clips: list[LabelledClip], notes_of: dict[str, tuple[np.ndarray, float]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Semitone levels (N, 72, T), notes (N, 72, T) and frame targets (N, 3, T) of one split's clips."""
    examples = load_examples(clips, progress=False, semitones=True)
    frames = min(example.tonal.shape[1] for example in examples)
    levels = torch.from_numpy(np.stack([example.tonal[N_CHROMA:, :frames] for example in examples]).astype(np.float32))
    notes = torch.from_numpy(np.stack([notes_of[clip_id(clip)][0][:, :frames] for clip in clips]))
    cues = torch.from_numpy(np.stack([example.cue_tracks[:, :frames] for example in examples]).astype(np.float32))
    return levels, notes.float(), torch.cat([third_under_top(notes).unsqueeze(1), cues], dim=1)


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    clips = load_any(Path(args.corpus))
    notes_of = corpus_notes(Path(args.corpus))
    train_set, val_set = (split_tensors([c for c in clips if c.split == split], notes_of) for split in ("train", "val"))
    model = NoteTranscriber()
    optimizer = torch.optim.AdamW(model.parameters(), args.learning_rate, weight_decay=1e-4)
    steps = len(train_set[0]) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.learning_rate, total_steps=args.epochs * steps)
    loss_of = nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best, log = float("inf"), []
    for epoch in range(1, args.epochs + 1):
        model.train()
        order, total, started = torch.randperm(len(train_set[0]), generator=generator), 0.0, time.time()
        for step in tqdm(range(steps), desc=f"epoch {epoch}", leave=False):
            batch = order[step * args.batch : (step + 1) * args.batch]
            start = int(torch.randint(0, train_set[0].shape[2] - CROP_FRAMES, (1,), generator=generator))
            crop = slice(start, start + CROP_FRAMES)
            notes, frames = model(train_set[0][batch, :, crop])
            loss = loss_of(notes, train_set[1][batch, :, crop]) + loss_of(frames, train_set[2][batch, :, crop])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        model.eval()
        with torch.inference_mode():
            val_loss = sum(
                (loss_of(notes, val_set[1][i : i + 50]) + loss_of(frames, val_set[2][i : i + 50])).item() * len(notes)
                for i in range(0, len(val_set[0]), 50)
                for notes, frames in [model(val_set[0][i : i + 50])]
            ) / len(val_set[0])
        log.append({"epoch": epoch, "train_loss": round(total / steps, 4), "val_loss": round(val_loss, 4), "seconds": round(time.time() - started)})
        print(f"epoch {epoch}: train loss {total / steps:.4f}, val loss {val_loss:.4f} ({time.time() - started:.0f} s)", flush=True)
        if val_loss < best:
            best = val_loss
            save_file(model.state_dict(), str(out / "model.safetensors"))
    (out / "log.json").write_text(json.dumps({"args": vars(args), "epochs": log}, indent=1))


def shares(args: argparse.Namespace) -> None:
    """Per clip and split: the share of frames each frame head marks (mean probability), the share of frames whose
    transcribed top note has a third under it, and the same from the true notes; with the note F1 per split."""
    from scipy.stats import spearmanr

    torch.set_num_threads(2)
    model = NoteTranscriber()
    model.load_state_dict(load_file(str(Path(args.checkpoint) / "model.safetensors")))
    model.eval()
    clips = load_any(Path(args.corpus))
    notes_of = corpus_notes(Path(args.corpus))
    out = {}
    for split in SPLITS:
        split_clips = [c for c in clips if c.split == split]
        levels, true_notes, targets = split_tensors(split_clips, notes_of)
        found, hits, false, missed = [], 0, 0, 0
        with torch.inference_mode():
            for i in range(0, len(levels), 50):
                notes, frames = model(levels[i : i + 50])
                heard, truth = notes > 0, true_notes[i : i + 50].bool()
                hits, false, missed = hits + (heard & truth).sum().item(), false + (heard & ~truth).sum().item(), missed + (~heard & truth).sum().item()
                found.append(torch.cat([torch.sigmoid(frames).mean(dim=2), third_under_top(heard).mean(dim=1, keepdim=True)], dim=1).numpy())
        found = np.concatenate(found)
        same_instrument = np.array([notes_of[clip_id(c)][1] for c in split_clips])
        out[split] = found
        out[f"{split}_true"] = np.stack([targets[:, 0].mean(dim=1).numpy(), same_instrument, *targets[:, 1:].mean(dim=2).numpy().T], axis=1)
        out[f"{split}_ids"] = np.array([clip_id(c) for c in split_clips])
        positive = np.array([c.valence >= 0 for c in split_clips])

        def ranked(found_share: np.ndarray, true_share: np.ndarray) -> str:  # a corpus without textures has no cue notes to rank
            return f"{spearmanr(found_share, true_share)[0]:.2f}" if np.ptp(true_share) > 0 else "n/a (none marked)"

        print(
            f"{split}: note F1 {2 * hits / (2 * hits + false + missed):.3f}; on positive clips, Spearman against the truth: "
            f"third under the top note (head) {spearmanr(found[positive, 0], out[f'{split}_true'][positive, 0])[0]:.2f}, "
            f"(from the transcribed notes) {spearmanr(found[positive, 3], out[f'{split}_true'][positive, 0])[0]:.2f}, "
            f"doubling {ranked(found[positive, 1], out[f'{split}_true'][positive, 2])}; "
            f"on negative clips, clash {ranked(found[~positive, 2], out[f'{split}_true'][~positive, 3])}"
        )
    np.savez(args.out, **out)


def same_instrument_third_share(roll: np.ndarray) -> float:
    """(16, P, T) notes per channel -> the share of sounding frames whose top note has a third under it played by the
    same channel: what a transcription that also knew each note's instrument would count."""
    sounding = roll.any(axis=0)
    frames = np.flatnonzero(sounding.any(axis=0))
    if frames.size == 0:
        return 0.0
    top = sounding.shape[0] - 1 - np.argmax(sounding[::-1, frames], axis=0)
    count = 0
    for frame, pitch in zip(frames, top):
        players = np.flatnonzero(roll[:, pitch, frame])
        count += any(roll[player, pitch - below, frame] for player in players for below in (3, 4) if pitch - below >= 0)
    return count / frames.size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train")
    trainer.add_argument("--corpus", default="data/corpus-v3")
    trainer.add_argument("--epochs", type=int, default=10)
    trainer.add_argument("--batch", type=int, default=16)
    trainer.add_argument("--learning-rate", type=float, default=2e-3)
    trainer.add_argument("--seed", type=int, default=0)
    trainer.add_argument("--threads", type=int, default=2)
    trainer.add_argument("--out", required=True)
    reader = commands.add_parser("shares")
    reader.add_argument("--corpus", default="data/corpus-v3")
    reader.add_argument("--checkpoint", required=True, help="a folder `train` wrote")
    reader.add_argument("--out", required=True, help="an .npz file")
    args = parser.parse_args()
    if args.command == "train":
        torch.set_num_threads(args.threads)
        train(args)
    else:
        shares(args)


if __name__ == "__main__":
    main()
