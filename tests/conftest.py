"""Shared helpers: small synthetic audio that tests make themselves."""

from __future__ import annotations

import numpy as np
import pytest

from moodmusic.mel import SAMPLE_RATE


def tone(seconds: float = 1.0, frequency: float = 440.0, amplitude: float = 0.3, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture
def make_tone():
    return tone
