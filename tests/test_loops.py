"""Loop construction and the seam measures (moodmusic.loops)."""

import numpy as np
import pytest

from moodmusic.loops import best_loop, close_loop, rms_db, seam_difference_db, seam_metrics
from moodmusic.mel import SAMPLE_RATE


def pulsed_tone(seconds: float, seed: int = 0) -> np.ndarray:
    """A tone whose loudness pulses at 1 Hz (loud half-second, soft half-second), like a phrase with
    accents and rests: adjacent half-seconds differ by about 14 dB unless a seam falls just right."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.where((t % 1.0) < 0.5, 1.0, 0.2)
    return (0.3 * envelope * np.sin(2 * np.pi * 220 * t) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def test_seam_metrics_of_a_level_and_of_a_jumping_loop():
    steady = (0.3 * np.sin(2 * np.pi * 220 * np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE)).astype(np.float32)
    metrics = seam_metrics(steady)
    assert metrics["rms_difference_db"] < 0.1
    stepped = steady.copy()
    stepped[SAMPLE_RATE:] *= 0.1  # the second second 20 dB down: a loud start after a soft end
    assert seam_metrics(stepped)["rms_difference_db"] == pytest.approx(20.0, abs=0.2)


def test_best_loop_keeps_the_length_and_finds_a_level_seam():
    audio = pulsed_tone(5.0)
    length, crossfade, search, step = 3 * SAMPLE_RATE, SAMPLE_RATE // 2, SAMPLE_RATE, 512
    first = close_loop(audio[: length + crossfade], length, crossfade)
    loop, offset = best_loop(audio, length, crossfade, search, step)
    assert loop.size == length and offset % step == 0 and 0 <= offset <= search
    window = SAMPLE_RATE // 2
    assert abs(rms_db(first[-window:]) - rms_db(first[:window])) > 10.0  # cut at 0 s: soft end, loud start
    assert seam_metrics(loop)["rms_difference_db"] < 1.0
    metrics = seam_metrics(loop)
    assert metrics["seam_jump"] <= metrics["p999_jump"]
    with pytest.raises(ValueError):
        best_loop(audio[: length + crossfade], length, crossfade, search, step)


def test_the_search_measures_the_seam_of_the_loop_it_builds():
    audio = pulsed_tone(5.0, seed=1)
    length, crossfade, window = 3 * SAMPLE_RATE + 777, SAMPLE_RATE // 2, SAMPLE_RATE // 2
    for offset in (0, 3000, 9000, 15000):
        segment = audio[offset : offset + length + crossfade]
        loop = close_loop(segment, length, crossfade)
        built = abs(rms_db(loop[-window:]) - rms_db(loop[:window]))
        assert seam_difference_db(segment, length, crossfade, window) == pytest.approx(built, abs=1e-3)
    # and with a window shorter than the crossfade
    loop = close_loop(audio[: length + crossfade], length, crossfade)
    short = SAMPLE_RATE // 4
    assert seam_difference_db(audio[: length + crossfade], length, crossfade, short) == pytest.approx(
        abs(rms_db(loop[-short:]) - rms_db(loop[:short])), abs=1e-3)
