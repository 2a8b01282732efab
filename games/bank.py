"""`moodmusic bank`: an offline bank of seamless loops over the mood square, for game middleware.

    moodmusic bank --grid 5x5 --seconds 30 --variants 3 --out bank/

writes `bank/<row>_<col>_v<variant>.wav` (16-bit, 22,050 Hz, or `--sample-rate 44100`/`48000`; `--format flac`,
`ogg` or `mp3` for smaller files; each loops end-to-start without a click, and lasts a whole number of bars
of its tempo: the mood's, or `--bpm` / `--beats-per-bar` for every loop)
and `bank/bank.json`: for every file its mood, grid cell, tempo, bar starts and loop points in samples,
seed, what the classifier heard, and the model versions. The loop points are in the files too (WAV `smpl`
chunk and bar cue markers, Ogg/FLAC LOOPSTART/LOOPLENGTH comments). docs/games.md shows how to import it
into FMOD, Wwise, Unity or Godot and drive it from a game parameter.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from moodmusic.audio import OUTPUT_FORMATS
from moodmusic.loops import seam_metrics
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import grid_points


def parse_grid(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(x) for x in text.lower().split("x"))
    except ValueError as error:
        raise SystemExit(f"--grid takes ROWSxCOLS, e.g. 5x5 (got {text!r})") from error
    if not (1 <= rows <= 21 and 1 <= cols <= 21):
        raise SystemExit("--grid rows and columns must be between 1 and 21")
    return rows, cols


def make_loop(chain, call: tuple):
    """One loop of the bank: `call` is (mood, seconds, seed, bpm, beats_per_bar). Verified (bank.json says what was heard)."""
    mood, seconds, seed, bpm, beats_per_bar = call
    return chain.compose(mood, seconds, seed, verify=True, narrate=False, loop=True, bpm=bpm, beats_per_bar=beats_per_bar)


def build_bank(
    chain, out: Path, rows: int, cols: int, seconds: float, variants: int, first_seed: int = 0, progress: bool = True, audio_format: str = "wav",
    sample_rate: int = SAMPLE_RATE, bpm: float | None = None, beats_per_bar: int | None = None,
) -> dict:  # fmt: skip
    from tqdm import tqdm

    from moodmusic.audio import output_format, write_bytes
    from moodmusic.loopfiles import check_sample_rate, encode_clip
    from moodmusic.tempo import Grid

    output_format(audio_format)  # an unknown format, rate or tempo fails here, not after the first loop is made
    check_sample_rate(sample_rate)
    if bpm is not None or beats_per_bar is not None:
        Grid.for_mood(0.0, 0.0, bpm, beats_per_bar)

    out.mkdir(parents=True, exist_ok=True)
    entries = []
    jobs = [(point, variant) for point in grid_points(rows, cols) for variant in range(variants)]
    # The chain makes the loops in order: one after another in this process, or spread over a Ray cluster (moodmusic.cluster).
    calls = [((valence, arousal), seconds, first_seed + variant, bpm, beats_per_bar) for (_, _, valence, arousal), variant in jobs]
    clips = chain.map(make_loop, calls)
    for ((row, col, valence, arousal), variant), clip in tqdm(zip(jobs, clips), total=len(jobs), desc="bank", unit="loop", disable=not progress):
        seed = first_seed + variant
        name = f"r{row}_c{col}_v{variant}.{audio_format}"
        data, points = encode_clip(clip.audio, audio_format, sample_rate, clip.grid, loop=True)
        write_bytes(out / name, data)
        heard = clip.analysis.overall
        entries.append({
            "file": name, "valence": valence, "arousal": arousal, "row": row, "col": col, "variant": variant, "seed": seed,
            "quadrant": clip.asked.quadrant, **points, **clip.grid.as_dict(), "bars": round(clip.bars), "seam": seam_metrics(clip.audio),
            "level": clip.level.as_dict(),
            "heard": {"valence": round(heard.valence, 3), "arousal": round(heard.arousal, 3), "quadrant": clip.analysis.quadrant},
        })  # fmt: skip
    manifest = {
        "grid": {"rows": rows, "cols": cols, "axes": {"col": "valence", "row": "arousal"}, "extent": 0.8},
        "seconds": seconds, "variants": variants, "format": audio_format, "sample_rate": sample_rate, "versions": chain.versions,
        "conventions": {"loop_end": "exclusive (the loop plays loop_start .. loop_end - 1); a WAV's smpl chunk stores loop_end - 1",
                        "bar_starts": "the first sample of every bar; beat 1 of bar 1 is the file's first sample"},
        "loops": entries,
    }  # fmt: skip
    (out / "bank.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from moodmusic.commandline import add_ray_arguments

    parser.add_argument("--grid", default="5x5", help="ROWSxCOLS over the mood square (default 5x5)")
    parser.add_argument("--seconds", type=float, default=30.0, help="loop length, 1 to 120 s (default 30)")
    parser.add_argument("--variants", type=int, default=3, help="loops per grid cell, each another seed (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first variant")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", default="wav", choices=list(OUTPUT_FORMATS),
                        help="audio files: wav (16-bit, default), flac (lossless), ogg (Vorbis, about a tenth of the size) "
                        "or mp3 (not every MP3 decoder keeps a loop seamless: prefer ogg)")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE, help="22050 (default, the models' own), 44100 or 48000 (soxr)")
    parser.add_argument("--bpm", type=float, help="every loop's tempo, 40 to 240 (default: each mood's own)")
    parser.add_argument("--beats-per-bar", type=int, help="beats in a bar (default 4)")
    parser.add_argument("--checkpoints", help="a checkpoints folder (default: the shipped one)")
    add_ray_arguments(parser, "the loops")


def run(args: argparse.Namespace) -> int:
    from moodmusic.trajectory import check_seconds
    from moodmusic.pipeline import load_pipeline

    rows, cols = parse_grid(args.grid)
    if not 1 <= args.variants <= 20:
        raise SystemExit("--variants must be between 1 and 20")
    try:
        seconds = check_seconds(args.seconds)
    except ValueError as error:
        raise SystemExit(str(error)) from error
    try:
        if args.ray:
            from moodmusic.cluster import ClusterChain

            chain = ClusterChain.start(None if args.ray == "local" else args.ray, args.checkpoints, workers=args.ray_workers)
        else:
            chain = load_pipeline(args.checkpoints)
        manifest = build_bank(chain, Path(args.out), rows, cols, seconds, args.variants, args.seed, audio_format=args.format,
                              sample_rate=args.sample_rate, bpm=args.bpm, beats_per_bar=args.beats_per_bar)  # fmt: skip
    except ValueError as error:
        raise SystemExit(f"moodmusic bank: {error}") from None
    print(f"wrote {len(manifest['loops'])} loops and bank.json to {args.out}")
    return 0
