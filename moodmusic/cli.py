"""The `moodmusic` command line: one subcommand per job.

Each stage owns its command's arguments and work in its own package (`corpus.cli`,
`classifier.cli`, ...; the whole chain's `generate` in `moodmusic.generate`); this module only
assembles the parser. Those `cli` modules import torch and the models inside `run`, so building the
parser stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

# (command path, module that defines `add_arguments(parser)` and `run(args)`, help)
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("corpus", "build"), "moodmusic.corpus.cli", "render the mood-labelled training corpus from music21's scores"),
    (("corpus", "annotate"), "moodmusic.corpus.annotate", "add cue tracks (where the graded valence cues sound) to a corpus built before they existed"),
    (("corpus", "real"), "moodmusic.corpus.real", "cut weakly labelled excerpts of the real game soundtracks Debian ships (the real-music evaluation set)"),
    (("corpus", "check"), "moodmusic.corpus.audibility", "measure that the corpus labels are audible, without using them"),
    (("corpus", "rerender"), "moodmusic.vocoder.rerender", "pass a corpus through a vocoder (audio -> mel -> audio): the renderer's marks, to train the classifier on"),
    (("narrate",), "moodmusic.narrator.cli", "analyse an audio file (or a saved analysis) and tell in words what it feels like"),
    (("bench", "narrator"), "moodmusic.narrator.bench", "time the template narrator and measure its acceptance properties"),
    (("train", "classifier"), "moodmusic.classifier.train", "train the mood classifier (CRNN) with accelerate"),
    (("analyze",), "moodmusic.classifier.cli", "analyse audio files or folders: valence, arousal, moods, timeline"),
    (("evaluate", "classifier"), "moodmusic.classifier.evaluate", "held-out, cross-timbre and speed measurements -> docs/classifier.md"),
    (("train", "vocoder"), "moodmusic.vocoder.cli", "train (or resume) the HiFi-GAN vocoder with accelerate"),
    (("train", "generator"), "moodmusic.generator.train", "train (or resume) the autoregressive conditional GAN with accelerate"),
    (("train", "critic"), "moodmusic.generator.critic", "train the mode critic (major or minor, from the mel) that guides the generator's training (not shipped)"),
    (("generate",), "moodmusic.generate", "compose a clip for a mood (or a trajectory): WAV, mel, analysis and narration"),
    (("bank",), "moodmusic.games.bank", "render a bank of seamless loops over the mood square for game middleware"),
    (("evaluate", "vocoder"), "moodmusic.vocoder.evaluate", "copy-synthesis vs Griffin-Lim, speed and streaming -> docs/vocoder.md"),
    (("serve",), "moodmusic.server.cli", "the HTTP service: clips by mood, analysis and narration, a web page (FastAPI + uvicorn)"),
    (("evaluate", "chain"), "moodmusic.evaluation.closed_loop", "closed loop: a mood grid through the whole chain, heard and judged -> docs/evaluation.md"),
    (("evaluate", "levels"), "moodmusic.evaluation.levels", "loudness, true peak and dead air of clips, loops, stingers and live streams -> docs/levels.md"),
    (("evaluate", "folder"), "moodmusic.evaluation.folder", "the classifier's report on any folder of audio: per-file analysis and the mood-square distribution"),
    (("bench", "all"), "moodmusic.evaluation.bench", "speed of every stage and of the chain, classifier throughput, streaming -> docs/benchmarks.md"),
]

# A group named without its subcommand runs this one: `moodmusic evaluate --quick` is the closed loop,
# `moodmusic bench` the whole benchmark (both spellings work).
DEFAULT_SUBCOMMANDS = {"evaluate": "chain", "bench": "all"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moodmusic", description="Mood-conditioned music generation, analysis and narration.")
    groups: dict[str, argparse._SubParsersAction] = {}
    top = parser.add_subparsers(dest="command", required=True)
    for path, module_name, help_text in COMMANDS:
        actions, name = top, path[-1]
        if len(path) == 2:
            group = path[0]
            if group not in groups:
                group_parser = top.add_parser(group, help=f"{group} commands")
                groups[group] = group_parser.add_subparsers(dest=f"{group}_command", required=True)
            actions = groups[group]
        sub = actions.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(sub)
    return parser


def with_default_subcommand(argv: list[str]) -> list[str]:
    if argv and argv[0] in DEFAULT_SUBCOMMANDS:
        rest = argv[1:]
        if not rest or (rest[0].startswith("-") and rest[0] not in ("-h", "--help")):
            return [argv[0], DEFAULT_SUBCOMMANDS[argv[0]], *rest]
    return argv


def _input_errors() -> tuple[type[Exception], ...]:
    """The errors that mean "your data or checkpoint folder is not usable", not a bug: a message is enough.
    Evaluated only when an exception is on its way out, so this module never imports torch for it."""
    from moodmusic.corpus.loaders import DatasetError

    checkpoints = sys.modules.get("moodmusic.checkpoints")  # loaded by any command that read a checkpoint
    return (DatasetError,) + ((checkpoints.CheckpointError,) if checkpoints else ())


def main(argv: list[str] | None = None) -> int:
    argv = with_default_subcommand(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    args.command_line = "moodmusic " + shlex.join(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except _input_errors() as error:
        print(f"moodmusic: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
