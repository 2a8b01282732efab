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
