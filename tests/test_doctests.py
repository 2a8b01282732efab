"""The runnable examples in docstrings run as doctests: the shared modules, each stage's API (load, generate, render,
analyze, narrate, compose; the stages' model classes and data), and the server's pool, settings and rate limiter.
An example that no longer holds fails here. The stage examples load the shipped checkpoints."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "moodmusic.mood", "moodmusic.mel", "moodmusic.tonality", "moodmusic.loops", "moodmusic.loopfiles", "moodmusic.tempo", "moodmusic.runs",
    "moodmusic.generator.inference", "moodmusic.generator.model", "moodmusic.generator.data", "moodmusic.vocoder.model", "moodmusic.classifier.inference",
    "moodmusic.classifier.model", "moodmusic.narrator", "moodmusic.pipeline",
    "moodmusic.server.workers", "moodmusic.server.settings", "moodmusic.server.security",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
