"""`moodmusic evaluate levels`: does every output path deliver audible, mastered music?

Clips of the named moods (30 s and 120 s), stingers, loops and live streams that move through all four
quadrants go through the shipped chain as a user gets them, and a loudness meter (pyloudnorm, BS.1770-4),
a 4x oversampled peak reader and a 1-second RMS scan judge them against the project's loudness rules
(moodmusic.mastering). No model of ours takes part in the judging.

For a stream, the report also reads each chunk join: the RMS of the 50 ms before and after it (a step in
level shows there at once), beside the same reading at the middle of every chunk, where no join is (the
music's own movement); and the mastering's own gain (output over input) just before and after each join.

    moodmusic evaluate levels                     # the full set -> docs/levels.json, docs/levels.md
    moodmusic evaluate levels --quick             # a few short ones (CI)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodmusic import mastering
from moodmusic.loops import rms_db
from moodmusic.mel import SAMPLE_RATE

NAMED_MOODS = ("happy", "upbeat", "epic", "angry", "tense", "sad", "calm", "peaceful")
# Four streams, each visiting the four quadrants in another order (valence, arousal), a new mood every 15 s.
STREAM_ROUTES = (
    ((0.6, -0.6), (0.7, 0.5), (-0.7, 0.7), (-0.7, -0.5)),
    ((-0.7, -0.5), (0.6, -0.6), (0.7, 0.5), (-0.7, 0.7)),
    ((-0.7, 0.7), (-0.7, -0.5), (0.6, -0.6), (0.7, 0.5)),
    ((0.7, 0.5), (-0.7, 0.7), (0.6, -0.6), (-0.7, -0.5)),
)


@dataclass(frozen=True)
class LevelsConfig:
    """How many clips, stingers, loops and streams `moodmusic evaluate levels` makes and meters; `quick()` is the CI set."""

    clip_seeds: int = 8  # named moods x seeds of `clip_seconds`
    clip_seconds: float = 30.0
    long_seeds: int = 2  # named moods x seeds of `long_seconds`
    long_seconds: float = 120.0
    streams: int = 4
    stream_seconds: float = 60.0
    transition_seconds: float = 3.0
    chunk_seconds: float = 0.5
    stingers: bool = True
    loops: int = 4  # calm, sad, angry, happy loops of `clip_seconds`

    @classmethod
    def quick(cls) -> LevelsConfig:
        return cls(clip_seeds=1, clip_seconds=6.0, long_seeds=0, streams=1, stream_seconds=8.0, transition_seconds=1.0, loops=1)


def _level_row(kind: str, name: str, seed: int, seconds: float, report: mastering.LevelReport) -> dict:
    return {"kind": kind, "mood": name, "seed": seed, "seconds": seconds, **report.as_dict()}


def clip_rows(chain, config: LevelsConfig, progress: bool) -> list[dict]:
    """Every clip, stinger and loop, measured again from its final audio (not from what the chain says)."""
    from tqdm import tqdm

    from moodmusic.mood import resolve
    from moodmusic.pipeline import STINGER_FADE_SECONDS, stinger_trajectory

    jobs = [("clip", mood, seed, config.clip_seconds) for mood in NAMED_MOODS for seed in range(config.clip_seeds)]
    jobs += [("clip", mood, seed, config.long_seconds) for mood in NAMED_MOODS for seed in range(config.long_seeds)]
    jobs += [("loop", mood, 0, config.clip_seconds) for mood in ("calm", "sad", "angry", "happy")[: config.loops]]
    if config.stingers:
        jobs += [(f"stinger-{event}", mood, 0, 2.0) for event in ("rise", "fall", "hit") for mood in ("calm", "tense")]
    rows = []
    for kind, mood, seed, seconds in tqdm(jobs, desc="clips", unit="clip", disable=not progress, file=sys.stderr):
        if kind.startswith("stinger"):
            event = kind.split("-")[1]
            clip = chain.stinger(event, mood, seconds, seed)
            tail = STINGER_FADE_SECONDS  # the closing fade may be quiet
            arousal = float(np.mean([a for _, _, a in stinger_trajectory(event, 0.0, resolve(mood).arousal, seconds)]))
        else:
            clip = chain.compose(mood, seconds, seed, verify=False, narrate=False, loop=kind == "loop")
            tail, arousal = 0.0, resolve(mood).arousal
        rows.append(_level_row(kind, mood, seed, seconds, mastering.measure(clip.audio, arousal=arousal, exclude_tail_seconds=tail)))
    return rows


JUMP_WINDOW_SECONDS = 0.05  # the RMS of this much audio either side of a join; a step in level shows at once
GAIN_WINDOW_SECONDS = 0.01


def level_jump_db(audio: np.ndarray, at: int) -> float:
    """RMS level (dB) of the 50 ms after `at` minus that of the 50 ms before it."""
    window = round(JUMP_WINDOW_SECONDS * SAMPLE_RATE)
    return rms_db(audio[at : at + window]) - rms_db(audio[at - window : at])


def _nanmax_abs(values: list[float]) -> float | None:
    values = np.abs(np.array(values, dtype=float))
    return None if np.all(np.isnan(values)) else float(np.nanmax(values))


def gain_step_db(out: np.ndarray, raw: np.ndarray, at: int) -> float:
    """The change of the mastering's gain (output over input, median over 10 ms each side) across `at`; NaN where the input is too quiet to read it."""
    window = round(GAIN_WINDOW_SECONDS * SAMPLE_RATE)

    def gain(part_out, part_raw):
        readable = np.abs(part_raw) > 1e-3
        return float(np.median(20 * np.log10(np.abs(part_out[readable]) / np.abs(part_raw[readable])))) if readable.sum() > 20 else math.nan

    return gain(out[at : at + window], raw[at : at + window]) - gain(out[at - window : at], raw[at - window : at])


def stream_row(chain, route, seed: int, config: LevelsConfig) -> dict:
    """One live stream through its route: its level report, short-term tracking and chunk joins."""
    from moodmusic.livestream import LiveStream

    live = LiveStream(chain, route[0], seed=seed, chunk_seconds=config.chunk_seconds)
    captured: list[np.ndarray] = []  # the stream before mastering, chunk by chunk, for comparison
    process = live.master.process

    def recording(chunk, arousal):
        captured.append(np.asarray(chunk, dtype=np.float32).copy())
        return process(chunk, arousal)

    live.master.process = recording
    chunks, arousals = [], []
    per_mood = config.stream_seconds / len(route)
    n_chunks = round(config.stream_seconds / config.chunk_seconds)
    for index in range(n_chunks):
        t = index * config.chunk_seconds
        leg = min(len(route) - 1, int(t // per_mood))
        if index and int(t // per_mood) != int((t - config.chunk_seconds) // per_mood):
            live.set_mood(*route[leg], transition_s=config.transition_seconds)
        chunk = live.next_chunk()
        chunks.append(np.frombuffer(chunk.pcm, dtype="<i2").astype(np.float32) / 32767)
        arousals.append(chunk.arousal)
    audio, raw = np.concatenate(chunks), np.concatenate(captured)
    delay, size = live.master.delay, live.chunk_samples
    raw = np.concatenate([np.zeros(delay, dtype=np.float32), raw])[: audio.size]  # aligned with the output
    joins = [index * size for index in range(1, n_chunks)]
    middles = [index * size + size // 2 for index in range(1, n_chunks - 1)]  # the same reading where no join is
    jumps_at_joins = [level_jump_db(audio, at) for at in joins]
    jumps_between = [level_jump_db(audio, at) for at in middles]
    gain_steps = [gain_step_db(audio, raw, at) for at in joins]
    gain_steps_between = [gain_step_db(audio, raw, at) for at in middles]
    # The stream's level as a listener follows it: the short-term loudness (the 3 s up to each join) from one join to the next.
    span = round(mastering.SHORT_TERM_SECONDS * SAMPLE_RATE)
    short_at_joins = np.array([mastering.integrated_loudness(audio[at - span : at]) for at in joins if at >= span])
    short_steps = np.abs(np.diff(short_at_joins[np.isfinite(short_at_joins)]))
    # short-term (3 s) loudness against the target of the arousal of the moment, after the first 3 s
    times, short_term = mastering.short_term_loudness(audio)
    expected = np.array([mastering.target_lufs(arousals[min(len(arousals) - 1, int(t // config.chunk_seconds))]) for t in times])
    settled = times >= 3.0
    tracking = np.abs(short_term - expected)[settled]
    report = mastering.measure(audio)
    return {
        "route": [list(point) for point in route], "seed": seed, "seconds": audio.size / SAMPLE_RATE,
        "loudness_lufs": report.loudness_lufs, "true_peak_dbtp": report.true_peak_dbtp, "dead_air_seconds": report.dead_air_seconds,
        "short_term_error_lu": {"median": float(np.median(tracking)), "max": float(np.max(tracking)), "within_3_lu": float(np.mean(tracking <= 3.0))},
        "short_term_step_db": {"max": float(short_steps.max()), "over_3db": int(np.sum(short_steps > 3)), "steps": int(short_steps.size)},
        "gain_step_at_joins_db_max": _nanmax_abs(gain_steps),
        "gain_step_mid_chunk_db_max": _nanmax_abs(gain_steps_between),
        "join_jump_db": {"at_joins_max": float(np.max(np.abs(jumps_at_joins))), "at_joins_over_3db": int(np.sum(np.abs(jumps_at_joins) > 3)),
                         "mid_chunk_max": float(np.max(np.abs(jumps_between))), "mid_chunk_over_3db": int(np.sum(np.abs(jumps_between) > 3)),
                         "joins": len(joins), "mid_chunk_points": len(middles)},
    }  # fmt: skip


def summarise(rows: list[dict], streams: list[dict]) -> dict:
    def count(predicate) -> int:
        return int(sum(1 for r in rows if predicate(r)))

    errors = [abs(r["loudness_lufs"] - r["target_lufs"]) for r in rows if r["loudness_lufs"] is not None]
    summary = {
        "clips": len(rows),
        "below_floor": count(lambda r: "floor" in r["gates_failed"]),
        "with_dead_air": count(lambda r: r["dead_air_seconds"] > 0),
        "over_true_peak": count(lambda r: "true_peak" in r["gates_failed"]),
        "off_target": count(lambda r: "target" in r["gates_failed"]),
        "loudness_error_lu_max": max(errors) if errors else None,
        "true_peak_dbtp_max": max((r["true_peak_dbtp"] for r in rows if r["true_peak_dbtp"] is not None), default=None),
        "streams": len(streams),
    }
    if streams:
        summary.update({
            "stream_true_peak_dbtp_max": max(s["true_peak_dbtp"] for s in streams),
            "stream_dead_air_seconds": sum(s["dead_air_seconds"] for s in streams),
            "stream_join_jump_db_max": max(s["join_jump_db"]["at_joins_max"] for s in streams),
            "stream_joins_over_3db": sum(s["join_jump_db"]["at_joins_over_3db"] for s in streams),
            "stream_joins": sum(s["join_jump_db"]["joins"] for s in streams),
            "stream_mid_chunk_over_3db": sum(s["join_jump_db"]["mid_chunk_over_3db"] for s in streams),
            "stream_mid_chunk_points": sum(s["join_jump_db"]["mid_chunk_points"] for s in streams),
            "stream_gain_step_db_max": max((s["gain_step_at_joins_db_max"] for s in streams if s["gain_step_at_joins_db_max"] is not None), default=None),
            "stream_gain_step_mid_chunk_db_max": max((s["gain_step_mid_chunk_db_max"] for s in streams if s["gain_step_mid_chunk_db_max"] is not None), default=None),
            "stream_short_term_step_db_max": max(s["short_term_step_db"]["max"] for s in streams),
            "stream_short_term_steps_over_3db": sum(s["short_term_step_db"]["over_3db"] for s in streams),
            "stream_short_term_steps": sum(s["short_term_step_db"]["steps"] for s in streams),
            "stream_short_term_within_3_lu": float(np.mean([s["short_term_error_lu"]["within_3_lu"] for s in streams])),
        })  # fmt: skip
    return summary


def markdown(report: dict, command: str) -> str:
    s = report["summary"]
    lines = [
        "# Levels: every output path, as a loudness meter hears it",
        "",
        f"Measured with `{command}` on {report['date']} in {report['seconds']:.0f} s; versions: "
        + ", ".join(f"{stage} `{version}`" for stage, version in report["versions"].items()) + ". All numbers: `levels.json`.",
        "",
        "| rule | measured | met |",
        "|---|---|---|",
        f"| no clip below -30 LUFS | {s['below_floor']} of {s['clips']} | {'yes' if s['below_floor'] == 0 else '**no**'} |",
        f"| no 1-second stretch below -60 dBFS | {s['with_dead_air']} clips with one | {'yes' if s['with_dead_air'] == 0 else '**no**'} |",
        f"| every clip within 2 LU of its target | {s['off_target']} off; largest error {s['loudness_error_lu_max']:.2f} LU | {'yes' if s['off_target'] == 0 else '**no**'} |",
        f"| true peak <= -1 dBTP (clips) | highest {s['true_peak_dbtp_max']:.2f} dBTP | {'yes' if s['over_true_peak'] == 0 else '**no**'} |",
    ]
    if s["streams"]:
        lines += [
            f"| true peak <= -1 dBTP (streams) | highest {s['stream_true_peak_dbtp_max']:.2f} dBTP | {'yes' if s['stream_true_peak_dbtp_max'] <= -1 else '**no**'} |",
            f"| no dead air in the streams | {s['stream_dead_air_seconds']:.1f} s | {'yes' if s['stream_dead_air_seconds'] == 0 else '**no**'} |",
            f"| no level jump above 3 dB across a stream chunk join: short-term loudness (3 s) from one join to the next | "
            f"{s['stream_short_term_steps_over_3db']} of {s['stream_short_term_steps']} steps; largest {s['stream_short_term_step_db_max']:.2f} dB | "
            f"{'yes' if s['stream_short_term_steps_over_3db'] == 0 else '**no**'} |",
            f"| the mastering's gain across a join (output over input, median of 10 ms each side) | largest step {s['stream_gain_step_db_max']:.2f} dB "
            f"(the same reading mid-chunk, where no join is: {s['stream_gain_step_mid_chunk_db_max']:.2f} dB) | |",
            f"| RMS of the 50 ms either side of a join, for scale | {s['stream_joins_over_3db']} of {s['stream_joins']} joins differ by more than 3 dB; "
            f"mid-chunk, where no join is, {s['stream_mid_chunk_over_3db']} of {s['stream_mid_chunk_points']} (the music's own attacks) | |",
            f"| stream short-term loudness within 3 LU of the line, after the first 3 s | {100 * s['stream_short_term_within_3_lu']:.1f}% of 0.5 s steps | |",
        ]
    lines += ["", "| kind | mood | seed | seconds | LUFS | target | dBTP | dead air s |", "|---|---|---|---|---|---|---|---|"]
    for r in report["clips"]:
        lines.append(f"| {r['kind']} | {r['mood']} | {r['seed']} | {r['seconds']:g} | {r['loudness_lufs']} | {r['target_lufs']} | {r['true_peak_dbtp']} | {r['dead_air_seconds']} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="a few short clips and one 8 s stream (CI)")
    parser.add_argument("--out", help="folder for levels.json and levels.md (default docs; with --quick runs/levels-quick)")
    parser.add_argument("--checkpoints", help="a checkpoints folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")


def run(args: argparse.Namespace) -> int:
    import torch

    from moodmusic.commandline import command_line
    from moodmusic.pipeline import load_pipeline

    torch.set_num_threads(args.threads)
    config = LevelsConfig.quick() if args.quick else LevelsConfig()
    started = time.perf_counter()
    chain = load_pipeline(args.checkpoints)
    rows = clip_rows(chain, config, progress=True)
    streams = [stream_row(chain, STREAM_ROUTES[i % len(STREAM_ROUTES)], i, config) for i in range(config.streams)]
    report = {"date": datetime.date.today().isoformat(), "config": vars(args) | {"levels": config.__dict__}, "versions": chain.versions,
              "summary": summarise(rows, streams), "streams": streams, "clips": rows, "seconds": time.perf_counter() - started}  # fmt: skip
    out = Path(args.out or ("runs/levels-quick" if args.quick else "docs"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "levels.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (out / "levels.md").write_text(markdown(report, command_line(args)))
    print(json.dumps(report["summary"], indent=2))
    return 0
