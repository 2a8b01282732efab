"""The public-domain scores music21 ships, read as plain note lists.

Only the notes matter to the builder (onset and duration in quarter notes, MIDI pitch, part),
so each score is parsed once and flattened to a `Piece`; the performance (tempo, mode,
instruments...) is decided later by the mood's cues.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Collections of music21's corpus we draw from, with their share of the pieces. Large classical
# movements parse slowly (several seconds each), so they get a small share.
COLLECTIONS: dict[str, float] = {
    "bach": 0.28,  # chorales (4 voices)
    "ryansMammoth": 0.27,  # fiddle tunes (1 voice)
    "palestrina": 0.22,  # Renaissance polyphony (4-6 voices)
    "trecento": 0.07,
    "monteverdi": 0.07,
    "classical": 0.09,  # Haydn, Mozart, Beethoven, Schumann... movements
}
CLASSICAL_COMPOSERS = ("haydn", "mozart", "beethoven", "schumann_robert", "schumann_clara", "schubert", "handel", "corelli", "cpebach", "chopin", "joplin", "verdi", "weber", "beach")
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid")
MAX_CLASSICAL_BYTES = 150_000  # skip the largest movements: they take 10+ s to parse
MAX_PARTS = 5  # more voices than this are merged into the lowest kept part
MIN_NOTES = 24


@dataclass
class Piece:
    """One score flattened to note arrays (onset, duration, pitch, part): what the builder cuts excerpts from."""

    source: str  # stable id: collection/file name
    collection: str
    onsets: np.ndarray  # quarter notes, float64
    durations: np.ndarray  # quarter notes
    pitches: np.ndarray  # MIDI numbers, int
    parts: np.ndarray  # 0 = top voice ... ; int
    length: float  # quarter notes from 0 to the last release

    @property
    def n_parts(self) -> int:
        return int(self.parts.max()) + 1 if self.parts.size else 0

    def median_inter_onset(self) -> float:
        """Typical spacing of note onsets (all voices together), in quarter notes."""
        distinct = np.unique(np.round(self.onsets, 4))
        gaps = np.diff(distinct)
        gaps = gaps[gaps > 1e-3]
        return float(np.median(gaps)) if gaps.size else 1.0


def _collection_of(path: Path) -> str | None:
    parts = path.parts
    if "corpus" not in parts:
        return None
    name = parts[parts.index("corpus") + 1]
    if name in CLASSICAL_COMPOSERS:
        return "classical"
    return name if name in COLLECTIONS else None


def candidate_paths() -> dict[str, list[Path]]:
    """Score files per collection, sorted so that a seed always picks the same pieces."""
    from music21 import corpus

    by_collection: dict[str, list[Path]] = {name: [] for name in COLLECTIONS}
    for path in corpus.getCorePaths():
        path = Path(path)
        collection = _collection_of(path)
        if collection is None or path.suffix.lower() not in SCORE_SUFFIXES:
            continue
        if collection == "classical" and path.stat().st_size > MAX_CLASSICAL_BYTES:
            continue
        by_collection[collection].append(path)
    return {name: sorted(paths) for name, paths in by_collection.items()}


def source_id(path: Path) -> str:
    parts = path.parts
    return "/".join(parts[parts.index("corpus") + 1 :])


def read_piece(path: Path) -> Piece | None:
    """Parse one score to a note list; None when it cannot be parsed or has too few notes."""
    from music21 import converter, stream

    try:
        score = converter.parse(str(path))
    except Exception:
        return None
    if isinstance(score, stream.Opus):
        if not score.scores:
            return None
        score = score.scores[0]
    score_parts = list(getattr(score, "parts", [])) or [score]
    onsets, durations, pitches, voices = [], [], [], []
    for voice, part in enumerate(score_parts):
        voice = min(voice, MAX_PARTS - 1)
        try:
            notes = part.stripTies(inPlace=False).flatten().notes
        except Exception:
            notes = part.flatten().notes
        for element in notes:
            duration = float(element.quarterLength)
            if duration <= 0:  # grace notes
                continue
            offset = float(element.offset)  # within the flattened part: from the score's start
            for pitch in getattr(element, "pitches", ()):
                onsets.append(offset)
                durations.append(duration)
                pitches.append(int(round(pitch.ps)))
                voices.append(voice)
    if len(onsets) < MIN_NOTES:
        return None
    onsets_arr = np.asarray(onsets, dtype=np.float64)
    durations_arr = np.asarray(durations, dtype=np.float64)
    onsets_arr -= onsets_arr.min()
    order = np.lexsort((np.asarray(pitches), onsets_arr))
    return Piece(
        source=source_id(path),
        collection=_collection_of(path) or "other",
        onsets=onsets_arr[order],
        durations=durations_arr[order],
        pitches=np.asarray(pitches, dtype=np.int64)[order],
        parts=np.asarray(voices, dtype=np.int64)[order],
        length=float((onsets_arr + durations_arr).max()),
    )


def excerpt(piece: Piece, start: float, length: float) -> Piece:
    """The notes sounding in [start, start + length) quarter notes, shifted to start at 0.

    A piece shorter than the window is looped, so every excerpt is filled with music.
    """
    repeats = int(np.ceil((start + length) / piece.length)) + 1
    shifts = np.repeat(np.arange(repeats) * piece.length, piece.onsets.size)
    onsets = np.tile(piece.onsets, repeats) + shifts
    durations = np.tile(piece.durations, repeats)
    keep = (onsets < start + length) & (onsets + durations > start)
    onsets, durations = onsets[keep] - start, durations[keep]
    begins = np.maximum(onsets, 0.0)
    ends = np.minimum(onsets + durations, length)
    return Piece(
        source=piece.source,
        collection=piece.collection,
        onsets=begins,
        durations=ends - begins,
        pitches=np.tile(piece.pitches, repeats)[keep],
        parts=np.tile(piece.parts, repeats)[keep],
        length=length,
    )
