"""`moodmusic evaluate folder DIR`: the classifier's report on a folder of audio a user brings.

For example a game's soundtrack: what each file sounds like (valence, arousal, quadrant, the Analyst-Interpreter paper's moods,
optionally a narration), and how the whole set spreads over the mood square (which quadrants it covers,
which it lacks). Writes <out>/folder.csv (one row a file), folder.json, folder.md and folder_mood_square.png.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from moodmusic.mood import QUADRANTS, SEED000_MOODS

CSV_COLUMNS = ("file", "seconds", "valence", "arousal", "quadrant", "primary_mood",
               *(f"p_{q}" for q in QUADRANTS), *(f"mood_{m}" for m in SEED000_MOODS), "narrative", "error")  # fmt: skip


@dataclass(frozen=True)
class FolderConfig:
    """The options of `moodmusic evaluate folder`."""

    recursive: bool = True
    narrate: bool = False  # the narration of each file (template narrator unless one is configured)
    max_seconds: float | None = None  # analyse only the start of longer files (None: all of each file)
    progress: bool = True


def audio_files(folder: Path, recursive: bool = True) -> list[Path]:
    from moodmusic.corpus.loaders import AUDIO_SUFFIXES

    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in candidates if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def analyse_files(classifier, files: list[Path], root: Path, config: FolderConfig, narrator=None) -> list[dict]:
    """One row per file; a file that does not decode gets a row with its error instead of stopping the report."""
    from tqdm import tqdm

    from moodmusic.audio import AudioDecodeError, load_audio

    rows = []
    for path in tqdm(files, desc="analysing", unit="file", disable=not config.progress, file=sys.stderr):
        row: dict = {"file": str(path.relative_to(root))}
        try:
            analysis = classifier.analyze(load_audio(path, max_seconds=config.max_seconds))
        except AudioDecodeError as error:
            rows.append(row | {"error": str(error)})
            continue
        overall = analysis.overall
        row.update(
            seconds=round(analysis.duration, 3), valence=overall.valence, arousal=overall.arousal, quadrant=analysis.quadrant,
            primary_mood=overall.primary_mood, **{f"p_{q}": overall.quadrants[q] for q in QUADRANTS},
            **{f"mood_{m}": overall.moods[m] for m in SEED000_MOODS},
        )  # fmt: skip
        if config.narrate:
            from moodmusic.narrator import narrate

            row["narrative"] = narrate(analysis, seed=len(rows), narrator=narrator).narrative
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Quadrant and primary-mood shares, and the spread of the set over the mood square."""
    analysed = [r for r in rows if "error" not in r]
    summary: dict = {"files": len(rows), "analysed": len(analysed), "failed": len(rows) - len(analysed)}
    if not analysed:
        return summary
    points = np.array([[r["valence"], r["arousal"]] for r in analysed])
    summary.update(
        quadrant_shares={q: sum(r["quadrant"] == q for r in analysed) / len(analysed) for q in QUADRANTS},
        primary_mood_shares={m: sum(r["primary_mood"] == m for r in analysed) / len(analysed) for m in SEED000_MOODS},
        valence={"mean": float(points[:, 0].mean()), "std": float(points[:, 0].std()), "min": float(points[:, 0].min()), "max": float(points[:, 0].max())},
        arousal={"mean": float(points[:, 1].mean()), "std": float(points[:, 1].std()), "min": float(points[:, 1].min()), "max": float(points[:, 1].max())},
        total_seconds=float(sum(r["seconds"] for r in analysed)),
    )
    return summary


def evaluate_folder(classifier, folder: str | Path, config: FolderConfig | None = None, narrator=None) -> dict:
    """The report (JSON-ready dict) for every audio file under `folder`, analysed by a loaded MoodClassifier."""
    folder = Path(folder)
    config = config or FolderConfig()
    if not folder.is_dir():
        raise SystemExit(f"{folder}: not a folder")
    files = audio_files(folder, config.recursive)
    if not files:
        raise SystemExit(f"{folder}: no audio files (.wav, .flac, .ogg, .mp3)")
    rows = analyse_files(classifier, files, folder, config, narrator)
    return {
        "folder": str(folder), "date": datetime.date.today().isoformat(), "classifier": classifier.version,
        "config": asdict(config), "summary": summarise(rows), "files": rows,
    }  # fmt: skip


def markdown(report: dict, image: str | None) -> str:
    summary = report["summary"]
    lines = [
        f"# Mood report: `{report['folder']}`",
        "",
        f"{summary['analysed']} of {summary['files']} audio files analysed by the classifier (version `{report['classifier']}`) on {report['date']}"
        + (f"; {summary['failed']} could not be decoded." if summary["failed"] else "."),
        "",
    ]
    if summary["analysed"]:
        lines += [
            f"{summary['total_seconds'] / 60:.1f} minutes of audio. Valence {summary['valence']['mean']:+.2f} ± {summary['valence']['std']:.2f} "
            f"(from {summary['valence']['min']:+.2f} to {summary['valence']['max']:+.2f}), arousal {summary['arousal']['mean']:+.2f} ± "
            f"{summary['arousal']['std']:.2f} (from {summary['arousal']['min']:+.2f} to {summary['arousal']['max']:+.2f}).",
            "",
            "| quadrant | share |",
            "|---|---|",
            *(f"| {q} | {share:.0%} |" for q, share in summary["quadrant_shares"].items()),
            "",
            "| primary mood | share |",
            "|---|---|",
            *(f"| {m} | {share:.0%} |" for m, share in summary["primary_mood_shares"].items()),
            "",
        ]
    if image:
        lines += [f"![the files on the mood square]({image})", ""]
    lines += ["| file | seconds | valence | arousal | quadrant | primary mood |", "|---|---|---|---|---|---|"]
    for row in report["files"]:
        if "error" in row:
            lines.append(f"| {row['file']} | | | | not decoded | {row['error']} |")
        else:
            lines.append(f"| {row['file']} | {row['seconds']:.1f} | {row['valence']:+.2f} | {row['arousal']:+.2f} | {row['quadrant']} | {row['primary_mood']} |")
    lines.append("")
    return "\n".join(lines)


def write_report(report: dict, out: Path, prefix: str = "folder") -> None:
    from moodmusic.plots import plot_mood_square

    out.mkdir(parents=True, exist_ok=True)
    analysed = [r for r in report["files"] if "error" not in r]
    image = None
    if analysed:
        image = f"{prefix}_mood_square.png"
        points = np.array([[r["valence"], r["arousal"]] for r in analysed])
        plot_mood_square(points, [Path(r["file"]).stem for r in analysed], f"{report['folder']}: {len(analysed)} files", out / image)
    with open(out / f"{prefix}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(report["files"])
    (out / f"{prefix}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{prefix}.md").write_text(markdown(report, image))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a folder of audio files (.wav, .flac, .ogg, .mp3), searched recursively")
    parser.add_argument("--out", help="where folder.md/.csv/.json and the image go (default: runs/folder-<name>)")
    parser.add_argument("--no-recursive", action="store_true", help="only the files directly in the folder")
    parser.add_argument("--narrate", action="store_true", help="add each file's narration to the report")
    parser.add_argument("--max-seconds", type=float, help="analyse only the first seconds of each file")
    parser.add_argument("--checkpoints", help="a checkpoints folder whose classifier/ is used (default: the shipped one)")


def run(args: argparse.Namespace) -> int:
    from moodmusic import classifier as classifier_stage
    folder = Path(args.folder)
    out = Path(args.out or f"runs/folder-{folder.resolve().name}")
    model = classifier_stage.load(Path(args.checkpoints) / "classifier" if args.checkpoints else None)
    config = FolderConfig(recursive=not args.no_recursive, narrate=args.narrate, max_seconds=args.max_seconds)
    report = evaluate_folder(model, folder, config)
    write_report(report, out)
    shares = report["summary"].get("quadrant_shares", {})
    print(", ".join(f"{q} {s:.0%}" for q, s in shares.items()) or "no file could be analysed")
    print(f"wrote {out / 'folder.md'}")
    return 0 if report["summary"]["analysed"] else 1
