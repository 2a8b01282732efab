"""How much of valence's size the corpus's recorded cues carry: a ceiling for any listener.

A gradient-boosted regression (absolute loss) learns valence from every cue value the manifest records
for a clip (tempo, velocity, articulation, transpose, reverb, expression, drums, pulse density, timbre
pool, beat subdivision, on-beat-only, and under cues v2 the consonant doubling and dissonance shares)
plus the clip's exact arousal, on the train split; its valence MAE on the test split is what a listener
who heard every performance parameter perfectly would reach. "Mode given" fits one regression per mode,
as a listener who always hears the mode right would.

The manifest records the shares a clip was *planned* with; where the corpus has cue tracks
(`corpus.render.cue_tracks`, per log-mel frame whether a cue note sounds) a third fit replaces them with
the share of frames in which each cue actually sounds: what an ear can hear. The two differ where the
renderer did not write what was planned (cues v2 doubled 60% of its planned share, docs/corpus.md).

    python research/valence_ceiling.py --corpus data/corpus
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

NUMERIC = ("tempo_bpm", "velocity", "articulation", "transpose", "reverb", "expression", "drums", "accompaniment_per_beat", "notes_per_beat")
FLAGS = ("bright_timbre", "on_beat_only")
GRADED_V2 = ("consonant_doubling", "dissonance")


def features(row: dict, graded: str, folder: Path) -> list[float]:
    """The clip's recorded cues and arousal; graded: "" (none), "planned" (the manifest's shares) or "sounding" (its cue tracks)."""
    values = [float(row[name]) for name in NUMERIC] + [float(row[name] == "True") for name in FLAGS] + [float(row["arousal"])]
    if graded == "planned":
        values += [float(row[name] or 0.0) for name in GRADED_V2]
    elif graded == "sounding":
        values += [float(share) for share in np.load(folder / row["cue_tracks"]).mean(axis=1)]  # one row per CUE_TRACKS name
    return values


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, learning_rate=0.05, random_state=0)
    return model.fit(train_x, train_y).predict(test_x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus")
    args = parser.parse_args()
    folder = Path(args.corpus)
    rows = list(csv.DictReader(open(folder / "manifest.csv")))
    has_graded = any(row.get("dissonance") for row in rows)
    has_tracks = all(row.get("cue_tracks") for row in rows)
    split = {name: [row for row in rows if row["split"] == name] for name in ("train", "test")}
    valence = {name: np.array([float(row["valence"]) for row in split[name]]) for name in split}
    major = {name: np.array([row["mode"] == "major" for row in split[name]]) for name in split}
    print(f"{args.corpus}: {len(split['train'])} train, {len(split['test'])} test clips")
    kinds = [""] + (["planned"] if has_graded else []) + (["sounding"] if has_graded and has_tracks else [])
    labels = {"": "v1 cues", "planned": "with the v2 shares as planned", "sounding": "with the shares as they sound (cue tracks)"}
    for graded in kinds:
        x = {name: np.array([features(row, graded, folder) for row in split[name]]) for name in split}
        label = labels[graded]
        blind = fit_predict(x["train"], valence["train"], x["test"])
        given = np.zeros_like(valence["test"])
        for mode in (True, False):
            given[major["test"] == mode] = fit_predict(x["train"][major["train"] == mode], valence["train"][major["train"] == mode], x["test"][major["test"] == mode])
        print(f"{label}: test valence MAE {np.abs(given - valence['test']).mean():.3f} (mode given), {np.abs(blind - valence['test']).mean():.3f} (mode not given)")
    print(f"constant 0.5 x sign of valence: {np.abs(np.abs(valence['test']) - 0.5).mean():.3f}")


if __name__ == "__main__":
    main()
