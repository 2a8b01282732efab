"""How audible the corpus's consonant doubling (cues v2) is to hand-made measures.

The doubling adds a diatonic third above a share of the melody notes, and that share is the only
audible carrier of the *size* of positive valence. If "the two highest sounding semitones of a frame
lie a third apart" were its mark, measures built on it would follow the share. This computes, for
the positive-valence clips of a corpus, measures of the two highest spectral peaks of each frame:
the histogram of their gap (1..12 semitones, 13 = wider), the level of the lower peak against the
upper when they are a third apart and otherwise, the share of frames with a third whose peaks are
within 6 dB, the share of top-note changes that land on a third, the share of top notes held over a
third, and the share of consecutive top notes both over a third (parallel motion). It prints each
measure's Spearman correlation with the doubling share, the same per collection for the "within 6 dB"
measure, and a ridge regression from all of them to valence, fitted on the train split and scored on
val and test (MAE and Spearman; a constant 0.5 for scale).

`--salience` runs the same on a harmonic-sum pitch salience (each semitone plus its partials 2..5)
instead of the raw semitone spectrum, so that a note's own partials (its octave, and its 4th and 5th
partials, a major third apart) count less as "notes".

    python research/doubling_audibility.py --corpus data/corpus [--salience] [--clips N]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from tqdm import tqdm

from moodmusic.classifier.features import semitone_spectrum, spectral_peaks
from moodmusic.audio import load_audio

PEAK_LEVEL = 0.1  # of the frame's loudest semitone (energy): 10 dB down
SALIENCE_PEAK_LEVEL = 0.3  # of the frame's most salient semitone (amplitude sum)
PARTIAL_OFFSETS, PARTIAL_WEIGHTS = (0, 12, 19, 24, 28), (1.0, 0.8, 0.64, 0.51, 0.41)
MEASURES = [f"gap {g}" for g in range(1, 13)] + ["gap > 12", "level of a third's lower peak (dB)", "level of other lower peaks (dB)",
            "third within 6 dB", "third after a top-note change", "top notes held over a third", "parallel thirds"]  # fmt: skip


def salience(scaled: np.ndarray) -> np.ndarray:
    """(72, T) semitone energies -> harmonic-sum salience (amplitudes of partials 1..5, decaying weights), max 1 per frame."""
    amplitude = np.sqrt(scaled)
    summed = np.zeros_like(amplitude)
    for offset, weight in zip(PARTIAL_OFFSETS, PARTIAL_WEIGHTS):
        summed[: amplitude.shape[0] - offset] += weight * amplitude[offset:]
    return summed / (summed.max(axis=0, keepdims=True) + 1e-9)


def measures(samples: np.ndarray, use_salience: bool) -> np.ndarray:
    scaled = semitone_spectrum(samples).numpy()
    if use_salience:
        scaled = salience(scaled)
    peaks = spectral_peaks(torch.from_numpy(scaled)).numpy()
    sounding = peaks > (SALIENCE_PEAK_LEVEL if use_salience else PEAK_LEVEL)
    frames = sounding.shape[1]
    gaps, lower_db, tops = np.zeros(frames, int), np.full(frames, -40.0), np.full(frames, -1)
    for t in range(frames):
        pitches = np.flatnonzero(sounding[:, t])
        if len(pitches):
            tops[t] = pitches[-1]
        if len(pitches) >= 2:
            gaps[t] = min(pitches[-1] - pitches[-2], 13)
            lower_db[t] = 10 * np.log10(peaks[pitches[-2], t] / peaks[pitches[-1], t] + 1e-9)
    two = gaps > 0
    third = two & np.isin(gaps, (3, 4))
    histogram = [float((gaps[two] == g).mean()) if two.any() else 0.0 for g in range(1, 14)]
    changes = np.flatnonzero(np.diff(tops) != 0) + 1
    after_change = float(third[np.minimum(changes + 2, frames - 1)].mean()) if len(changes) else 0.0
    held = np.array([third[segment].mean() > 0.5 for segment in np.split(np.arange(frames), changes) if len(segment) >= 3])
    parallel = float((held[1:] & held[:-1]).mean()) if len(held) > 1 else 0.0
    return np.array(histogram + [
        lower_db[third].mean() if third.any() else -40.0,
        lower_db[two & ~third].mean() if (two & ~third).any() else -40.0,
        float((third & (lower_db > -6)).mean()), after_change, float(held.mean()) if len(held) else 0.0, parallel,
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--clips", type=int, default=0, help="a random sample of this many positive clips (default: all)")
    parser.add_argument("--salience", action="store_true", help="measure on a harmonic-sum salience instead of the semitone spectrum")
    args = parser.parse_args()
    corpus = Path(args.corpus)
    rows = [row for row in csv.DictReader(open(corpus / "manifest.csv")) if float(row["valence"]) >= 0]
    if args.clips:
        rows = [rows[i] for i in sorted(np.random.default_rng(0).choice(len(rows), size=min(args.clips, len(rows)), replace=False))]
    features = np.array([measures(load_audio(corpus / row["audio"]), args.salience) for row in tqdm(rows, desc="measuring", unit="clip")])
    doubling = np.array([float(row.get("consonant_doubling") or 0.0) for row in rows])
    valence = np.array([float(row["valence"]) for row in rows])
    splits, collections = np.array([row["split"] for row in rows]), np.array([row["collection"] for row in rows])

    print(f"{len(rows)} positive clips of {corpus}{' (salience)' if args.salience else ''}: Spearman(measure, doubling share)")
    for name, column in zip(MEASURES, features.T):
        if column.std() > 0:
            print(f"  {name:<36} {spearmanr(column, doubling)[0]:+.2f}")
    within = MEASURES.index("third within 6 dB")
    print("'third within 6 dB' per collection: " + ", ".join(
        f"{c} {spearmanr(features[collections == c, within], doubling[collections == c])[0]:+.2f} ({(collections == c).sum()})" for c in sorted(set(collections))))  # fmt: skip
    train = splits == "train"
    if train.any() and (~train).any():
        ridge = Ridge(alpha=1.0).fit(features[train], valence[train])
        for split in ("val", "test"):
            part = splits == split
            if part.any():
                heard = np.clip(ridge.predict(features[part]), 0, 1)
                print(f"ridge regression of valence from all measures, {split}: MAE {np.abs(heard - valence[part]).mean():.3f}, "
                      f"Spearman {spearmanr(heard, valence[part])[0]:.2f} (a constant 0.5: MAE {np.abs(0.5 - valence[part]).mean():.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
