"""`moodmusic bench all`: how fast every stage and the whole chain run here -> docs/benchmarks.md.

Each figure is the median of N runs after one warm-up, with its real-time factor (seconds of compute
per second of audio; below 1 is faster than real time) and the peak resident memory of the process
while it ran (sampled with psutil every 5 ms when it is installed, else the process's lifetime peak
from `resource`). Figures, with the targets the other issues set:
- generator: the mel of a 10 s clip (<= 0.3 s); vocoder: 10 s of audio from its mel (<= 0.5 s);
  both: the audio of a 10 s clip (<= 1 s);
- classifier (`classifier.evaluate.benchmark`): one 3 s window (<= 10 ms), 60 s with its timeline
  (<= 0.5 s), throughput in windows per second at batch 1, 16, 64 and 256;
- narrator (`narrator.bench.timing`): the template narrator's p95 (<= 5 ms);
- the chain: `Pipeline.compose` of 10 s with verify and narrate; `Pipeline.analyze` of a 60 s WAV file
  (decode, classify, narrate);
- streaming in process (the ceiling of `WS /v1/stream`): time to first audio (<= 300 ms) and 4 streams
  generated side by side for 60 s, each checked to stay ahead of real-time playback;
- the server under load: `python -m moodmusic.evaluation.load_test` (and `moodmusic.evaluation.stream_load`),
  when `--load-test` is given.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from moodmusic.mel import FRAMES_PER_SECOND, SAMPLE_RATE

# The load drivers, run as their own processes (`python -m ...`): they ship with the package.
LOAD_TEST_MODULE = "moodmusic.evaluation.load_test"
STREAM_TEST_MODULE = "moodmusic.evaluation.stream_load"
# (section, key, comparison, threshold, unit, wording): the speed targets of issues 3, 4, 6, 7 and 9.
TARGETS = (
    ("generator", "median_s", "<=", 0.3, "s", "generator: mel of a 10 s clip <= 0.3 s"),
    ("vocoder", "median_s", "<=", 0.5, "s", "vocoder: 10 s of audio from its mel <= 0.5 s"),
    ("generate_and_vocode", "median_s", "<=", 1.0, "s", "generator + vocoder: audio of a 10 s clip <= 1 s"),
    ("classifier", "window_3s_model_ms", "<=", 10.0, "ms", "classifier: one 3 s window <= 10 ms"),
    ("classifier", "file_60s_with_timeline_s", "<=", 0.5, "s", "classifier: 60 s with timeline <= 0.5 s"),
    ("narrator", "p95_ms", "<=", 5.0, "ms", "narrator: template p95 <= 5 ms"),
    ("streaming", "time_to_first_audio_s", "<=", 0.3, "s", "stream: time to first audio <= 300 ms"),
    ("streaming", "min_lead_s", ">=", 0.0, "s", "4 concurrent streams stay ahead of real time"),
    ("loops", "jump_pass_rate", ">=", 1.0, "", "loops: seam sample jump <= the clip's 99.9th percentile jump (share of loops)"),
    ("loops", "rms_pass_rate", ">=", 1.0, "", "loops: RMS 0.5 s before and after the seam within 3 dB (share of loops)"),
    ("server_load", "clip_p50_s", "<=", 1.5, "s", "server: POST /v1/clips 10 s, verify + narrate, p50 at concurrency 4 <= 1.5 s"),
    ("server_load", "analyze_p50_s", "<=", 1.0, "s", "server: POST /v1/analyze 60 s file, p50 at concurrency 4 <= 1 s"),
    ("server_alone", "clip_p50_s", "<=", 1.5, "s", "server: POST /v1/clips 10 s, verify + narrate, p50 one request at a time <= 1.5 s"),
    ("server_alone", "analyze_p50_s", "<=", 1.0, "s", "server: POST /v1/analyze 60 s file, p50 one request at a time <= 1 s"),
    ("server_streams", "min_lead_s", ">=", 0.0, "s", "server: 4 WS /v1/stream streams x 60 s, every chunk ahead of playback"),
    ("server_streams", "rss_growth_mb", "<=", 50.0, "MB", "server: RSS during the streams flat (last 10 s vs first 10 s)"),
)
# The load figure (concurrency 4) and the same requests one at a time: on 2 cores, four
# concurrent requests queue behind each other, so both are shown.
SEQUENTIAL_LOAD_ARGS = "--requests 100 --concurrency 1"  # the script compares memory over the first and last 50


@dataclass(frozen=True)
class BenchConfig:
    """What `moodmusic bench all` measures and how often; `quick()` gives the small sizes the tests use."""

    repeats: int = 5  # runs per figure after a warm-up; the median is reported
    seconds: float = 10.0  # clip length for the generator, vocoder and compose figures
    analysis_seconds: float = 60.0  # length of the file analysed end to end
    narrator_calls: int = 1000
    streams: int = 4
    stream_seconds: float = 60.0  # audio each concurrent stream must deliver
    threads: int = 2
    mood: str = "calm"
    load_test: bool = False
    load_test_args: str = ""  # passed to python -m moodmusic.evaluation.load_test

    @classmethod
    def quick(cls, **overrides: Any) -> BenchConfig:
        """Small sizes for tests: every section present, figures meaningless against the targets."""
        return cls(**{"repeats": 1, "analysis_seconds": 10.0, "narrator_calls": 20, "stream_seconds": 2.0, "seconds": 4.0, **overrides})


class PeakMemory:
    """Peak resident memory (MB) while the block runs, of this process or of process `pid`; psutil sampling,
    else this process's lifetime peak. `rise_mb`: the peak over the level at the start."""

    def __init__(self, interval: float = 0.005, pid: int | None = None):
        self.interval = interval
        self.pid = pid
        self.peak_mb: float | None = None
        self.start_mb: float | None = None
        self.source = "psutil"
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        try:
            import psutil

            self._process = psutil.Process(self.pid)
        except ImportError:
            self._process = None
            self.source = "resource (process lifetime peak)"
        if self._process is not None:
            self.peak_mb = self.start_mb = self._process.memory_info().rss / 2**20
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        if self._process is not None:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)
        else:
            import resource

            self.peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux

    @property
    def rise_mb(self) -> float | None:
        return None if self.start_mb is None or self.peak_mb is None else self.peak_mb - self.start_mb


def measure(function: Callable[[int], Any], repeats: int, audio_seconds: float | None = None) -> dict:
    """Median (and spread) of `repeats` calls function(run_index) after one warm-up, its peak memory and real-time factor."""
    function(-1)
    times = []
    with PeakMemory() as memory:
        for index in range(repeats):
            started = time.perf_counter()
            function(index)
            times.append(time.perf_counter() - started)
    result = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": repeats, "peak_rss_mb": memory.peak_mb}
    if audio_seconds:
        result["audio_seconds"] = audio_seconds
        result["real_time_factor"] = result["median_s"] / audio_seconds
    return result


def bench_streams(pipeline, config: BenchConfig) -> dict:
    """Time to first audio of one stream, then `streams` streams generated round-robin in this process.

    A stream plays from its first audio on, without a buffer; it is ahead of real time while every
    piece of audio is ready before playback reaches it. min_lead_s is the smallest margin over all pieces
    of all streams (negative: an underrun of that many seconds).
    """
    moods = [(0.6, -0.6), (-0.6, 0.6), (0.6, 0.6), (-0.6, -0.6)]

    def first_audio(seed: int) -> float:
        started = time.perf_counter()
        session, stream = pipeline.generator.session(config.mood, seed=seed), pipeline.vocoder.stream()
        while stream.push(session.next_slice()).numel() == 0:
            pass
        return time.perf_counter() - started

    first_audio(0)  # warm-up
    ttfa = statistics.median(first_audio(seed) for seed in range(1, 1 + max(3, config.repeats)))
    sessions = [pipeline.generator.session(moods[i % len(moods)], seed=i) for i in range(config.streams)]
    streams = [pipeline.vocoder.stream() for _ in range(config.streams)]
    delivered = [0.0] * config.streams  # seconds of audio out
    playback_start: list[float | None] = [None] * config.streams
    lead = float("inf")
    with PeakMemory() as memory:
        started = time.perf_counter()
        while min(delivered) < config.stream_seconds:
            for index, (session, stream) in enumerate(zip(sessions, streams)):
                if delivered[index] >= config.stream_seconds:
                    continue
                audio = stream.push(session.next_slice())
                now = time.perf_counter()
                if audio.numel() == 0:
                    continue
                if playback_start[index] is None:
                    playback_start[index] = now
                else:  # this piece plays once the audio before it has played
                    lead = min(lead, playback_start[index] + delivered[index] - now)
                delivered[index] += audio.numel() / SAMPLE_RATE
        wall = time.perf_counter() - started
    return {
        "time_to_first_audio_s": ttfa,
        "streams": config.streams,
        "seconds_per_stream": config.stream_seconds,
        "slice_seconds": pipeline.generator.slice_frames / FRAMES_PER_SECOND,
        "wall_s": wall,
        "aggregate_real_time_factor": wall / sum(delivered),
        "min_lead_s": lead if lead != float("inf") else None,
        "peak_rss_mb": memory.peak_mb,
    }


def bench_loops(pipeline, config: BenchConfig) -> dict:
    """Seams of loops over a 3 x 3 mood grid x 2 seeds (the two loop-seam criteria, moodmusic.loops.seam_metrics)."""
    from moodmusic.loops import seam_metrics
    from moodmusic.mood import grid_points

    points = grid_points(2, 2) if config.repeats == 1 else grid_points(3, 3)
    seams = []
    for _, _, valence, arousal in points:
        for seed in (0, 1):
            clip = pipeline.compose((valence, arousal), config.seconds, seed, verify=False, narrate=False, loop=True)
            seams.append({"valence": valence, "arousal": arousal, "seed": seed, **seam_metrics(clip.audio)})
    differences = [s["rms_difference_db"] for s in seams]
    return {
        "loops": len(seams), "seconds": config.seconds,
        "jump_pass_rate": float(np.mean([s["seam_jump"] <= s["p999_jump"] for s in seams])),
        "rms_pass_rate": float(np.mean([d <= 3.0 for d in differences])),
        "median_rms_difference_db": float(np.median(differences)), "max_rms_difference_db": float(np.max(differences)),
        "seams": seams,
    }  # fmt: skip


def package_env() -> dict[str, str]:
    """The environment for a child `python -m moodmusic...`: it imports this same moodmusic (a checkout or
    an installed copy), whatever the current folder is, with the folder that holds the package first on its path."""
    import moodmusic

    env = dict(os.environ)
    holder = str(Path(moodmusic.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([holder, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_load_test(args: str, checkpoints: str | None = None, module: str = LOAD_TEST_MODULE) -> dict:
    """`python -m moodmusic.evaluation.load_test` (the server under a bounded loopback load) or
    `moodmusic.evaluation.stream_load` (live streams through the server): its summary, read from its --json file."""
    import importlib.util
    import shlex

    if importlib.util.find_spec(module) is None:
        return {"available": False, "reason": f"{module} cannot be imported"}
    extra = shlex.split(args)
    if checkpoints and not {"--url", "--tiny", "--checkpoints"} & set(extra):
        extra += ["--checkpoints", checkpoints]  # load the same models the other figures measured
    with tempfile.TemporaryDirectory() as folder:
        summary_path = Path(folder) / "load.json"
        command = [sys.executable, "-m", module, *extra, "--json", str(summary_path)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=package_env())
        output: dict[str, Any] = {"available": True, "command": shlex.join(["python", "-m", module, *extra]), "returncode": result.returncode}
        if summary_path.exists():
            output["summary"] = {k: v for k, v in json.loads(summary_path.read_text()).items() if k != "results"}  # not every request
            for route in ("clip", "analyze"):  # flat keys for the acceptance table
                output[f"{route}_p50_s"] = output["summary"].get("routes", {}).get(route, {}).get("p50_s")
            if module == STREAM_TEST_MODULE:
                rss = output["summary"]["server_rss_mb"]
                output["min_lead_s"] = output["summary"]["min_lead_s"]
                output["rss_growth_mb"] = None if rss["first"] is None or rss["last"] is None else rss["last"] - rss["first"]
        else:
            output["stdout_tail"], output["stderr_tail"] = result.stdout[-4000:], result.stderr[-4000:]
    return output


def load_test_markdown(summary: dict, module: str = LOAD_TEST_MODULE) -> str:
    """The load driver's own table (one way to show its figures), or its JSON if the driver cannot be imported."""
    import importlib

    try:
        return importlib.import_module(module).markdown(summary)
    except Exception:  # a script that changed shape: the figures still go in, as JSON
        return "```\n" + json.dumps(summary, indent=2) + "\n```"


def bench(pipeline, config: BenchConfig, progress: Callable[[str], None] = lambda stage: None, checkpoints: str | None = None) -> dict:
    import torch

    from moodmusic.classifier.evaluate import benchmark as classifier_benchmark
    from moodmusic.audio import write_wav
    from moodmusic.narrator.bench import timing as narrator_timing

    torch.set_num_threads(config.threads)
    seconds = config.seconds
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "config": asdict(config),
        "versions": pipeline.versions,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine(),
                    "python": platform.python_version(), "torch": torch.__version__},  # fmt: skip
    }
    progress("generator")
    results["generator"] = measure(lambda i: pipeline.generator.generate(config.mood, seconds, seed=i), config.repeats, seconds)
    mel = pipeline.generator.generate(config.mood, seconds, seed=0)
    progress("vocoder")
    results["vocoder"] = measure(lambda i: pipeline.vocoder.render(mel), config.repeats, seconds)
    results["generate_and_vocode"] = measure(lambda i: pipeline.render(pipeline.generator.generate(config.mood, seconds, seed=i)), config.repeats, seconds)
    progress("classifier")
    with PeakMemory() as memory:
        results["classifier"] = classifier_benchmark(pipeline.classifier, repeats=max(5, 4 * config.repeats))
    results["classifier"]["peak_rss_mb"] = memory.peak_mb
    progress("narrator")
    with PeakMemory() as memory:
        narration = narrator_timing(config.narrator_calls)
    results["narrator"] = {"calls": narration["calls"], **narration["template"], "peak_rss_mb": memory.peak_mb}
    progress("compose")
    compose_timings: list[dict] = []

    def compose(index: int) -> None:
        compose_timings.append(pipeline.compose(config.mood, seconds, seed=index, verify=True, narrate=True).timings)

    results["compose"] = measure(compose, config.repeats, seconds)
    results["compose"]["stages_median_s"] = {k: statistics.median(t[k] for t in compose_timings[1:]) for k in compose_timings[-1]}
    progress("analysis")
    clip = pipeline.render(pipeline.generator.generate(config.mood, seconds, seed=0))  # music, repeated to the file's length
    samples = np.tile(clip, int(np.ceil(config.analysis_seconds * SAMPLE_RATE / clip.size)))[: int(config.analysis_seconds * SAMPLE_RATE)]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "analysis.wav"
        write_wav(path, samples)
        results["analysis"] = measure(lambda i: pipeline.analyze(path, seed=max(i, 0)), config.repeats, config.analysis_seconds)
    progress("streaming")
    results["streaming"] = bench_streams(pipeline, config)
    progress("loops")
    results["loops"] = bench_loops(pipeline, config)
    if config.load_test:
        progress("server load test")
        results["server_load"] = run_load_test(config.load_test_args, checkpoints)
        if not config.load_test_args:
            results["server_alone"] = run_load_test(SEQUENTIAL_LOAD_ARGS, checkpoints)
        progress("server streams")
        results["server_streams"] = run_load_test(f"--streams {config.streams} --seconds {config.stream_seconds:g}", checkpoints, STREAM_TEST_MODULE)
    else:
        results["server_load"] = {"available": False, "reason": "not run (pass --load-test)"}
    results["acceptance"] = acceptance(results, config)
    return results


def acceptance(results: dict, config: BenchConfig) -> dict:
    """Each target with its measured value (scaled to 10 s of audio where the figure is for a clip) and whether it is met."""
    out = {}
    for section, key, comparison, threshold, unit, wording in TARGETS:
        value = results.get(section, {}).get(key)
        if value is not None and section in ("generator", "vocoder", "generate_and_vocode"):
            value = value * 10.0 / config.seconds  # the targets are for 10 s of audio
        met = None if value is None else value <= threshold if comparison == "<=" else value >= threshold
        out[f"{section}.{key}"] = {"target": wording, "measured": value, "unit": unit, "met": met}
    return out


def _ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{1000 * seconds:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MB"


def markdown(results: dict, command: str) -> str:
    config, machine = results["config"], results["machine"]
    seconds = config["seconds"]

    def stage_row(name: str, what: str, figure: dict) -> str:
        rtf = figure.get("real_time_factor")
        return f"| {name} | {what} | {_ms(figure['median_s'])} | {_ms(figure['min_s'])} - {_ms(figure['max_s'])} | {'' if rtf is None else f'{rtf:.3f}'} | {_mb(figure['peak_rss_mb'])} |"

    c, n, s = results["classifier"], results["narrator"], results["streaming"]
    versions = ", ".join(f"{k} `{v}`" for k, v in results["versions"].items())
    lines = [
        "# Benchmarks",
        "",
        f"Measured with `{command}` on {results['date']}: {machine['cpus']} CPUs ({machine['processor']}), {machine['torch_threads']} torch threads,",
        f"Python {machine['python']}, torch {machine['torch']}. Versions: {versions}. Medians of {config['repeats']} runs after a warm-up;",
        "real-time factor = compute seconds per second of audio (below 1: faster than real time); peak RSS = the process's resident",
        "memory at its highest while the figure ran (models loaded included).",
        "",
        "## Acceptance",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for row in results["acceptance"].values():
        value = row["measured"]
        unit = row["unit"]
        shown = ("n/a" if value is None else f"{value:.2f} ms" if unit == "ms" else f"{value:.3f} s" if unit == "s"
                 else f"{value:+.1f} MB" if unit == "MB" else f"{100 * value:.0f}%")  # fmt: skip
        lines.append(f"| {row['target']} | {shown} | {'n/a' if row['met'] is None else 'yes' if row['met'] else '**no**'} |")
    lines += [
        "",
        "## Stages and the chain",
        "",
        "| stage | what | median | min - max | real-time factor | peak RSS |",
        "|---|---|---|---|---|---|",
        stage_row("generator", f"mel of a {seconds:g} s clip", results["generator"]),
        stage_row("vocoder", f"{seconds:g} s of audio from its mel", results["vocoder"]),
        stage_row("generator + vocoder", f"audio of a {seconds:g} s clip", results["generate_and_vocode"]),
        stage_row("compose", f"{seconds:g} s with verify + narrate (`Pipeline.compose`)", results["compose"]),
        stage_row("analysis", f"a {config['analysis_seconds']:g} s WAV file: decode, classify, narrate (`Pipeline.analyze`)", results["analysis"]),
        "",
        "Inside compose (medians): " + ", ".join(f"{k} {_ms(v)}" for k, v in results["compose"]["stages_median_s"].items()) + ".",
        "",
        "## Classifier",
        "",
        f"One 3 s window: {c['window_3s_model_ms']:.1f} ms (model only), {c['window_3s_audio_to_analysis_ms']:.1f} ms (audio -> analysis). "
        f"60 s with its timeline: {_ms(c['file_60s_with_timeline_s'])}, of which log-mel and tonal features {_ms(c['features_60s_s'])}. Peak RSS {_mb(c['peak_rss_mb'])}.",
        "",
        "| batch | windows per second |",
        "|---|---|",
        *(f"| {batch} | {rate:,.0f} |" for batch, rate in c["throughput_windows_per_s"].items()),
        "",
        "## Narrator",
        "",
        f"Template narrator over {n['calls']} random analyses: median {n['median_ms']:.3f} ms, p95 {n['p95_ms']:.3f} ms, max {n['max_ms']:.3f} ms.",
        "",
        "## Streaming (in process)",
        "",
        f"Time to first audio (generator session + streaming vocoder, one {s['slice_seconds']:.2f} s slice at a time): {_ms(s['time_to_first_audio_s'])}.",
        f"{s['streams']} streams generated side by side, {s['seconds_per_stream']:g} s of audio each, in {s['wall_s']:.1f} s (aggregate real-time factor",
        f"{s['aggregate_real_time_factor']:.3f}); smallest lead of any piece over its playback time: "
        + ("n/a" if s["min_lead_s"] is None else f"{s['min_lead_s']:+.3f} s") + f". Peak RSS {_mb(s['peak_rss_mb'])}.",
        "This is the ceiling of `WS /v1/stream`: the server adds its own transport and scheduling.",
        "",
        "## Loop seams",
        "",
        f"{results['loops']['loops']} loops of {results['loops']['seconds']:g} s (`Pipeline.compose(loop=True)`, a mood grid x 2 seeds):",
        f"sample jump at the seam within the clip's 99.9th percentile jump in {100 * results['loops']['jump_pass_rate']:.0f}% of them;",
        f"RMS of the 0.5 s before and after the seam within 3 dB in {100 * results['loops']['rms_pass_rate']:.0f}%",
        f"(median difference {results['loops']['median_rms_difference_db']:.1f} dB, largest {results['loops']['max_rms_difference_db']:.1f} dB).",
        "",
        "## Server under load",
        "",
    ]
    for key, module in (("server_load", LOAD_TEST_MODULE), ("server_alone", LOAD_TEST_MODULE), ("server_streams", STREAM_TEST_MODULE)):
        load = results.get(key)
        if load is None:
            continue
        if not load.get("available"):
            lines.append(f"Not measured here: {load.get('reason')}.")
        elif "summary" in load:
            lines += [f"`{load['command']}` (exit {load['returncode']}):", "", load_test_markdown(load["summary"], module), ""]
        else:
            lines += [f"`{load['command']}` failed (exit {load['returncode']}):", "", "```", load["stderr_tail"] or load["stdout_tail"], "```", ""]
    lines += ["", "All figures: `benchmarks.json`.", ""]
    return "\n".join(lines)


def hostile_uploads(abuse: Path) -> str:
    """The table `scripts/upload_bombs.py` measured (abuse.md beside benchmarks.md), so the benchmark page has
    every cost figure; empty when it was not measured."""
    if not abuse.exists():
        return ""
    text = abuse.read_text().splitlines()
    table = [line for line in text if line.startswith("|")]
    said = " ".join(line for line in text[2:] if line and not line.startswith("|") and not line.startswith("#"))
    return "\n".join(["", "## Hostile uploads", "", f"From [abuse.md](abuse.md): {said}", "", *table, ""])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = BenchConfig()
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help=f"runs per figure after a warm-up (default {defaults.repeats})")
    parser.add_argument("--seconds", type=float, default=defaults.seconds, help=f"clip length (default {defaults.seconds:g})")
    parser.add_argument("--stream-seconds", type=float, default=defaults.stream_seconds, help=f"audio per concurrent stream (default {defaults.stream_seconds:g})")
    parser.add_argument("--streams", type=int, default=defaults.streams, help=f"concurrent streams (default {defaults.streams})")
    parser.add_argument("--threads", type=int, default=defaults.threads, help=f"torch threads (default {defaults.threads})")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test; figures not comparable with the targets)")
    parser.add_argument("--load-test", action="store_true", help=f"also run python -m {LOAD_TEST_MODULE} (the server under loopback load)")
    parser.add_argument("--load-test-args", default="", help=f"arguments for {LOAD_TEST_MODULE}, e.g. '--requests 200 --concurrency 4'")
    parser.add_argument("--checkpoints", help="a checkpoints folder (default: the shipped one)")
    parser.add_argument("--vocoder", help="'griffinlim', 'griffinlim-sparse' or a HiFi-GAN folder instead of the shipped vocoder")
    parser.add_argument("--out", default="docs", help="folder for benchmarks.md and benchmarks.json (default docs)")


def run(args: argparse.Namespace) -> int:
    from moodmusic.commandline import command_line
    from moodmusic.pipeline import load_pipeline

    chosen = {"repeats": args.repeats, "seconds": args.seconds, "stream_seconds": args.stream_seconds, "streams": args.streams,
              "threads": args.threads, "load_test": args.load_test, "load_test_args": args.load_test_args}  # fmt: skip
    config = BenchConfig.quick(threads=args.threads, load_test=args.load_test, load_test_args=args.load_test_args) if args.quick else BenchConfig(**chosen)
    pipeline = load_pipeline(args.checkpoints, vocoder=args.vocoder)
    results = bench(pipeline, config, progress=lambda stage: print(f"bench: {stage}", file=sys.stderr, flush=True), checkpoints=args.checkpoints)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = command_line(args)
    results["command"] = command
    (out / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "benchmarks.md").write_text(markdown(results, command) + hostile_uploads(out / "abuse.md"))
    for row in results["acceptance"].values():
        print(f"{row['target']}: {row['measured']} (met: {row['met']})")
    print(f"wrote {out / 'benchmarks.md'}")
    return 0
