"""`moodmusic corpus annotate`: add cue tracks to a corpus built before they existed (corpus/build.py).

The plan is fixed by the build's seed, so every clip is arranged again exactly as it was built (only the
slow FluidSynth rendering is skipped) and its cue tracks written; a clip that does not come out as the
manifest recorded it stops the command. Builds made now write their cue tracks as they render.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="data/corpus", help="corpus folder (default: data/corpus)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default: 2, one per core)")


def run(args: argparse.Namespace) -> int:
    from moodmusic.corpus.build import annotate

    started = time.perf_counter()
    clips = annotate(Path(args.corpus), args.workers)
    print(f"cue tracks written for {clips} clips of {args.corpus} ({time.perf_counter() - started:.0f} s)")
    return 0
