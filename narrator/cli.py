"""`moodmusic narrate FILE`: analyse an audio file and tell in words what it feels like.

`--analysis-json PATH` narrates a saved analysis (the JSON of `Analysis.as_dict()`, or the output of
`moodmusic narrate --json`) without the classifier. The narrator is the one the environment
configures (MOODMUSIC_NARRATOR, see docs/narrator.md) unless `--narrator` names one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="audio file to analyse and narrate")
    parser.add_argument("--analysis-json", metavar="PATH", default="", help="narrate a saved analysis (JSON) instead of analysing audio")
    parser.add_argument("--seed", type=int, default=0, help="seed of the wording: same seed, same text (default: 0)")
    parser.add_argument("--json", action="store_true", help="print the analysis and the narration as JSON")
    parser.add_argument(
        "--narrator", choices=("template", "openai", "llama-cpp"), default="",
        help="override MOODMUSIC_NARRATOR for this call (the other MOODMUSIC_LLM_* settings still apply)",
    )  # fmt: skip


def load_analysis(path: str):
    from moodmusic.analysis import Analysis

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SystemExit(f"no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read an analysis from {path}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("analysis"), dict):  # output of `narrate --json`
        data = data["analysis"]
    try:
        return Analysis.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SystemExit(f"{path} is not an analysis (Analysis.as_dict() JSON): {type(exc).__name__}: {exc}") from None


def analyse(path: str):
    """Run the classifier on an audio file; a clear exit when it is not available yet."""
    if not Path(path).is_file():
        raise SystemExit(f"no such file: {path}")
    hint = "narrate a saved analysis with --analysis-json PATH instead"
    try:
        from moodmusic import classifier
    except ImportError as exc:
        raise SystemExit(f"the classifier cannot be imported ({exc}); {hint}") from None
    load = getattr(classifier, "load", None)
    if load is None:
        raise SystemExit(f"the classifier is not available yet (classifier.load is missing); {hint}")
    try:
        model = load()
    except Exception as exc:  # no shipped checkpoint yet, or one that does not load
        raise SystemExit(f"no classifier checkpoint could be loaded ({type(exc).__name__}: {exc}); {hint}") from None
    return model.analyze(path)


def run(args: argparse.Namespace) -> int:
    import os

    from moodmusic.narrator import NarratorConfigError, config_from_env, from_config, narrate

    if bool(args.file) == bool(args.analysis_json):
        raise SystemExit("give either an audio FILE or --analysis-json PATH")
    analysis = load_analysis(args.analysis_json) if args.analysis_json else analyse(args.file)
    try:
        config = config_from_env()
        if args.narrator:
            from dataclasses import replace

            config = replace(config, kind=args.narrator)
        narrator = from_config(config, dict(os.environ))
    except NarratorConfigError as exc:
        raise SystemExit(f"narrator configuration: {exc}") from None
    narration = narrate(analysis, seed=args.seed, narrator=narrator)
    if args.json:
        print(json.dumps({"analysis": analysis.as_dict(), "narration": narration.as_dict()}, indent=2))
    else:
        overall = analysis.overall
        palette = ", ".join(f"{mood} {100 * weight:.0f}%" for mood, weight in overall.ranked_moods())
        print(f"mood: {palette} (valence {overall.valence:+.2f}, arousal {overall.arousal:+.2f}, {overall.quadrant})")
        print()
        print(narration.narrative)
        print()
        print("Recommendations:")
        for item in narration.recommendations:
            print(f"  - {item}")
        print(f"Visual prompt: {narration.visual_prompt}")
        print(f"(narrator: {narration.narrator})")
    if narration.fallback_reason:
        print(f"note: the template narrator answered because {narration.fallback_reason}", file=sys.stderr)
    return 0
