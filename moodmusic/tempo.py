"""Tempo and the beat/bar grid that clips, loops, stingers and streams follow.

Game engines and audio middleware drive music with a grid: Wwise and FMOD switch at the next beat or
bar, Godot's AudioStreamInteractive takes `bpm` and `bar_beats`, loops are a whole number of bars. So
every piece of music made here has a `Grid` (a tempo, beats per bar, and where beat 0 falls), and the
music is made to follow it:

- The tempo is asked for (`bpm`, `beats_per_bar`) or chosen from the mood (`mood_tempo`: the corpus's
  own tempo cue, 85 * 2^(0.9 a + 0.1 v) beats per minute, so a calm clip is slow and an excited one fast).
- `fit_to_grid` time-warps the generator's log-mel so its beats land on the grid. It finds the music's
  own pulse (librosa's onset envelope and tempo estimate on the mel), picks the metrical level of that
  pulse nearest the asked tempo (1/3 to 3 times it: a 115 bpm pulse serves a 60 bpm grid at every other
  beat), tracks beats at that level (librosa's dynamic-programming beat tracker), and maps each beat onto
  its grid line, stretching the frames in between linearly. The warp changes timing, never pitch (it
  moves mel frames; the vocoder renders the result), and it is at most about 1.22x where the asked
  tempo falls between two levels of the music's pulse.

Times are seconds from the start of the audio; `Grid.offset_s` is where beat 0 falls (0 for clips and
loops: they start on a bar line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from moodmusic.mel import FRAMES_PER_SECOND, HOP_LENGTH, SAMPLE_RATE

MIN_BPM, MAX_BPM = 40.0, 240.0
BEATS_PER_BAR_CHOICES = (2, 3, 4, 5, 6, 7, 8, 9, 12)
DEFAULT_BEATS_PER_BAR = 4
PULSE_LEVELS = (1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0)  # metrical levels of the music's own pulse a grid may take
# Below this tempo the music is aligned at twice the grid's rate (eighth notes), the level at which listeners and
# beat trackers hear the pulse of slow music; every other aligned line is a beat of the grid.
SUBDIVIDE_BELOW_BPM = 80.0


def mood_tempo(valence: float, arousal: float) -> float:
    """The tempo for a mood, in whole beats per minute: the corpus's tempo cue (corpus/cues.py) without its jitter.

    >>> mood_tempo(0.0, 0.0), mood_tempo(-0.8, -0.8), mood_tempo(0.8, 0.8)
    (85.0, 49.0, 148.0)
    """
    return float(round(85.0 * 2.0 ** (0.9 * arousal + 0.1 * valence)))


def check_tempo(bpm: float, beats_per_bar: int) -> None:
    """ValueError with a message that says the valid range, for a tempo or meter the grid cannot take."""
    if isinstance(bpm, bool) or not isinstance(bpm, (int, float)) or not math.isfinite(bpm) or not MIN_BPM <= bpm <= MAX_BPM:
        raise ValueError(f"bpm must be between {MIN_BPM:g} and {MAX_BPM:g}, got {bpm!r}")
    if beats_per_bar not in BEATS_PER_BAR_CHOICES:
        raise ValueError(f"beats_per_bar must be one of {', '.join(map(str, BEATS_PER_BAR_CHOICES))}, got {beats_per_bar!r}")


@dataclass(frozen=True)
class Grid:
    """A tempo and a meter: where every beat and bar line falls.

    >>> grid = Grid(bpm=120, beats_per_bar=4)
    >>> grid.bar_seconds, grid.whole_bars(30.0), grid.bar_samples(15)
    (2.0, 15, 661500)
    >>> grid.next_line(2.3, "beat"), grid.next_line(2.3, "bar")
    (2.5, 4.0)
    """

    bpm: float
    beats_per_bar: int = DEFAULT_BEATS_PER_BAR
    offset_s: float = 0.0  # where beat 0 falls

    def __post_init__(self) -> None:
        check_tempo(self.bpm, self.beats_per_bar)

    @classmethod
    def for_mood(cls, valence: float, arousal: float, bpm: float | None = None, beats_per_bar: int | None = None) -> Grid:
        """The asked tempo and meter, or the mood's tempo in 4/4."""
        return cls(float(bpm) if bpm is not None else mood_tempo(valence, arousal), beats_per_bar or DEFAULT_BEATS_PER_BAR)

    @property
    def beat_seconds(self) -> float:
        return 60.0 / self.bpm

    @property
    def bar_seconds(self) -> float:
        return self.beat_seconds * self.beats_per_bar

    def whole_bars(self, seconds: float, at_most: float | None = None) -> int:
        """The whole number of bars nearest `seconds`: at least one, and no longer than `at_most` seconds (when one bar fits)."""
        bars = max(1, round(seconds / self.bar_seconds))
        if at_most is not None:
            bars = min(bars, max(1, math.floor(at_most / self.bar_seconds + 1e-9)))
        return bars

    def bar_samples(self, bars: int, sample_rate: int = SAMPLE_RATE) -> int:
        """Samples in `bars` bars, rounded to the nearest sample (so within half a sample of whole bars)."""
        return round(bars * self.bar_seconds * sample_rate)

    def beats(self, seconds: float) -> np.ndarray:
        """Times of the beats in [0, seconds)."""
        first = math.ceil(-self.offset_s / self.beat_seconds - 1e-9)
        times = self.offset_s + self.beat_seconds * np.arange(first, first + int(seconds / self.beat_seconds) + 2)
        return times[(times >= -1e-9) & (times < seconds - 1e-9)]

    def bars(self, seconds: float) -> np.ndarray:
        """Times of the bar lines in [0, seconds)."""
        beats = self.beats(seconds)
        index = np.rint((beats - self.offset_s) / self.beat_seconds).astype(int)
        return beats[index % self.beats_per_bar == 0]

    def next_line(self, t: float, unit: str = "bar") -> float:
        """The first beat (`unit="beat"`) or bar line (`"bar"`) at or after time `t`."""
        step = self.beat_seconds * (self.beats_per_bar if unit == "bar" else 1)
        if unit not in ("beat", "bar"):
            raise ValueError(f'unit must be "beat" or "bar", got {unit!r}')
        return self.offset_s + step * math.ceil((t - self.offset_s) / step - 1e-9)

    def in_window(self, start_s: float, seconds: float) -> dict[str, list[float]]:
        """The beats and bar lines within [start_s, start_s + seconds), as offsets in seconds from start_s."""
        shifted = Grid(self.bpm, self.beats_per_bar, self.offset_s - start_s)
        return {"beats": [round(float(t), 4) for t in shifted.beats(seconds)], "bars": [round(float(t), 4) for t in shifted.bars(seconds)]}

    def as_dict(self) -> dict:
        return {"bpm": self.bpm, "beats_per_bar": self.beats_per_bar, "beat_seconds": round(self.beat_seconds, 6), "bar_seconds": round(self.bar_seconds, 6)}


def _onset_envelope(mel: np.ndarray) -> np.ndarray:
    import librosa

    # center=False: our mel's frames are centred already; librosa's default would shift the envelope 4 frames late.
    return librosa.onset.onset_strength(S=mel, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, center=False)


def pulse_tempo(mel: np.ndarray) -> float:
    """The music's own tempo estimate (librosa) from a (80, T) log-mel, in beats per minute."""
    import librosa

    return float(np.atleast_1d(librosa.feature.tempo(onset_envelope=_onset_envelope(mel), sr=SAMPLE_RATE, hop_length=HOP_LENGTH))[0])


def warp_positions(mel: np.ndarray, grid: Grid, frames: int) -> np.ndarray:
    """For each of `frames` output frames, the (fractional) frame of `mel` (80, T) it takes, so that the
    music's beats fall on `grid` (beat 0 at frame 0). Positions past T - 1 mean `mel` is too short."""
    import librosa

    mel = np.asarray(mel, dtype=np.float32)
    target = grid.bpm * (2 if grid.bpm < SUBDIVIDE_BELOW_BPM else 1)  # the rate of the lines the beats are aligned to
    envelope = _onset_envelope(mel)
    own = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=envelope, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, start_bpm=target))[0])
    level = min((own * k for k in PULSE_LEVELS if MIN_BPM / 2 <= own * k <= MAX_BPM * 2), key=lambda b: abs(math.log(b / target)), default=target)
    _, beats = librosa.beat.beat_track(onset_envelope=envelope, sr=SAMPLE_RATE, hop_length=HOP_LENGTH, bpm=level, trim=False, units="frames")
    beats = np.asarray(beats, dtype=np.float64)
    out_period = 60.0 / target * FRAMES_PER_SECOND  # frames per aligned line in the output
    source_period = 60.0 / level * FRAMES_PER_SECOND
    out = np.arange(frames, dtype=np.float64)
    if beats.size < 2:  # no pulse found: a uniform stretch from the music's tempo level to the grid's
        return out * (source_period / out_period)
    # Output line k (frame k * out_period) takes source beat k; past the last, the music's own rate carries on.
    grid_frames = np.arange(beats.size) * out_period
    source = np.interp(out, grid_frames, beats)
    after = out > grid_frames[-1]
    source[after] = beats[-1] + (out[after] - grid_frames[-1]) * (source_period / out_period)
    return source


def warp(mel: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The frames of `mel` (80, T) at fractional `positions`, interpolated linearly (held at the ends)."""
    mel = np.asarray(mel, dtype=np.float32)
    source = np.clip(positions, 0, mel.shape[-1] - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, mel.shape[-1] - 1)
    weight = (source - low).astype(np.float32)
    return mel[:, low] * (1 - weight) + mel[:, high] * weight


def fit_to_grid(mel: np.ndarray, grid: Grid, frames: int) -> np.ndarray:
    """`frames` frames of `mel` (80, T), time-warped so the music's beats fall on `grid` (beat 0 at frame 0).

    `mel` should run long enough for the warp (`warp_positions` says how far it reads); past its end the last
    frame is held."""
    return warp(mel, warp_positions(mel, grid, frames))
