"""The tempo grid, and the warp that puts music's beats on it (moodmusic.tempo)."""

from __future__ import annotations

import numpy as np
import pytest

from moodmusic.mel import FRAMES_PER_SECOND, LOG_FLOOR, N_MELS
from moodmusic.tempo import Grid, fit_to_grid, mood_tempo


def test_grid_lines_and_whole_bars():
    grid = Grid(bpm=90, beats_per_bar=3)  # beats of 2/3 s, bars of 2 s
    assert grid.beats(4.0) == pytest.approx([0, 2 / 3, 4 / 3, 2, 8 / 3, 10 / 3])
    assert grid.bars(4.0) == pytest.approx([0, 2])
    assert grid.next_line(2.0, "bar") == 2.0 and grid.next_line(2.01, "bar") == 4.0 and grid.next_line(2.01, "beat") == pytest.approx(8 / 3)
    assert grid.whole_bars(7.0) == 4 and grid.whole_bars(0.2) == 1 and grid.whole_bars(130, at_most=120) == 60
    assert grid.bar_samples(3, 48000) == 288000
    window = grid.in_window(1.9, 0.5)
    assert window["beats"] == pytest.approx([0.1]) and window["bars"] == pytest.approx([0.1])
    for bad in (dict(bpm=39), dict(bpm=241), dict(bpm=float("nan")), dict(bpm=120, beats_per_bar=1), dict(bpm=True)):
        with pytest.raises(ValueError):
            Grid(**bad)


def test_the_moods_tempo_is_slow_when_calm_and_fast_when_excited():
    assert mood_tempo(0, 0) == 85 and mood_tempo(-0.8, -0.8) < 60 < 130 < mood_tempo(0.8, 0.8)
    assert Grid.for_mood(0.8, 0.8).bpm == mood_tempo(0.8, 0.8) and Grid.for_mood(0.8, 0.8, bpm=100, beats_per_bar=3).bar_seconds == pytest.approx(1.8)


def click_mel(seconds: float, bpm: float, jitter_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A log-mel of broadband clicks at `bpm`, each moved by up to `jitter_s` (a loose human pulse), and their frames."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * FRAMES_PER_SECOND)
    mel = np.full((N_MELS, frames), LOG_FLOOR, dtype=np.float32)
    times = np.arange(0.3, seconds, 60 / bpm) + rng.uniform(-jitter_s, jitter_s, size=np.arange(0.3, seconds, 60 / bpm).size)
    onsets = np.round(times * FRAMES_PER_SECOND).astype(int)
    onsets = onsets[onsets < frames - 3]
    for f in onsets:
        mel[:, f : f + 3] = np.array([1.0, 0.0, -1.0], dtype=np.float32)  # a click, then its decay
    return mel, onsets


@pytest.mark.parametrize("music_bpm, grid_bpm", [(100, 100), (112, 100), (60, 120), (150, 74)])
def test_the_warp_puts_a_loose_pulse_on_the_grid(music_bpm, grid_bpm):
    mel, _ = click_mel(24.0, music_bpm, jitter_s=0.03)
    grid = Grid(grid_bpm)
    out = fit_to_grid(mel, grid, round(16 * FRAMES_PER_SECOND))
    onsets = np.flatnonzero((out[0, 1:] > 0.5) & (out[0, :-1] < 0.5)) + 1  # the clicks' first frames in the warped mel
    line = 60 / grid_bpm * FRAMES_PER_SECOND / (2 if grid_bpm < 80 else 1)  # under 80 bpm the pulse is aligned in eighths
    assert onsets.size >= 8
    distance = np.abs(onsets - np.round(onsets / line) * line)
    assert np.median(distance) <= 1.0  # on the grid's lines, within a frame (11.6 ms); the raw clicks were up to 30 ms off
    raw = np.flatnonzero((mel[0, 1:] > 0.5) & (mel[0, :-1] < 0.5)) + 1
    assert np.median(np.abs(raw - np.round(raw / line) * line)) > 1.0  # and before the warp they were not
