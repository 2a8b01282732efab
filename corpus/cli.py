"""`moodmusic corpus build`: render the training corpus (see corpus/build.py)."""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/corpus", help="output folder (default: data/corpus)")
    parser.add_argument("--clips", type=int, default=4000, help="number of clips (default: 4000)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each clip in seconds (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the plan: same seed, same corpus")
    parser.add_argument("--soundfont", default="fluidr3", help="fluidr3, timgm6mb, musescore or a .sf2/.sf3 path")
    parser.add_argument("--workers", type=int, default=2, help="render processes (default: 2, one per core)")
    parser.add_argument("--only-split", choices=("train", "val", "test"), default="", help="render only this split of the plan (same pieces, moods and cues)")
    parser.add_argument("--cues", choices=("v1", "v2", "v3"), default="v2", help="cue table version (corpus/cues.py; default v2; v1 rebuilds the corpus of the models shipped before it; v3 takes the doubling's thirds in the performed key)")
    parser.add_argument("--clips-per-piece", type=int, default=0, help="clips cut from each score (default: by corpus size, at most 8)")


def run(args: argparse.Namespace) -> int:
    from moodmusic.corpus.build import BuildConfig, build, summary

    if args.clips < 1 or args.seconds <= 0:
        raise SystemExit("--clips must be at least 1 and --seconds positive")
    config = BuildConfig(
        out=args.out, clips=args.clips, seconds=args.seconds, seed=args.seed,
        soundfont=args.soundfont, workers=args.workers, clips_per_piece=args.clips_per_piece, only_split=args.only_split, cues=args.cues,
    )  # fmt: skip
    started = time.perf_counter()
    rows = build(config)
    print(summary(rows))
    print(f"{len(rows)} clips in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0
