"""The runnable examples in the docstrings of the shared modules and of each stage's API (load, generate, render,
analyze, narrate, compose; the stages' model classes) run as doctests: an example that no longer holds fails here.
The stage examples load the shipped checkpoints."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "moodmusic.mood", "moodmusic.mel", "moodmusic.tonality", "moodmusic.loops", "moodmusic.loopfiles", "moodmusic.tempo", "moodmusic.runs",
    "moodmusic.generator.inference", "moodmusic.generator.model", "moodmusic.vocoder.model", "moodmusic.classifier.inference",
    "moodmusic.classifier.model", "moodmusic.narrator", "moodmusic.pipeline",
]  # fmt: skip


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
