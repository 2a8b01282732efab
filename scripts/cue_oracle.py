"""How low a valence MAE the corpus allows: the score of a listener who hears its cues perfectly.

Our corpus says the sign of valence with the mode and its size with two graded cues (corpus/cues.py):
the share of melody notes doubled a third above (v >= 0) and the share of beats with an added semitone
(v < 0), each |v| plus a uniform jitter of +-0.1. An ear cannot do better than a listener who knows the
mode and exactly where the cue notes sound. This script builds that listener from the cue tracks
(`corpus.render.cue_tracks`: per log-mel frame, whether a cue note sounds): its feature is the share of
frames in which the cue of the clip's mode sounds; an isotonic (monotone) fit from the train split maps it
to |valence|; the mode gives the sign. It prints that listener's valence MAE per split and sign, the
floor under any ear trained on the corpus (up to what the frame share loses against counting notes).

    python scripts/cue_oracle.py --corpus data/corpus-v3
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from corpus.cues import CUE_TRACKS


def cue_share(folder: Path, row: dict) -> float:
    """Share of the clip's frames in which the cue of its mode (doubling if major, dissonance if minor) sounds."""
    tracks = np.load(folder / row["cue_tracks"])
    cue = "consonant_doubling" if row["mode"] == "major" else "dissonance"
    return float(tracks[CUE_TRACKS.index(cue)].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus", help="a corpus folder with cue tracks (moodmusic corpus annotate adds them)")
    args = parser.parse_args()
    folder = Path(args.corpus)
    rows = list(csv.DictReader(open(folder / "manifest.csv")))
    if not rows or not rows[0].get("cue_tracks"):
        raise SystemExit(f"{folder} has no cue tracks: run `moodmusic corpus annotate --corpus {folder}` first")
    split = np.array([row["split"] for row in rows])
    major = np.array([row["mode"] == "major" for row in rows])
    valence = np.array([float(row["valence"]) for row in rows])
    share = np.array([cue_share(folder, row) for row in rows])

    size = np.zeros(len(rows))
    for side in (True, False):  # one monotone map per cue, fitted on the train split only
        fit = (split == "train") & (major == side)
        mapping = IsotonicRegression(out_of_bounds="clip").fit(share[fit], np.abs(valence[fit]))
        size[major == side] = mapping.predict(share[major == side])
    heard = np.where(major, size, -size)
    errors = np.abs(heard - valence)

    print(f"a listener who knows the mode and where the cue notes sound, on {folder} (fitted on the train split)")
    print("split  clips  valence MAE  positive (size)  negative (size)")
    for name in ("train", "val", "test"):
        here = split == name
        if here.any():
            print(f"{name:<6} {here.sum():>5}  {errors[here].mean():>11.3f}  {errors[here & major].mean():>15.3f}  {errors[here & ~major].mean():>15.3f}")


if __name__ == "__main__":
    main()
