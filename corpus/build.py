"""Build the mood-labelled corpus: plan, render in parallel, write clips, mels and a manifest.

The plan is fixed by the seed before any rendering: which pieces, which window of each, which
mood per clip and every random cue. Each piece is a task rendered by one worker; a finished
task leaves `rows/<task>.json`, so an interrupted build resumes where it stopped and produces
the same corpus as an uninterrupted one.

Layout of the output folder:
    manifest.csv            one row a clip (see MANIFEST_COLUMNS)
    audio/<id>.wav          mono 16-bit PCM at 22,050 Hz
    mel/<id>.npy            float16 log-mel, shape (80, frames) (docs/conventions.md)
    cue_tracks/<id>.npy     uint8 (2, frames): where a note of a graded valence cue sounds (corpus.render.cue_tracks)
    rows/<task>.json        a finished task's manifest rows (resume bookkeeping)
    build.json              the build's arguments
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from moodmusic.mood import QUADRANTS, quadrant

SPLITS = ("train", "val", "test")
SPLIT_SHARES = (0.8, 0.1, 0.1)
CANDIDATES_PER_TASK = 4  # a task falls back to its next candidate when a score does not parse
MANIFEST_COLUMNS = [
    "id", "source", "collection", "split", "valence", "arousal", "quadrant", "seconds",
    "audio", "mel", "cue_tracks", "soundfont", "start_quarter", "bpm", "source_key", "performed_key",
    "mode", "tempo_bpm", "notes_per_beat", "on_beat_only", "velocity", "expression", "velocity_spread", "beat_accent", "articulation",
    "transpose", "bright_timbre", "melody_program", "accompaniment_program", "pulse_program", "accompaniment_per_beat",
    "drums", "reverb", "consonant_doubling", "dissonance", "rms_db",
]  # fmt: skip


@dataclass(frozen=True)
class BuildConfig:
    """The arguments of a corpus build (`moodmusic corpus build`); saved as build.json in the output folder."""

    out: str = "data/corpus"
    clips: int = 4000
    seconds: float = 8.0
    seed: int = 0
    soundfont: str = "fluidr3"
    workers: int = 2
    clips_per_piece: int = 0  # 0: choose from the corpus size (8 for large builds, fewer for small ones)
    only_split: str = ""  # render only this split of the plan (e.g. the test split in another soundfont)
    cues: str = "v2"  # the cue table's version (corpus/cues.py); v1 is the corpus of the models shipped before v2

    def per_piece(self) -> int:
        if self.clips_per_piece:
            return self.clips_per_piece
        return int(min(8, max(1, self.clips // 10)))


@dataclass(frozen=True)
class ClipPlan:
    """One planned clip: its id and the mood it is rendered for."""

    id: str
    valence: float
    arousal: float


@dataclass(frozen=True)
class Task:
    """One piece's share of the plan, rendered by one worker: the split, the score files to try and the clips to cut."""

    index: int
    split: str
    candidates: tuple[str, ...]  # score paths, tried in order
    clips: tuple[ClipPlan, ...]


def split_for(slot: int, n_slots: int, seed: int) -> str:
    """80/10/10 over piece slots; the order is a seeded permutation so splits mix collections."""
    order = np.random.default_rng([seed, 7]).permutation(n_slots)
    rank = int(np.where(order == slot)[0][0])
    bounds = np.cumsum(SPLIT_SHARES) * n_slots
    if n_slots >= 3:  # every split gets at least one piece
        bounds = np.maximum(np.round(bounds).astype(int), [1, 2, 3])
    return SPLITS[int(np.searchsorted(bounds, rank, side="right"))]


def draw_mood(clip_index: int, rng: np.random.Generator) -> tuple[float, float]:
    """Uniform over the quadrant `clip_index % 4`, so quadrants stay balanced and the square covered."""
    signs = {"happy": (1, 1), "angry": (-1, 1), "sad": (-1, -1), "calm": (1, -1)}[QUADRANTS[clip_index % 4]]
    valence, arousal = rng.uniform(0, 1, size=2) * signs
    # Zero belongs to the positive side (docs/conventions.md); keep negative draws strictly negative.
    return float(valence if signs[0] > 0 else min(valence, -1e-3)), float(arousal if signs[1] > 0 else min(arousal, -1e-3))


def plan(config: BuildConfig) -> list[Task]:
    from moodmusic.corpus.scores import COLLECTIONS, candidate_paths

    per_piece = config.per_piece()
    n_tasks = math.ceil(config.clips / per_piece)
    rng = np.random.default_rng(config.seed)
    by_collection = {name: list(rng.permutation(paths)) for name, paths in candidate_paths().items()}
    names = list(COLLECTIONS)
    shares = np.array([COLLECTIONS[n] for n in names])
    # Deal collections to task slots in proportion to their shares, then candidates within each.
    slots_collection = rng.choice(len(names), size=n_tasks, p=shares / shares.sum())
    pools = {name: iter(paths) for name, paths in by_collection.items()}
    tasks: list[Task] = []
    clip_index = 0
    for slot in range(n_tasks):
        preferred = names[slots_collection[slot]]
        candidates: list[str] = []
        for name in [preferred] + names:  # fall back to other collections when one runs dry
            while len(candidates) < CANDIDATES_PER_TASK:
                path = next(pools[name], None)
                if path is None:
                    break
                candidates.append(str(path))
        clips = []
        for _ in range(min(per_piece, config.clips - clip_index)):
            valence, arousal = draw_mood(clip_index, np.random.default_rng([config.seed, 1, clip_index]))
            clips.append(ClipPlan(f"c{clip_index:06d}", valence, arousal))
            clip_index += 1
        tasks.append(Task(slot, split_for(slot, n_tasks, config.seed), tuple(candidates), tuple(clips)))
    return tasks


def arrange_task(task: Task, config: BuildConfig) -> tuple[list[dict], list]:
    """One piece's clips as manifest rows (without `rms_db`) and arranged MIDI events, before any rendering."""
    from moodmusic.corpus.cues import perform
    from moodmusic.corpus.render import arrange, beat_quarters
    from moodmusic.corpus.scores import excerpt, read_piece

    piece = None
    for candidate in task.candidates:
        piece = read_piece(Path(candidate))
        if piece is not None:
            break
    arranged, rows = [], []
    for clip in task.clips if piece is not None else ():
        rng = np.random.default_rng([config.seed, 2, int(clip.id[1:])])
        performance = perform(clip.valence, clip.arousal, rng, config.cues)
        beat = beat_quarters(piece, performance.notes_per_beat)
        window = config.seconds * performance.tempo_bpm / 60.0 * beat
        latest_start = max(piece.length - window, 0.0)
        start = float(np.floor(rng.uniform(0, latest_start + 1e-9)))  # on a beat
        arranged_clip = arrange(excerpt(piece, start, window), beat, performance, config.seconds, rng, config.cues)
        arranged.append(arranged_clip)
        rows.append(
            {
                "id": clip.id, "source": piece.source, "collection": piece.collection, "split": task.split,
                "valence": round(clip.valence, 4), "arousal": round(clip.arousal, 4),
                "quadrant": quadrant(clip.valence, clip.arousal), "seconds": config.seconds,
                "audio": f"audio/{clip.id}.wav", "mel": f"mel/{clip.id}.npy", "cue_tracks": f"cue_tracks/{clip.id}.npy",
                "soundfont": config.soundfont, "start_quarter": start, "bpm": round(arranged_clip.bpm, 2),
                "source_key": arranged_clip.source_key, "performed_key": arranged_clip.performed_key,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in performance.as_dict().items()},
            }
        )  # fmt: skip
    return rows, arranged


def run_task(task: Task, config_dict: dict) -> list[dict]:
    """Render one piece's clips (runs in a worker process)."""
    import torch

    from moodmusic.corpus.render import cue_tracks, render_clips, soundfont_path
    from moodmusic.audio import write_wav
    from moodmusic.mel import log_mel

    torch.set_num_threads(1)
    config = BuildConfig(**config_dict)
    out = Path(config.out)
    rows, arranged = arrange_task(task, config)
    audio = render_clips(arranged, config.seconds, soundfont_path(config.soundfont)) if rows else []
    for row, arranged_clip, samples in zip(rows, arranged, audio):
        write_wav(out / row["audio"], samples)
        np.save(out / row["mel"], log_mel(samples).numpy().astype(np.float16))
        np.save(out / row["cue_tracks"], cue_tracks(arranged_clip, config.seconds))
        row["rms_db"] = round(float(20 * np.log10(np.sqrt(np.mean(samples**2)) + 1e-9)), 2)
    rows_path = out / "rows" / f"{task.index:05d}.json"
    tmp = rows_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    os.replace(tmp, rows_path)
    return rows


def annotate_task(task: Task, config_dict: dict, recorded: dict[str, dict]) -> int:
    """Write the cue tracks of one rendered task's clips, re-arranging them from the plan (no rendering);
    returns the number written. Every clip must come out as the manifest recorded it."""
    from moodmusic.corpus.render import cue_tracks

    config = BuildConfig(**config_dict)
    rows, arranged = arrange_task(task, config)
    for row, arranged_clip in zip(rows, arranged):
        earlier = recorded.get(row["id"])
        if earlier is None or any(str(earlier[k]) != str(row[k]) for k in ("source", "start_quarter", "bpm", "performed_key", "melody_program")):
            raise SystemExit(f"{config.out}: clip {row['id']} does not re-arrange as it was built (was its build made by other code?)")
        np.save(Path(config.out) / row["cue_tracks"], cue_tracks(arranged_clip, config.seconds))
    return len(rows)


def annotate(folder: Path, workers: int = 2, progress: bool = True) -> int:
    """Give a corpus built before cue tracks existed its `cue_tracks/` and manifest column, from its
    recorded plan: the arrangement is cheap, only the rendering was slow. Returns the clips annotated."""
    from moodmusic.corpus.loaders import corpus_manifest

    folder = Path(folder)
    config = BuildConfig(**{"cues": "v1", **json.loads((folder / "build.json").read_text()), "out": str(folder), "workers": workers})
    with open(corpus_manifest(folder)) as f:
        recorded = {row["id"]: row for row in csv.DictReader(f)}
    (folder / "cue_tracks").mkdir(exist_ok=True)
    tasks = [t for t in plan(config) if (not config.only_split or t.split == config.only_split) and any(c.id in recorded for c in t.clips)]
    bar = tqdm(total=len(recorded), unit="clip", disable=not progress, desc="annotating")
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(annotate_task, task, asdict(config), {c.id: recorded[c.id] for c in task.clips if c.id in recorded}) for task in tasks]
        for future in as_completed(futures):
            bar.update(future.result())
    bar.close()
    rows = [{**row, "cue_tracks": f"cue_tracks/{row['id']}.npy"} for row in recorded.values()]
    write_manifest(rows, folder / "manifest.csv")
    return len(rows)


def build(config: BuildConfig, progress: bool = True) -> list[dict]:
    """Render every planned clip not yet rendered, then write manifest.csv; returns its rows."""
    from moodmusic.corpus.render import soundfont_path

    soundfont_path(config.soundfont)  # fail before planning if it is missing
    out = Path(config.out)
    for folder in ("audio", "mel", "cue_tracks", "rows"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    previous = out / "build.json"
    if previous.exists():
        earlier = asdict(BuildConfig(**{"cues": "v1", **json.loads(previous.read_text())}))  # v1 builds did not record it
        if {**earlier, "workers": config.workers} != asdict(config):
            raise SystemExit(f"{out} holds a build with other arguments ({earlier}); choose another --out or delete it")
    previous.write_text(json.dumps(asdict(config), indent=2))

    tasks = [t for t in plan(config) if not config.only_split or t.split == config.only_split]
    done = {int(p.stem) for p in (out / "rows").glob("*.json")}
    todo = [t for t in tasks if t.index not in done]
    bar = tqdm(total=sum(len(t.clips) for t in tasks), initial=sum(len(t.clips) for t in tasks if t.index in done), unit="clip", disable=not progress, desc="rendering")
    with ProcessPoolExecutor(max_workers=max(1, config.workers)) as pool:
        futures = [pool.submit(run_task, task, asdict(config)) for task in todo]
        for future in as_completed(futures):
            rows = future.result()
            bar.update(len(rows) or 0)
    bar.close()

    rows = []
    for task in tasks:
        path = out / "rows" / f"{task.index:05d}.json"
        if path.exists():
            rows += json.loads(path.read_text())
    write_manifest(rows, out / "manifest.csv")
    return rows


def write_manifest(rows: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in MANIFEST_COLUMNS})
    os.replace(tmp, path)


def summary(rows: list[dict]) -> str:
    """Clips and minutes per quadrant and split, as a small text table."""
    counts: Counter = Counter()
    seconds: defaultdict = defaultdict(float)
    for row in rows:
        key = (row["split"], row["quadrant"])
        counts[key] += 1
        seconds[key] += float(row["seconds"])
    header = f"{'split':<6}" + "".join(f"{q:>16}" for q in QUADRANTS) + f"{'total':>16}"
    lines = [header]
    for split in SPLITS:
        cells = [f"{counts[(split, q)]:>5} ({seconds[(split, q)] / 60:5.1f} min)" for q in QUADRANTS]
        total_n = sum(counts[(split, q)] for q in QUADRANTS)
        total_s = sum(seconds[(split, q)] for q in QUADRANTS)
        lines.append(f"{split:<6}" + "".join(f"{c:>16}" for c in cells) + f"{f'{total_n:>5} ({total_s / 60:5.1f} min)':>16}")
    sources = {split: len({r['source'] for r in rows if r['split'] == split}) for split in SPLITS}
    lines.append("pieces per split: " + ", ".join(f"{s} {n}" for s, n in sources.items()))
    return "\n".join(lines)
