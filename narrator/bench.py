"""`moodmusic bench narrator`: time the template narrator and measure its acceptance properties.

Over N random analyses (valence and arousal uniform in [-1, 1], quadrant probabilities from a flat
Dirichlet, a timeline of 1-6 windows of 3 s scattered around the overall point) it reports:
- the time of `narrate()` with the template narrator: median, p95 and max, in milliseconds;
- whether the primary mood is always named, how often the secondary one is named when its weight
  is at least 0.2 (must be always), whether any narrative repeats a sentence, and how often two
  seeds give different wording for the same analysis.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moodmusic.analysis import Analysis


def random_analysis(rng: random.Random) -> Analysis:
    """A random but well-formed Analysis (standard library only, so it is cheap and reproducible)."""
    from moodmusic.analysis import Analysis, MoodReading, TimelineWindow
    from moodmusic.mood import QUADRANTS

    def dirichlet() -> dict[str, float]:
        draws = [rng.gammavariate(1.0, 1.0) + 1e-12 for _ in QUADRANTS]
        total = sum(draws)
        return {q: d / total for q, d in zip(QUADRANTS, draws)}

    def clamp(x: float) -> float:
        return max(-1.0, min(1.0, x))

    valence, arousal = rng.uniform(-1, 1), rng.uniform(-1, 1)
    spread = rng.uniform(0.0, 1.0)  # how much the windows wander around the overall point
    windows = rng.randint(1, 6)
    timeline = []
    for i in range(windows):
        reading = MoodReading.from_point(
            clamp(valence + rng.uniform(-spread, spread)), clamp(arousal + rng.uniform(-spread, spread)), dirichlet()
        )
        timeline.append(TimelineWindow(**vars(reading), start=3.0 * i, end=3.0 * (i + 1)))
    return Analysis(overall=MoodReading.from_point(valence, arousal, dirichlet()), timeline=timeline, duration=3.0 * windows)


def acceptance(n: int = 1000, seed: int = 0) -> dict:
    """The issue's acceptance properties of the template narrator over `n` random analyses."""
    from moodmusic.narrator.template import SECONDARY_NAMED, sentences, template_narration
    from moodmusic.narrator.words import names_mood

    rng = random.Random(seed)
    primary_named = secondary_cases = secondary_named = repeated = differ = 0
    sentence_counts: dict[int, int] = {}
    for i in range(n):
        analysis = random_analysis(rng)
        a, b = template_narration(analysis, seed=2 * i), template_narration(analysis, seed=2 * i + 1)
        ranked = analysis.overall.ranked_moods()
        primary_named += names_mood(a.narrative, ranked[0][0])
        if ranked[1][1] >= SECONDARY_NAMED:
            secondary_cases += 1
            secondary_named += names_mood(a.narrative, ranked[1][0])
        parts = sentences(a.narrative)
        repeated += len(parts) != len(set(parts))
        sentence_counts[len(parts)] = sentence_counts.get(len(parts), 0) + 1
        differ += a.narrative != b.narrative
    return {
        "analyses": n,
        "primary_named_rate": primary_named / n,
        "secondary_cases": secondary_cases,
        "secondary_named_rate": secondary_named / secondary_cases if secondary_cases else 1.0,
        "narratives_with_repeated_sentence": repeated,
        "sentence_counts": dict(sorted(sentence_counts.items())),
        "two_seeds_differ_rate": differ / n,
    }


def timing(n: int = 1000, seed: int = 0) -> dict:
    """Milliseconds per `narrate()` call with the template narrator (explicit, and as configured by default)."""
    import statistics
    import time

    from moodmusic.narrator import TemplateNarrator, narrate

    rng = random.Random(seed)
    analyses = [random_analysis(rng) for _ in range(n)]
    narrator = TemplateNarrator()
    for analysis in analyses[:20]:  # warm up
        narrate(analysis, 0, narrator)

    def measure(explicit: bool) -> dict:
        times, cpu = [], []
        for i, analysis in enumerate(analyses):
            started, started_cpu = time.perf_counter(), time.thread_time()
            narrate(analysis, i, narrator if explicit else None)
            times.append((time.perf_counter() - started) * 1000.0)
            cpu.append((time.thread_time() - started_cpu) * 1000.0)
        times.sort()
        return {
            "median_ms": statistics.median(times),
            "p95_ms": times[min(len(times) - 1, int(0.95 * len(times)))],
            "max_ms": times[-1],
            "mean_ms": statistics.fmean(times),
            # CPU time of the calling thread: the narrator's own cost, without preemption by other processes
            "cpu_max_ms": max(cpu),
        }

    return {"calls": n, "template": measure(True), "default_from_env": measure(False)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=1000, help="random analyses (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random analyses")
    parser.add_argument("--out", default="", help="also write the numbers to this JSON file")
    parser.add_argument("--budget-ms", type=float, default=5.0, help="fail when the p95 exceeds this (default: 5 ms)")


def run(args: argparse.Namespace) -> int:
    import os
    import platform

    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    if os.environ.get("MOODMUSIC_NARRATOR", "template").strip().lower() not in ("", "template"):
        print(f"note: MOODMUSIC_NARRATOR={os.environ['MOODMUSIC_NARRATOR']}; the default-path timing uses that narrator")
    times = timing(args.n, args.seed)
    accepted = acceptance(args.n, args.seed)
    result = {"timing": times, "acceptance": accepted, "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    t, d = times["template"], times["default_from_env"]
    print(
        f"template narrate() over {args.n} random analyses: median {t['median_ms']:.3f} ms, p95 {t['p95_ms']:.3f} ms, "
        f"max {t['max_ms']:.3f} ms wall ({t['cpu_max_ms']:.3f} ms CPU)"
    )
    print(f"narrate() as configured by the environment: median {d['median_ms']:.3f} ms, p95 {d['p95_ms']:.3f} ms")
    print(
        f"primary named {100 * accepted['primary_named_rate']:.1f}%; secondary named when weight >= 0.2: "
        f"{100 * accepted['secondary_named_rate']:.1f}% of {accepted['secondary_cases']}; "
        f"narratives repeating a sentence: {accepted['narratives_with_repeated_sentence']}; "
        f"two seeds differ: {100 * accepted['two_seeds_differ_rate']:.1f}%; sentences per narrative: {accepted['sentence_counts']}"
    )
    if args.out:
        path = Path(args.out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {path}")
    ok = (
        t["p95_ms"] <= args.budget_ms
        and accepted["primary_named_rate"] == 1.0
        and accepted["secondary_named_rate"] == 1.0
        and accepted["narratives_with_repeated_sentence"] == 0
        and accepted["two_seeds_differ_rate"] >= 0.8
    )
    if not ok:
        print("FAILED: a number is outside the issue's acceptance (p95 <= budget, 100% named, no repeats, >= 80% differ)")
    return 0 if ok else 1
