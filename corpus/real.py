"""`moodmusic corpus real`: excerpts of real game soundtracks that Debian ships, weakly labelled.

Our own corpus is FluidSynth renderings of public-domain scores; this set is what a studio actually
puts in a game: produced, mixed, mastered music. Each track is labelled from what its game uses it
for (a battle playlist, a town, the defeat screen), never from how it sounds to us, and the label says
only what that use implies: a battle track is high in arousal (its valence is not implied), a town or
a peace playlist is positive and low in arousal, the defeat screen is negative and low, a haunted castle
is negative. Everything else is unlabelled: it still serves to check level invariance and to show the
classifier real timbres in training (batch-norm statistics), with no loss on it.

The labels and the reason for each are written into the set's index (`index.csv`, `index.md`); the
audio is cut from the installed packages by this command and never committed. `wesnoth-1.16-music` is
held back for an independent check and is refused here.

Splits are by track, stratified by label: every third track of each label (in a fixed order from a hash
of its name) is held out as `test`, so even a label with one track is measured; the rest is `train`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GAMES = Path("/usr/share/games")
HELD_OUT_PACKAGES = ("wesnoth-1.16-music",)  # kept out of training and tuning, for an independent check
WEAK_POINT = 0.5  # a known side of a dimension is written as +-0.5 in the index; only its sign is trained on


@dataclass(frozen=True)
class Label:
    """What a game's use of a track implies: the sign of valence and of arousal, 0 where it implies neither."""

    valence: int
    arousal: int
    meaning: str


LABELS = {
    "battle": Label(0, +1, "plays during combat or a boss fight: high arousal; heroic or grim, so valence is not implied"),
    "action": Label(0, +1, "plays during a chase or a power-up run: high arousal"),
    "victory": Label(+1, 0, "plays when the player wins: positive"),
    "celebration": Label(+1, 0, "plays at a festive occasion or over the credits after the game is won: positive"),
    "peaceful": Label(+1, -1, "plays in a town, a safe room or while no battle is on: positive and low in arousal"),
    "defeat": Label(-1, -1, "plays when the player loses: negative and low in arousal"),
    "dark": Label(-1, 0, "plays in a dungeon, a haunted place, a fortress or hell: negative (threat, dread)"),
    "ambient": Label(0, -1, "an ambience bed under exploration: low in arousal"),
    "unlabelled": Label(0, 0, "in-game or menu music whose use implies no mood"),
}
POSITIVE_LABELS = ("victory", "celebration", "peaceful")
NEGATIVE_LABELS = ("defeat",)  # the acceptance's negative labels; "dark" is reported beside them
HIGH_AROUSAL_LABELS = tuple(name for name, label in LABELS.items() if label.arousal > 0)
LOW_AROUSAL_LABELS = tuple(name for name, label in LABELS.items() if label.arousal < 0)


@dataclass(frozen=True)
class Source:
    """One package's music: where its files are, and the labels of the tracks whose use is known."""

    package: str
    folder: str  # under /usr/share/games (or an absolute path)
    pattern: str  # glob of the music files under the folder
    labels: dict[str, tuple[str, str]]  # file name (relative to the folder) -> (label, the use it comes from)


SOURCES = [
    Source("flare-game", "flare/mods/fantasycore/music", "*.ogg", {
        "battle_theme.ogg": ("battle", "Flare's battle theme"),
        "boss_theme.ogg": ("battle", "Flare's boss fight theme"),
        "safe_room_theme.ogg": ("peaceful", "plays in Flare's safe rooms, where no enemy attacks"),
        "town_theme.ogg": ("peaceful", "plays in Flare's towns"),
        "dungeon_theme.ogg": ("dark", "plays in Flare's dungeons"),
        "cave_theme.ogg": ("dark", "plays in Flare's caves"),
        "unrest_theme.ogg": ("dark", "plays in Flare's places of unrest"),
        "wind_ambient.ogg": ("ambient", "Flare's wind ambience"),
    }),  # fmt: skip
    Source("supertux-data", "supertux2/music", "*/*.ogg", {
        "antarctic/bossattack.ogg": ("battle", "SuperTux boss fight"),
        "antarctic/voc-boss.ogg": ("battle", "SuperTux boss fight"),
        "forest/treeboss.ogg": ("battle", "SuperTux forest boss fight"),
        "misc/battle_theme.ogg": ("battle", "SuperTux battle theme"),
        "misc/invincible.ogg": ("action", "plays while Tux is invincible and running"),
        "misc/leveldone.ogg": ("victory", "plays when a level is won"),
        "misc/credits.ogg": ("celebration", "plays over the credits after the game is won"),
        "misc/christmas_theme.ogg": ("celebration", "SuperTux's Christmas levels"),
        "castle/fortress.ogg": ("dark", "SuperTux fortress levels"),
        "castle/darkforestkeep.ogg": ("dark", "SuperTux dark forest keep"),
        "retro/fortress_old.ogg": ("dark", "SuperTux fortress levels (retro)"),
        "forest/ghostforest.ogg": ("dark", "SuperTux haunted forest"),
        "forest/ghostforest2.ogg": ("dark", "SuperTux haunted forest"),
        "misc/halloween_1.ogg": ("dark", "SuperTux Halloween levels"),
    }),  # fmt: skip
    Source("hedgewars-data", "hedgewars/Data/Music", "*.ogg", {
        "hell.ogg": ("dark", "Hedgewars' Hell theme"),
        "Halloween.ogg": ("dark", "Hedgewars' Halloween theme"),
    }),  # fmt: skip
    Source("freedroidrpg-data", "/usr/share/freedroidrpg/data/sound/music", "*.ogg", {
        "AmbientBattle.ogg": ("battle", "FreedroidRPG combat music"),
        "Hyperbattle.ogg": ("battle", "FreedroidRPG combat music"),
        "TechBattle.ogg": ("battle", "FreedroidRPG combat music"),
        "town.ogg": ("peaceful", "plays in FreedroidRPG's town"),
        "HellFortressEntrance.ogg": ("dark", "FreedroidRPG's Hell Fortress"),
        "HellFortressTwo.ogg": ("dark", "FreedroidRPG's Hell Fortress"),
        "Ambience.ogg": ("ambient", "FreedroidRPG's ambience"),
    }),  # fmt: skip
    Source("megaglest-data", "megaglest", "**/music/*.ogg", {}),
    Source("widelands-data", "widelands/data/music", "*.ogg", {}),
    Source("warzone2100-music", "warzone2100/music", "**/*.opus", {}),
]
ZERO_AD = Path("/usr/share/games/0ad/mods/public/public.zip")  # 0 A.D. keeps its music in an uncompressed zip


@dataclass(frozen=True)
class Track:
    """One music file of the real-music set, with its label and the use it comes from; `read` decodes it."""

    package: str
    name: str  # unique within the set: package/relative path
    label: str
    reason: str
    path: Path  # the file, or the zip that holds it
    member: str = ""  # the member of the zip, if any

    def read(self, max_seconds: float) -> np.ndarray:
        from moodmusic.audio import load_audio

        if self.member:
            with zipfile.ZipFile(self.path) as archive:
                return load_audio(archive.read(self.member), max_seconds=max_seconds)
        return load_audio(self.path, max_seconds=max_seconds)


def zero_ad_tracks(archive: Path = ZERO_AD) -> list[Track]:
    """0 A.D.'s music, labelled from the game's own playlists: each civilisation's peace list
    (simulation/data/civs/*.json) and the default battle, victory and defeat lists (gui/common/music.js)."""
    import re

    if not archive.exists():
        return []
    with zipfile.ZipFile(archive) as z:
        uses: dict[str, str] = {}
        script = z.read("gui/common/music.js").decode()
        for kind in ("MENU", "PEACE", "BATTLE", "VICTORY", "DEFEAT"):
            block = re.search(rf"DEFAULT_{kind}_TRACKS = (.*?);", script, re.S)
            for file in re.findall(r'"([^"]+\.ogg)"', block.group(1) if block else ""):
                uses.setdefault(file, kind.lower())
        for civ in sorted(n for n in z.namelist() if n.startswith("simulation/data/civs/") and n.endswith(".json")):
            for music in json.loads(z.read(civ)).get("Music", []):
                uses.setdefault(music["File"], music["Type"])
        members = sorted(n for n in z.namelist() if n.startswith("audio/music/") and n.endswith(".ogg"))
    labels = {"peace": "peaceful", "battle": "battle", "victory": "victory", "defeat": "defeat"}
    tracks = []
    for member in members:
        file = member.rsplit("/", 1)[1]
        use = uses.get(file, "")
        label = labels.get(use, "unlabelled")
        reason = f"0 A.D. plays it in its {use} playlist" if use else "0 A.D. music in no playlist"
        tracks.append(Track("0ad-data", f"0ad-data/{file}", label, reason, archive, member))
    return tracks


def find_tracks(games: Path = GAMES) -> list[Track]:
    """Every track of the installed sources, labelled; packages that are not installed are skipped."""
    tracks = []
    for source in SOURCES:
        if source.package in HELD_OUT_PACKAGES:
            raise ValueError(f"{source.package} is held out for an independent check and may not be used")
        folder = Path(source.folder) if source.folder.startswith("/") else games / source.folder
        for path in sorted(folder.glob(source.pattern)):
            relative = path.relative_to(folder).as_posix()
            label, reason = source.labels.get(relative, ("unlabelled", "in-game or menu music, no mood implied by its use"))
            tracks.append(Track(source.package, f"{source.package}/{relative}", label, reason, path))
        missing = set(source.labels) - {t.name.split("/", 1)[1] for t in tracks if t.package == source.package}
        if folder.exists() and missing:
            raise ValueError(f"{source.package}: labelled tracks not found under {folder}: {', '.join(sorted(missing))}")
    return tracks + zero_ad_tracks()


def assign_splits(tracks: list[Track]) -> dict[str, str]:
    """Track name -> "train" or "test": every third track of each label, in hash order, is held out."""
    splits = {}
    for label in LABELS:
        ordered = sorted((t.name for t in tracks if t.label == label), key=lambda n: hashlib.sha256(n.encode()).hexdigest())
        for index, name in enumerate(ordered):
            splits[name] = "test" if index % 3 == 0 else "train"
    return splits


def excerpt_starts(seconds_total: float, seconds: float, per_track: int) -> list[float]:
    """Up to `per_track` excerpt starts spread evenly over the track, skipping its first and last 5%
    (fade-ins and endings); a track shorter than an excerpt gives one excerpt of all of it."""
    if seconds_total <= seconds:
        return [0.0]
    first, last = 0.05 * seconds_total, max(0.05 * seconds_total, 0.95 * seconds_total - seconds)
    count = max(1, min(per_track, int((last - first) // seconds) + 1))
    return [float(x) for x in np.linspace(first, last, count)] if count > 1 else [first]


SILENT_DBFS = -50.0  # an excerpt whose RMS is below this is a pause in the track, not music


def build(out: Path, per_track: int = 4, seconds: float = 10.0, min_seconds: float = 4.0, progress: bool = True, tracks: list[Track] | None = None) -> list[dict]:
    """Cut the excerpts of `tracks` (default: every installed source's) into `out`, with the index."""
    import soundfile
    from tqdm import tqdm

    from moodmusic.mel import SAMPLE_RATE

    tracks = find_tracks() if tracks is None else tracks
    if not tracks:
        raise SystemExit("no game soundtracks installed; run scripts/install_soundtracks.sh first")
    splits = assign_splits(tracks)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for track in tqdm(tracks, desc="cutting excerpts", unit="track", disable=not progress):
        samples = track.read(max_seconds=900)
        duration = samples.size / SAMPLE_RATE
        if duration < min_seconds:
            continue
        for k, start in enumerate(excerpt_starts(duration, seconds, per_track)):
            piece = samples[int(start * SAMPLE_RATE) : int((start + seconds) * SAMPLE_RATE)]
            rms = 20 * np.log10(max(float(np.sqrt(np.mean(piece.astype(np.float64) ** 2))), 1e-12))
            if rms < SILENT_DBFS or piece.size < min_seconds * SAMPLE_RATE:
                continue
            relative = f"audio/{track.name.replace('/', '__').rsplit('.', 1)[0]}__{k}.flac"
            soundfile.write(out / relative, piece, SAMPLE_RATE, subtype="PCM_16")
            label = LABELS[track.label]
            rows.append({
                "audio": relative, "package": track.package, "track": track.name, "label": track.label,
                "valence": label.valence * WEAK_POINT, "arousal": label.arousal * WEAK_POINT, "split": splits[track.name],
                "start_s": round(start, 2), "seconds": round(piece.size / SAMPLE_RATE, 2), "reason": track.reason,
            })  # fmt: skip
    write_index(out, rows)
    return rows


INDEX_COLUMNS = ["audio", "package", "track", "label", "valence", "arousal", "split", "start_s", "seconds", "reason"]


def write_index(out: Path, rows: list[dict]) -> None:
    with open(out / "index.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tracks = {row["track"]: row for row in rows}
    counts = Counter((row["label"], row["split"]) for row in rows)
    lines = [
        "# Real game music, weakly labelled",
        "",
        "Excerpts of game soundtracks installed from Debian packages (`moodmusic corpus real`). A label comes from what the",
        "game uses the track for, and says only the sign of valence and of arousal that this use implies (0: not implied);",
        f"the index writes a known side as +-{WEAK_POINT} and training uses only its sign. Held out for an independent check,",
        f"never used here: {', '.join(HELD_OUT_PACKAGES)}.",
        "",
        "| label | valence | arousal | meaning | tracks | excerpts train / test |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in LABELS.items():
        n_tracks = sum(1 for row in tracks.values() if row["label"] == name)
        lines.append(f"| {name} | {label.valence:+d} | {label.arousal:+d} | {label.meaning} | {n_tracks} | {counts[(name, 'train')]} / {counts[(name, 'test')]} |")
    lines += ["", "| track | label | split | reason |", "|---|---|---|---|"]
    lines += [f"| {name} | {row['label']} | {row['split']} | {row['reason']} |" for name, row in sorted(tracks.items()) if row["label"] != "unlabelled"]
    unlabelled = Counter(row["package"] for row in tracks.values() if row["label"] == "unlabelled")
    lines += ["", "Unlabelled tracks per package: " + ", ".join(f"{p} {n}" for p, n in sorted(unlabelled.items())), ""]
    (out / "index.md").write_text("\n".join(lines))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="data/real", help="output folder (default: data/real)")
    parser.add_argument("--per-track", type=int, default=4, help="excerpts cut from each track (default: 4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each excerpt (default: 10 s)")


def run(args: argparse.Namespace) -> int:
    if args.per_track < 1 or args.seconds <= 0:
        raise SystemExit("--per-track must be at least 1 and --seconds positive")
    rows = build(Path(args.out), args.per_track, args.seconds)
    counts = Counter(row["label"] for row in rows)
    print(f"{len(rows)} excerpts of {len({r['track'] for r in rows})} tracks in {args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return 0
