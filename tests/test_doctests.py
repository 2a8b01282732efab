"""The runnable examples in the docstrings of the shared modules run as doctests: an example that no longer
holds fails here."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["moodmusic.mood", "moodmusic.mel", "moodmusic.tonality", "moodmusic.loops", "moodmusic.loopfiles", "moodmusic.tempo"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
