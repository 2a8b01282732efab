"""`moodmusic generate`: compose a clip for a mood and write it (WAV, FLAC, OGG or MP3, by the file's suffix),
with what the classifier heard.

    moodmusic generate --mood calm --seconds 20 --seed 7 --out calm.wav
    moodmusic generate --valence 0.6 --arousal -0.5 --out clip.wav --json clip.json
    moodmusic generate --trajectory "0:-0.6:-0.5,10:0.7:0.6" --seconds 20 --out rising.wav
    moodmusic generate --mood tense --seconds 30 --loop --out tense_loop.ogg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_trajectory(text: str) -> list[tuple[float, float, float]]:
    try:
        return [tuple(float(x) for x in point.split(":")) for point in text.split(",") if point.strip()]
    except ValueError as error:
        raise SystemExit(f"--trajectory takes time:valence:arousal points separated by commas ({error})") from error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from moodmusic.commandline import candidates_argument

    mood = parser.add_mutually_exclusive_group()
    mood.add_argument("--mood", help="a named mood (see `moodmusic generate --list-moods`)")
    mood.add_argument("--trajectory", help="time:valence:arousal points, e.g. 0:-0.6:-0.5,10:0.7:0.6")
    parser.add_argument("--valence", type=float, help="valence in [-1, 1] (with --arousal)")
    parser.add_argument("--arousal", type=float, help="arousal in [-1, 1] (with --valence)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration, 1 to 120 s (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--loop", action="store_true", help="make the end join the start seamlessly (a whole number of bars)")
    parser.add_argument("--bpm", type=float, help="tempo, 40 to 240 beats per minute (default: the mood's)")
    parser.add_argument("--beats-per-bar", type=int, help="beats in a bar (default 4)")
    parser.add_argument("--sample-rate", type=int, default=22050, help="22050 (default, the models' own), 44100 or 48000 (soxr)")
    parser.add_argument("--out", default="clip.wav", help="audio file to write, in the format its suffix names: .wav (16-bit; default "
                        "clip.wav), .flac, .ogg (Vorbis; for loops in game engines) or .mp3")
    parser.add_argument("--json", help="also write the asked and heard mood, narration, timings and versions here")
    parser.add_argument("--no-verify", action="store_true", help="skip the classifier (and the narration)")
    parser.add_argument("--checkpoints", help="a checkpoints folder (default: the shipped one)")
    parser.add_argument("--vocoder", help="'griffinlim', 'griffinlim-sparse' or a HiFi-GAN folder instead of the shipped vocoder")
    parser.add_argument("--candidates", type=candidates_argument, help="critic-guided sampling: continuations tried per chunk (1: plain sampling; "
                        "default: the generator folder's guidance.json)")
    parser.add_argument("--list-moods", action="store_true", help="print the named moods and exit")


def run(args: argparse.Namespace) -> int:
    from moodmusic.mood import NAMED_MOODS

    if args.list_moods:
        for name, (valence, arousal) in NAMED_MOODS.items():
            print(f"{name:12s} valence {valence:+.2f}  arousal {arousal:+.2f}")
        return 0
    if args.trajectory:
        mood = parse_trajectory(args.trajectory)
    elif args.valence is not None or args.arousal is not None:
        if args.valence is None or args.arousal is None:
            raise SystemExit("give both --valence and --arousal")
        mood = (args.valence, args.arousal)
    else:
        mood = args.mood or "calm"

    from tqdm import tqdm

    from moodmusic.audio import format_of_path, write_bytes
    from moodmusic.loopfiles import check_sample_rate, encode_clip
    from moodmusic.pipeline import load_pipeline
    from moodmusic.tempo import Grid

    try:  # before the work, not after it
        audio_format = format_of_path(args.out)
        check_sample_rate(args.sample_rate)
        Grid.for_mood(0.0, 0.0, args.bpm, args.beats_per_bar)
    except ValueError as error:
        raise SystemExit(str(error)) from error

    chain = load_pipeline(args.checkpoints, vocoder=args.vocoder, candidates=args.candidates)
    with tqdm(desc="generating", unit="slice", file=sys.stderr) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        clip = chain.compose(mood, args.seconds, args.seed, verify=not args.no_verify, narrate=not args.no_verify, loop=args.loop, progress=progress,
                             bpm=args.bpm, beats_per_bar=args.beats_per_bar)  # fmt: skip
    data, points = encode_clip(clip.audio, audio_format, args.sample_rate, clip.grid, clip.loop)
    write_bytes(Path(args.out), data)
    report = {
        "file": args.out, "seconds": clip.seconds, "seed": clip.seed, "loop": clip.loop, "tempo": clip.grid.as_dict(), "bars": round(clip.bars, 4),
        "audio": points,
        "asked": {"valence": clip.asked.valence, "arousal": clip.asked.arousal, "quadrant": clip.asked.quadrant},
        "heard": None if clip.analysis is None else {k: v for k, v in clip.analysis.as_dict().items() if k not in ("embedding", "timeline")},
        "level": None if clip.level is None else clip.level.as_dict(),
        "distance": clip.distance, "narration": None if clip.narration is None else clip.narration.__dict__,
        "timings": {k: round(v, 4) for k, v in clip.timings.items()}, "versions": clip.versions,
    }  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} ({clip.seconds:g} s, {clip.bars:.2f} bars of {clip.grid.beats_per_bar}/4 at {clip.grid.bpm:g} bpm, {args.sample_rate:,} Hz)")
    if clip.level is not None:
        level = clip.level
        print(f"level  {level.loudness_lufs:.1f} LUFS (target {level.target_lufs:.1f}), true peak {level.true_peak_dbtp:.1f} dBTP, dead air {level.dead_air_seconds:g} s")
    if clip.analysis is not None:
        heard = clip.analysis.overall
        print(f"asked  valence {clip.asked.valence:+.2f} arousal {clip.asked.arousal:+.2f} ({clip.asked.quadrant})")
        print(f"heard  valence {heard.valence:+.2f} arousal {heard.arousal:+.2f} ({clip.analysis.quadrant}); distance {clip.distance:.2f}")
    if clip.narration is not None:
        print(clip.narration.narrative)
    return 0
