"""`moodmusic corpus check`: are the corpus labels audible to an analysis that never sees them?

For each clip the independent acoustic judge (moodmusic/acoustic.py) measures tempo, onset
rate, loudness and a major/minor estimate; we then correlate them with the labels. Targets
(the corpus audibility targets): Spearman(arousal, tempo) and Spearman(arousal, loudness) >= 0.5, and the mode
estimate agrees with the sign of valence on >= 75% of clips.
"""

from __future__ import annotations

import argparse
import csv
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TARGETS = {"spearman_arousal_tempo": 0.5, "spearman_arousal_rms": 0.5, "mode_agreement": 0.75}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="data/corpus", help="corpus folder (default: data/corpus)")
    parser.add_argument("--limit", type=int, default=0, help="analyse only a random sample of this many clips (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default="", help="also write the results as JSON here")


def _features(path: str) -> dict:
    import soundfile

    from moodmusic.acoustic import acoustic_features

    samples, rate = soundfile.read(path, dtype="float32")
    return acoustic_features(samples, rate).as_dict()


def check(corpus: Path, limit: int = 0, workers: int = 2) -> dict:
    from scipy.stats import spearmanr
    from tqdm import tqdm

    from moodmusic.acoustic import warm_up

    with open(corpus / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    if limit and limit < len(rows):  # a seeded random sample: evenly spaced ids would all share a quadrant
        rows = [rows[int(i)] for i in sorted(np.random.default_rng(0).choice(len(rows), size=limit, replace=False))]
    warm_up()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        features = list(tqdm(pool.map(_features, [str(corpus / r["audio"]) for r in rows], chunksize=8), total=len(rows), desc="analysing"))
    valence = np.array([float(r["valence"]) for r in rows])
    arousal = np.array([float(r["arousal"]) for r in rows])
    column = {name: np.array([f[name] for f in features]) for name in ("tempo_bpm", "onset_rate", "rms_db", "centroid_hz")}
    minor = np.array([f["mode"] == "minor" for f in features])
    results = {
        "clips": len(rows),
        "spearman_arousal_tempo": float(spearmanr(arousal, column["tempo_bpm"]).statistic),
        "spearman_arousal_onset_rate": float(spearmanr(arousal, column["onset_rate"]).statistic),
        "spearman_arousal_rms": float(spearmanr(arousal, column["rms_db"]).statistic),
        "spearman_arousal_centroid": float(spearmanr(arousal, column["centroid_hz"]).statistic),
        "spearman_valence_centroid": float(spearmanr(valence, column["centroid_hz"]).statistic),
        "mode_agreement": float(np.mean(minor == (valence < 0))),
        "mode_agreement_by_quadrant": {
            q: float(np.mean((minor == (valence < 0))[[r["quadrant"] == q for r in rows]])) for q in ("happy", "angry", "sad", "calm")
        },
    }
    results["passed"] = {name: results[name] >= target for name, target in TARGETS.items()}
    return results


def run(args: argparse.Namespace) -> int:
    results = check(Path(args.corpus), args.limit, args.workers)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(results["passed"].values()) else 1
