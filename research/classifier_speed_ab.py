"""Two classifiers' speed on the same 60 s of audio, interleaved in one process.

A shared machine's speed drifts between runs (docs/benchmarks.md), so what a model change costs is
measured as a ratio in one run: each repeat analyses the same audio with every classifier in turn.

    python research/classifier_speed_ab.py OLD_DIR NEW_DIR [--repeats 7]

e.g. the classifier before the semitone branch, taken from git:
    mkdir -p /tmp/old && git show b693319:checkpoints/classifier/model.safetensors > /tmp/old/model.safetensors
    git show b693319:checkpoints/classifier/config.json > /tmp/old/config.json
    python research/classifier_speed_ab.py /tmp/old checkpoints/classifier
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from moodmusic import classifier
from moodmusic.mel import SAMPLE_RATE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="classifier folders (safetensors + config.json)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    audio = np.random.default_rng(0).normal(0, 0.1, int(args.seconds * SAMPLE_RATE)).astype(np.float32)
    models = {folder: classifier.load(folder) for folder in args.folders}
    for model in models.values():  # warm-up
        model.analyze(audio[: 3 * SAMPLE_RATE])
    seconds: dict[str, list[float]] = {folder: [] for folder in models}
    for _ in range(args.repeats):
        for folder, model in models.items():
            started = time.perf_counter()
            model.analyze(audio)
            seconds[folder].append(time.perf_counter() - started)
    first = statistics.median(seconds[args.folders[0]])
    for folder, times in seconds.items():
        median = statistics.median(times)
        print(f"{folder} ({models[folder].version}): {args.seconds:.0f} s analysed in {median * 1000:.0f} ms (median of {args.repeats}), {median / first:.2f} x the first")


if __name__ == "__main__":
    main()
