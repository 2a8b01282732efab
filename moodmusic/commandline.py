"""Helpers the subcommands share: argument types and the command line as given.

They sit below every stage so that a stage's command can use them without importing the dispatcher
(`moodmusic.cli`, which imports every subcommand).
"""

from __future__ import annotations

import argparse
import shlex
import sys


def candidates_argument(text: str) -> int:
    """argparse type of --candidates (generate, evaluate chain, serve): a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1 (1: plain sampling), got {text!r}")
    return value


def typed_command() -> str:
    """`moodmusic ...` as this process was started (its argv)."""
    return "moodmusic " + shlex.join(sys.argv[1:])


def command_line(args: argparse.Namespace) -> str:
    """The command as given (`moodmusic ...`), for reports and manifests; also right when main() is
    called with its own argv (tests, scripts), where sys.argv is somebody else's."""
    return getattr(args, "command_line", None) or typed_command()


def add_ray_arguments(parser, what: str) -> None:
    """`--ray [ADDRESS]` and `--ray-workers N` for a long job whose work can run as Ray tasks (moodmusic.cluster)."""
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help=f"make {what} as Ray tasks: on the Ray cluster at ADDRESS, or (no ADDRESS) one started on this machine "
                        "(needs the 'scale' extra; docs/scaling.md)")  # fmt: skip
    parser.add_argument("--ray-workers", type=int, help="with --ray: chain replicas doing the work (default: the cluster's CPUs)")
