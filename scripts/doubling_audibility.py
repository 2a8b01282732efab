"""How audible the corpus's consonant doubling (cues v2) is to a hand-made measure.

The doubling adds a diatonic third above some melody notes. If the two highest sounding semitones
of a frame a third apart were its mark, the share of such frames would follow the doubling's share.
This prints the Spearman correlation between the two over positive-valence clips of a split (and
between the measure and valence): a low value says the mark is common without the doubling too
(in chorales the alto often sits a third below the soprano).

    python scripts/doubling_audibility.py --corpus data/corpus --clips 150
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from classifier.features import spectral_peaks, semitone_spectrum
from moodmusic.audio import load_audio

PEAK_LEVEL = 0.1  # of the frame's loudest semitone (energy): 10 dB down


def top_third_share(samples: np.ndarray) -> float:
    """Share of frames with at least two semitone peaks whose two highest lie 3 or 4 semitones apart."""
    peaks = spectral_peaks(semitone_spectrum(samples)).numpy() > PEAK_LEVEL
    gaps = [np.diff(np.flatnonzero(frame))[-1] for frame in peaks.T if frame.sum() >= 2]
    return float(np.isin(gaps, (3, 4)).mean()) if gaps else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--split", default="train")
    parser.add_argument("--clips", type=int, default=150)
    args = parser.parse_args()
    corpus = Path(args.corpus)
    rows = [row for row in csv.DictReader(open(corpus / "manifest.csv")) if row["split"] == args.split and float(row["valence"]) >= 0]
    picks = np.random.default_rng(0).choice(len(rows), size=min(args.clips, len(rows)), replace=False)
    rows = [rows[i] for i in picks]
    measure = [top_third_share(load_audio(corpus / row["audio"])) for row in rows]
    doubling = [float(row.get("consonant_doubling") or 0.0) for row in rows]
    valence = [float(row["valence"]) for row in rows]
    print(f"{len(rows)} positive {args.split} clips of {corpus}: Spearman(top-third share, doubling share) "
          f"{spearmanr(measure, doubling)[0]:.2f}, Spearman(top-third share, valence) {spearmanr(measure, valence)[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
