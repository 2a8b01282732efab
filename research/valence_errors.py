"""What a classifier's valence error is made of: the sign heard wrong, or the size on the right side.

Reads a split of a corpus the way `moodmusic evaluate classifier` does (whole clips, windowed as
`analyze()` windows them) and prints the valence MAE split into sign errors and size errors, the
mean heard valence per band of asked valence, and the Spearman correlation of asked and heard
valence within each sign (how well the size is ranked where the sign is known).

    python research/valence_errors.py --corpus data/corpus --split test [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from moodmusic import classifier
from moodmusic.classifier.data import load_examples
from moodmusic.classifier.metrics import predict_examples
from moodmusic.corpus.loaders import load_any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--split", default="test")
    parser.add_argument("--checkpoint", default=None, help="classifier folder (default: the shipped one)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = classifier.load(args.checkpoint)
    clips = [clip for clip in load_any(Path(args.corpus)) if clip.split == args.split]
    examples = load_examples(clips, progress=False, semitones=model.model.reads_semitones, input_lufs=model.config.input_lufs)
    heard = predict_examples(model, examples)["valence_arousal"][:, 0]
    asked = np.array([example.valence for example in examples])
    errors = np.abs(heard - asked)
    sign_right = (heard >= 0) == (asked >= 0)
    print(f"classifier {model.version} on {len(asked)} {args.split} clips of {args.corpus}")
    print(f"valence MAE {errors.mean():.3f}: sign heard right in {sign_right.mean():.1%}; "
          f"sign errors add {errors[~sign_right].sum() / len(asked):.3f}, size on the right side {errors[sign_right].sum() / len(asked):.3f}")  # fmt: skip
    for low, high in ((-1.0, -0.5), (-0.5, 0.0), (0.0, 0.5), (0.5, 1.0001)):
        band = (asked >= low) & (asked < high)
        print(f"asked valence in [{low:+.1f}, {min(high, 1):+.1f}): {band.sum()} clips, heard {heard[band].mean():+.3f} on average, MAE {errors[band].mean():.3f}")
    positive, negative = asked >= 0, asked < 0
    print(f"Spearman(asked, heard) within sign: positive {spearmanr(asked[positive], heard[positive])[0]:.2f}, negative {spearmanr(asked[negative], heard[negative])[0]:.2f}")
    if model.model.cue is not None and all(example.cue_tracks is not None for example in examples):
        report_cue_head(model, examples, asked)


def report_cue_head(model, examples, asked) -> None:
    """How well the cue head finds the cue notes: over each whole clip, the share of it the head says each cue
    fills against the share its cue tracks mark, and against the asked valence on the cue's own side."""
    from moodmusic.corpus.cues import CUE_TRACKS

    found, marked = [], []
    with torch.inference_mode():
        for example in examples:
            outputs = model.model(torch.from_numpy(example.mel.astype(np.float32))[None], torch.from_numpy(example.tonal.astype(np.float32))[None])
            found.append(torch.sigmoid(outputs["cue_logits"][0]).mean(dim=0).numpy())
            marked.append(example.cue_tracks.mean(axis=1))
    found, marked = np.array(found), np.array(marked)
    for row, (name, side) in enumerate(zip(CUE_TRACKS, (asked >= 0, asked < 0))):
        print(f"cue head, {name} on the {'positive' if row == 0 else 'negative'} side: share found vs marked Spearman "
              f"{spearmanr(found[side, row], marked[side, row])[0]:.2f} (mean {found[side, row].mean():.3f} vs {marked[side, row].mean():.3f}); "
              f"found vs |asked valence| {spearmanr(found[side, row], np.abs(asked[side]))[0]:.2f}, marked vs |asked| {spearmanr(marked[side, row], np.abs(asked[side]))[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
