"""`moodmusic analyze FILE|FOLDER...`: the classifier's analysis as JSON or CSV."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from moodmusic.corpus.loaders import AUDIO_SUFFIXES

CSV_COLUMNS = ["file", "duration", "loudness_lufs", "valence", "arousal", "quadrant", "primary_mood", "happy", "angry", "sad", "calm", "chill", "energy", "emotion", "upbeat"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", help="audio files (wav, flac, ogg, mp3) or folders of them")
    parser.add_argument("--format", choices=("json", "csv"), default="json")
    parser.add_argument("--output", "-o", default="-", help="file to write (default: standard output)")
    parser.add_argument("--no-timeline", action="store_true", help="leave the per-window timeline out of the JSON")
    parser.add_argument("--embedding", action="store_true", help="include the embedding vector in the JSON")
    parser.add_argument("--checkpoint", default=None, help="classifier folder (default: the shipped checkpoints/classifier)")


def expand(paths: list[str]) -> list[Path]:
    files = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(path)
    return files


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from moodmusic import classifier
    from moodmusic.audio import AudioDecodeError

    model = classifier.load(args.checkpoint)
    files = expand(args.paths)
    if not files:
        raise SystemExit("no audio files found in " + ", ".join(args.paths))
    results, failures = [], 0
    for path in tqdm(files, desc="analysing", unit="file", disable=len(files) < 2):
        try:
            analysis = model.analyze(path)
        except AudioDecodeError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        data = analysis.as_dict()
        if args.no_timeline:
            data.pop("timeline")
        if not args.embedding:
            data.pop("embedding")
        results.append({"file": str(path), **data})

    out = sys.stdout if args.output == "-" else open(args.output, "w", newline="")
    try:
        if args.format == "json":
            json.dump(results[0] if len(results) == 1 and len(files) == 1 else results, out, indent=2)
            out.write("\n")
        else:
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for r in results:
                overall = r["overall"]
                writer.writerow({
                    "file": r["file"], "duration": round(r["duration"], 3),
                    "loudness_lufs": "" if r.get("loudness_lufs") is None else round(r["loudness_lufs"], 2), "valence": round(overall["valence"], 4),
                    "arousal": round(overall["arousal"], 4), "quadrant": r["quadrant"], "primary_mood": r["primary_mood"],
                    **{q: round(p, 4) for q, p in overall["quadrants"].items()}, **{m: round(w, 4) for m, w in overall["moods"].items()},
                })  # fmt: skip
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failures else 0
