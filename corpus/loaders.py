"""Labelled audio from the places it comes from, as one list of `LabelledClip`.

- our own corpus (`manifest.csv` written by `moodmusic corpus build`);
- DEAM in its published layout: `MEMD_audio/<song_id>.mp3` and the song-level static
  annotations `static_annotations_averaged_songs_*.csv` (valence_mean, arousal_mean on 1..9);
- a CSV manifest a user writes: `path,valence,arousal` (paths relative to the CSV);
- a folder per quadrant: `happy/`, `angry/` (or `tense/`), `sad/`, `calm/` (or `relaxed/`);
- the real-music set (`index.csv` written by `moodmusic corpus real`): weak labels, the sign of each
  dimension that a track's use in its game implies.

Where a source has no split of its own, `split_of` assigns 80/10/10 from a hash of the item's
source, so the same file always lands in the same split.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from moodmusic.mood import NAMED_MOODS, QUADRANTS, from_deam, from_unit

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
QUADRANT_FOLDERS = {"happy": "happy", "angry": "angry", "tense": "angry", "sad": "sad", "calm": "calm", "relaxed": "calm"}
SCALES = {"signed": float, "unit": from_unit, "deam": from_deam}


class DatasetError(ValueError):
    """A data folder or manifest that does not have the expected layout; the message says which."""


@dataclass(frozen=True)
class LabelledClip:
    """One labelled audio file from any of the sources above, with its mood label and split: what the
    classifier trains and is tested on."""

    audio: Path
    valence: float
    arousal: float
    source: str  # the piece or song: clips of one source always share a split
    split: str  # "train", "val" or "test"
    mel: Path | None = None  # precomputed log-mel (our corpus), else computed from the audio
    quadrant_only: bool = False  # the label is a quadrant, not a measured point
    cue_tracks: Path | None = None  # where the graded valence cues sound (our corpus: corpus.render.cue_tracks)
    # A weak label (the real-music set, corpus/real.py): only the sign of each dimension is known, 0 where unknown.
    weak: bool = False
    label: str = ""  # the weak label's name (battle, peaceful, ...)


def split_of(source: str, shares: tuple[float, float] = (0.8, 0.9)) -> str:
    fraction = int(hashlib.sha256(source.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "train" if fraction < shares[0] else "val" if fraction < shares[1] else "test"


def _check_point(valence: float, arousal: float, where: str) -> tuple[float, float]:
    if not (-1.0 <= valence <= 1.0 and -1.0 <= arousal <= 1.0):
        raise DatasetError(f"{where}: valence {valence} / arousal {arousal} outside [-1, 1]; pass the right scale (signed, unit or deam)")
    return valence, arousal


def corpus_manifest(folder: Path) -> Path:
    """A corpus folder's manifest.csv, or the error that says how to make one."""
    manifest = Path(folder) / "manifest.csv"
    if not manifest.exists():
        raise DatasetError(f"{folder} has no manifest.csv; build one with `moodmusic corpus build --out {folder}`")
    return manifest


def load_corpus(folder: Path) -> list[LabelledClip]:
    folder = Path(folder)
    with open(corpus_manifest(folder)) as f:
        return [
            LabelledClip(
                audio=folder / row["audio"], valence=float(row["valence"]), arousal=float(row["arousal"]),
                source=row["source"], split=row["split"], mel=folder / row["mel"] if row.get("mel") else None,
                cue_tracks=folder / row["cue_tracks"] if row.get("cue_tracks") else None,
            )  # fmt: skip
            for row in csv.DictReader(f)
        ]


def load_real(folder: Path) -> list[LabelledClip]:
    """The real-music set (`moodmusic corpus real`): weak labels, split by track."""
    folder = Path(folder)
    with open(folder / "index.csv", newline="") as f:
        return [
            LabelledClip(
                audio=folder / row["audio"], valence=float(row["valence"]), arousal=float(row["arousal"]), source=row["track"],
                split=row["split"], weak=True, label=row["label"],
            )  # fmt: skip
            for row in csv.DictReader(f)
        ]


def _find_audio(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES}


def load_deam(folder: Path) -> list[LabelledClip]:
    folder = Path(folder)
    annotation_files = sorted(folder.rglob("static_annotations_averaged_songs_*.csv"))
    if not annotation_files:
        raise DatasetError(f"{folder}: no static_annotations_averaged_songs_*.csv found (DEAM's song-level annotations)")
    audio = _find_audio(folder)
    clips = []
    for annotations in annotation_files:
        with open(annotations, newline="") as f:
            reader = csv.DictReader(f, skipinitialspace=True)  # DEAM's first file has ", " separators
            for row in reader:
                row = {k.strip(): v for k, v in row.items() if k}
                song = row["song_id"].strip()
                if song not in audio:
                    continue
                valence, arousal = _check_point(from_deam(row["valence_mean"]), from_deam(row["arousal_mean"]), str(annotations))
                clips.append(LabelledClip(audio[song], valence, arousal, f"deam/{song}", split_of(f"deam/{song}")))
    if not clips:
        raise DatasetError(f"{folder}: annotations found but no audio file named <song_id>.mp3/.wav beside them")
    return clips


def load_csv_manifest(path: Path, scale: str = "signed") -> list[LabelledClip]:
    path = Path(path)
    if scale not in SCALES:
        raise DatasetError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    convert = SCALES[scale]
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"path", "valence", "arousal"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected path,valence,arousal")
        clips = []
        for line, row in enumerate(reader, start=2):
            audio = (path.parent / row["path"]).resolve()
            if not audio.exists():
                raise DatasetError(f"{path}:{line}: {row['path']} does not exist")
            valence, arousal = _check_point(convert(row["valence"]), convert(row["arousal"]), f"{path}:{line}")
            clips.append(LabelledClip(audio, valence, arousal, row["path"], row.get("split") or split_of(row["path"])))
    return clips


def load_quadrant_folders(folder: Path) -> list[LabelledClip]:
    folder = Path(folder)
    clips = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        quadrant = QUADRANT_FOLDERS.get(sub.name.lower())
        if quadrant is None:
            continue
        valence, arousal = NAMED_MOODS[quadrant]
        for audio in sorted(p for p in sub.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            source = f"{sub.name}/{audio.relative_to(sub)}"
            clips.append(LabelledClip(audio, valence, arousal, source, split_of(source), quadrant_only=True))
    if not clips:
        raise DatasetError(f"{folder}: no audio in folders named {', '.join(QUADRANT_FOLDERS)}")
    return clips


def load_any(path: Path, scale: str = "signed") -> list[LabelledClip]:
    """Recognise the layout: our corpus, a CSV manifest, DEAM, or quadrant folders."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_csv_manifest(path, scale)
    if not path.is_dir():
        raise DatasetError(f"{path}: neither a folder nor a .csv manifest")
    if (path / "manifest.csv").exists():
        return load_corpus(path)
    if (path / "index.csv").exists():
        return load_real(path)
    if any(path.rglob("static_annotations_averaged_songs_*.csv")):
        return load_deam(path)
    if any(p.is_dir() and p.name.lower() in QUADRANT_FOLDERS for p in path.iterdir()):
        return load_quadrant_folders(path)
    raise DatasetError(
        f"{path}: not a layout we know (corpus manifest.csv, DEAM annotations, a CSV manifest, or folders named {', '.join(QUADRANTS)})"
    )


