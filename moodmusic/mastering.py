"""Mastering: every piece of music that leaves moodmusic arrives at a level a mixer expects.

The loudness rules of the project (see docs/mastering.md) live here, and only here:

| what | rule |
|---|---|
| integrated loudness of a clip | -19 + 4 x arousal LUFS (arousal -1: -23, 0: -19, +1: -15), within 2 LU |
| the live stream | its short-term loudness follows the same line; no step above 3 dB at a chunk join |
| true peak | <= -1 dBTP (4x oversampled peak) |
| dead air | no 1-second stretch below -60 dBFS RMS (a stinger's closing fade excepted) |
| floor | nothing below -30 LUFS leaves the system |

Loudness is ITU-R BS.1770-4 integrated loudness, measured with `pyloudnorm` (a maintained, tested
implementation of the standard's K-weighting and gating). Peaks are held by `pedalboard`'s `Limiter`
(Spotify's wrapper of JUCE's limiter: two compressors and a clipper at 0 dBFS, no look-ahead, so it
streams sample-accurately with `reset=False`), whose output is scaled to a ceiling under -1 dBTP. True peak is read at 4x
oversampling with the 48-tap interpolation filter of BS.1770-4 Annex 2 (`scipy.signal.upfirdn`); where the limiter's clipper leaves an inter-sample peak above the ceiling, a
small static gain takes it under.

Mastering sets a level; it cannot make music. A clip whose generator fell silent would be boosted into
noise, so `master` refuses gains above `MAX_GAIN_DB` (`MasteringError`) and the chain never asks for
one: the generator's sampler keeps clips alive at the source (generator/sampling.py, `Liveness`).

    import numpy as np
    from moodmusic.mastering import master, measure
    audio = (0.05 * np.sin(np.linspace(0, 2000 * np.pi, 22050 * 4))).astype(np.float32)
    out = master(audio, arousal=0.5)
    round(out.loudness_lufs, 1), out.true_peak_dbtp <= -1.0        # (-17.0, True)
    measure(out.audio).dead_air_seconds                           # 0.0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from moodmusic.mel import SAMPLE_RATE

TRUE_PEAK_CEILING_DBTP = -1.0
# pedalboard's Limiter (JUCE's) is a 4:1 compressor above -10 dBFS, a 1000:1 one above `threshold_db`,
# a make-up gain of min(7.5 dB, -threshold_db) and a clipper at 0 dBFS. At a threshold of 0 dB the make-up
# is unity: peaks are held at 0 dBFS, and the output is then scaled to the sample-peak ceiling below.
LIMITER_THRESHOLD_DB = 0.0
LIMITER_RELEASE_MS = 80.0
SAMPLE_PEAK_CEILING_DB = -1.5  # inter-sample overs above -1 dBTP are then trimmed (clips) or guarded (the stream)
LOUDNESS_TOLERANCE_LU = 2.0
FLOOR_LUFS = -30.0
DEAD_AIR_DBFS = -60.0
DEAD_AIR_WINDOW_SECONDS = 1.0
STREAM_STEP_LIMIT_DB = 3.0
MAX_GAIN_DB = 45.0  # more than this would lift a generator's near-silence (about -65 LUFS) into hiss
OVERSAMPLING = 4
MIN_LOUDNESS_SECONDS = 0.4  # one BS.1770 gating block


class MasteringError(ValueError):
    """The audio cannot be mastered: silent, too short to measure, or too quiet to lift without boosting noise."""


def target_lufs(arousal: float) -> float:
    """The integrated loudness a clip of this arousal is mastered to: -19 + 4 x arousal LUFS."""
    return -19.0 + 4.0 * max(-1.0, min(1.0, float(arousal)))


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def normalise_loudness(audio: np.ndarray, lufs: float | None, measured: float | None = None, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """`audio` scaled to the integrated loudness `lufs` (no limiting: for analysis, not for listening).

    None, silence or a gain beyond MAX_GAIN_DB leave it as it is (there is no music to bring up).
    `measured` is its loudness when the caller has it already.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if lufs is None:
        return audio
    measured = integrated_loudness(audio, sample_rate) if measured is None else measured
    if not math.isfinite(measured) or lufs - measured > MAX_GAIN_DB:
        return audio
    return (audio * db_to_gain(lufs - measured)).astype(np.float32)


_METERS: dict[int, object] = {}


def _meter(sample_rate: int):
    import pyloudnorm

    if sample_rate not in _METERS:
        _METERS[sample_rate] = pyloudnorm.Meter(sample_rate)  # BS.1770-4 K-weighting, 400 ms blocks
    return _METERS[sample_rate]


LOUDNESS_CHUNK = 1 << 18  # samples K-weighted at a time (12 s at 22,050 Hz): the meter's memory does not grow with the input


def integrated_loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """BS.1770-4 integrated loudness in LUFS (-inf for digital silence); audio shorter than 0.4 s is padded with silence.

    pyloudnorm's meter, computed in bounded memory: its K-weighting filters run a chunk at a time (their state
    carried across chunks) and its 400 ms gating blocks (75% overlap, the same sample bounds) are summed from a
    running sum of squares, so a 600 s input needs a few MB instead of pyloudnorm's three float64 copies of it.
    Equal to `pyloudnorm.Meter(rate).integrated_loudness` within 1e-6 LU (tests/test_mastering.py).
    """
    from scipy.signal import lfilter, lfilter_zi

    audio = np.asarray(audio).reshape(-1)
    minimum = math.ceil(MIN_LOUDNESS_SECONDS * sample_rate) + 1
    if audio.size < minimum:
        audio = np.pad(audio, (0, minimum - audio.size))
    meter = _meter(sample_rate)
    block, step = meter.block_size, 1.0 - meter.overlap
    # pyloudnorm's block bounds, computed as it computes them (the same float products, then int()).
    blocks = int(np.round((audio.size / sample_rate - block) / (block * step))) + 1
    j = np.arange(blocks)
    lower = np.array([int(block * (i * step) * sample_rate) for i in j], dtype=np.int64)
    upper = np.minimum(np.array([int(block * (i * step + 1) * sample_rate) for i in j], dtype=np.int64), audio.size)
    bounds, where = np.unique(np.concatenate([lower, upper]), return_inverse=True)
    running = np.empty(bounds.size)  # sum of squares of the K-weighted signal before each bound
    filters = list(meter._filters.values())
    states = [lfilter_zi(f.b, f.a) * 0.0 for f in filters]
    total, next_bound = 0.0, 0
    while next_bound < bounds.size and bounds[next_bound] == 0:
        running[next_bound], next_bound = 0.0, next_bound + 1
    for start in range(0, audio.size, LOUDNESS_CHUNK):
        chunk = np.asarray(audio[start : start + LOUDNESS_CHUNK], dtype=np.float64)
        for k, f in enumerate(filters):
            chunk, states[k] = lfilter(f.b, f.a, chunk, zi=states[k])
            chunk *= f.passband_gain
        squares = np.cumsum(chunk * chunk)
        end = start + chunk.size
        while next_bound < bounds.size and bounds[next_bound] <= end:
            running[next_bound] = total + squares[bounds[next_bound] - start - 1]
            next_bound += 1
        total += squares[-1]
    z = (running[where[blocks:]] - running[where[:blocks]]) / (block * sample_rate)  # each block's mean square
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10.0 * np.log10(z)
        above_absolute = z[loudness >= -70.0]
        if above_absolute.size == 0:
            return -math.inf
        relative = -0.691 + 10.0 * np.log10(np.mean(above_absolute)) - 10.0
        gated = z[(loudness > relative) & (loudness > -70.0)]
        return float(-0.691 + 10.0 * np.log10(np.mean(gated))) if gated.size else -math.inf


_TRUE_PEAK_TAPS: np.ndarray | None = None


def _true_peak_taps() -> np.ndarray:
    """The 4x interpolation filter: 48 taps (12 per phase), as BS.1770-4 Annex 2 specifies, windowed sinc."""
    global _TRUE_PEAK_TAPS
    if _TRUE_PEAK_TAPS is None:
        from scipy.signal import firwin

        _TRUE_PEAK_TAPS = (OVERSAMPLING * firwin(12 * OVERSAMPLING, 1.0 / OVERSAMPLING)).astype(np.float32)
    return _TRUE_PEAK_TAPS


def oversampled_abs(audio: np.ndarray) -> np.ndarray:
    """|audio| at 4x the sample rate (the interpolated points between samples included)."""
    from scipy.signal import upfirdn

    return np.abs(upfirdn(_true_peak_taps(), np.asarray(audio, dtype=np.float32), up=OVERSAMPLING))


def true_peak_dbtp(audio: np.ndarray) -> float:
    """The 4x oversampled peak in dBTP (BS.1770-4 Annex 2); -inf for silence."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        return -math.inf
    peak = max(float(np.max(oversampled_abs(audio))), float(np.max(np.abs(audio))))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def windowed_rms_db(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    """RMS in dBFS of every `window`-sample stretch starting at multiples of `hop` (one value for shorter audio)."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.size <= window:
        return np.array([20.0 * math.log10(math.sqrt(float(np.mean(audio**2))) + 1e-12)]) if audio.size else np.array([-240.0])
    energy = np.concatenate([[0.0], np.cumsum(audio**2)])
    starts = np.arange(0, audio.size - window + 1, hop)
    mean_square = (energy[starts + window] - energy[starts]) / window
    return 10.0 * np.log10(np.maximum(mean_square, 1e-24))


def dead_air_seconds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, exclude_tail_seconds: float = 0.0) -> float:
    """Seconds of audio covered by 1-second windows whose RMS is below -60 dBFS (0.0: none).

    Windows are read every 50 ms. `exclude_tail_seconds` leaves out windows that reach into a closing fade.
    """
    window, hop = round(DEAD_AIR_WINDOW_SECONDS * sample_rate), round(0.05 * sample_rate)
    audio = np.asarray(audio)
    if exclude_tail_seconds > 0:
        audio = audio[: max(0, audio.size - round(exclude_tail_seconds * sample_rate))]
    if audio.size < window:
        return 0.0
    levels = windowed_rms_db(audio, window, hop)
    dead = np.zeros(audio.size, dtype=bool)
    for start in np.flatnonzero(levels < DEAD_AIR_DBFS) * hop:
        dead[start : start + window] = True
    return float(dead.sum() / sample_rate)


@dataclass(frozen=True)
class LevelReport:
    """What a loudness meter says of a piece of audio, and whether it passes the project's gates."""

    loudness_lufs: float
    true_peak_dbtp: float
    dead_air_seconds: float
    target_lufs: float | None = None  # set when the mood is known

    @property
    def below_floor(self) -> bool:
        return not self.loudness_lufs >= FLOOR_LUFS

    @property
    def over_peak(self) -> bool:
        return self.true_peak_dbtp > TRUE_PEAK_CEILING_DBTP + 1e-3

    @property
    def has_dead_air(self) -> bool:
        return self.dead_air_seconds > 0

    @property
    def off_target(self) -> bool:
        return self.target_lufs is not None and not abs(self.loudness_lufs - self.target_lufs) <= LOUDNESS_TOLERANCE_LU

    @property
    def gates_failed(self) -> list[str]:
        """The level gates this audio fails: "floor", "dead_air", "true_peak" (and "target" when the target is known)."""
        checks = {"floor": self.below_floor, "dead_air": self.has_dead_air, "true_peak": self.over_peak, "target": self.off_target}
        return [name for name, failed in checks.items() if failed]

    def as_dict(self) -> dict:
        data = {k: (round(v, 3) if isinstance(v, float) and math.isfinite(v) else (None if isinstance(v, float) else v)) for k, v in asdict(self).items()}
        data["gates_failed"] = self.gates_failed
        return data


def measure(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, arousal: float | None = None, exclude_tail_seconds: float = 0.0) -> LevelReport:
    """Loudness, true peak and dead air of `audio`; with `arousal`, also its mastering target."""
    return LevelReport(
        loudness_lufs=integrated_loudness(audio, sample_rate),
        true_peak_dbtp=true_peak_dbtp(audio),
        dead_air_seconds=dead_air_seconds(audio, sample_rate, exclude_tail_seconds),
        target_lufs=None if arousal is None else target_lufs(arousal),
    )


def _limiter(sample_rate: int):
    import pedalboard

    return pedalboard.Pedalboard([pedalboard.Limiter(threshold_db=LIMITER_THRESHOLD_DB, release_ms=LIMITER_RELEASE_MS)])


def limit(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, board=None, reset: bool = True, ceiling_db: float = SAMPLE_PEAK_CEILING_DB) -> np.ndarray:
    """`audio` through the limiter, its sample peaks at `ceiling_db` at most (`board` keeps its state between calls when `reset` is False)."""
    board = board if board is not None else _limiter(sample_rate)
    held = board(np.asarray(audio, dtype=np.float32)[None, :], sample_rate, reset=reset)[0]
    return (held * db_to_gain(ceiling_db)).astype(np.float32)


@dataclass(frozen=True)
class Mastered:
    """What `master` returns: the mastered audio, the gain it took, and the loudness and true peak it ended at."""

    audio: np.ndarray  # mono float32
    gain_db: float  # the gain applied before the limiter
    loudness_lufs: float  # after mastering
    true_peak_dbtp: float
    target_lufs: float


SHORT_TERM_SECONDS = 3.0  # BS.1770's short-term loudness window
CURVE_HOP_SECONDS = 0.5


def short_term_loudness(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_seconds: float = CURVE_HOP_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """(times, LUFS): the loudness of the 3 s centred on every `hop_seconds` (shorter at the ends; -inf where silent)."""
    half, hop = round(SHORT_TERM_SECONDS * sample_rate / 2), round(hop_seconds * sample_rate)
    centres = np.arange(hop // 2, max(audio.size, 1), hop)
    values = np.array([integrated_loudness(audio[max(0, c - half) : c + half], sample_rate) for c in centres])
    return centres / sample_rate, values


def _gain_curve(audio: np.ndarray, arousal_at: Callable[[float], float], sample_rate: int) -> np.ndarray:
    """Per-sample gain (dB) that brings the short-term loudness to the target of the arousal of each moment."""
    times, loudness = short_term_loudness(audio, sample_rate)
    wanted = np.array([target_lufs(arousal_at(t)) for t in times]) - loudness
    finite = np.isfinite(wanted)
    if not finite.any():
        raise MasteringError("the audio is silent (below the -70 LUFS gate of BS.1770): there is no level to master")
    wanted = np.interp(times, times[finite], wanted[finite])
    smoothed = np.convolve(np.pad(wanted, 2, mode="edge"), np.ones(5) / 5, mode="valid")  # over 2.5 s: no audible pumping
    return np.interp(np.arange(audio.size) / sample_rate, times, smoothed)


def master(audio: np.ndarray, arousal: float | Callable[[float], float], sample_rate: int = SAMPLE_RATE) -> Mastered:
    """`audio` at the loudness of its arousal (`target_lufs`), limited to a true peak of -1 dBTP.

    `arousal` is a number, or for music whose mood moves (a trajectory) a function of time in seconds:
    then a slow gain curve brings each moment's short-term loudness to that moment's target, and the
    whole to the target of the mean arousal. The gain is set from the measured loudness, the limiter holds
    the peaks, and one more pass makes up the loudness the limiter took; a last static trim takes any
    inter-sample peak under the ceiling. Raises MasteringError for silence or for audio that would need
    more than MAX_GAIN_DB.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.size == 0:
        raise MasteringError("the audio holds no samples")
    if callable(arousal):
        curve = _gain_curve(audio, arousal, sample_rate)
        audio = (audio * np.power(10.0, curve / 20.0)).astype(np.float32)
        target = target_lufs(float(np.mean([arousal(t) for t in np.arange(0.0, audio.size / sample_rate, CURVE_HOP_SECONDS)])))
    else:
        target = target_lufs(arousal)
    measured = integrated_loudness(audio, sample_rate)
    if not math.isfinite(measured):
        raise MasteringError("the audio is silent (below the -70 LUFS gate of BS.1770): there is no level to master")
    gain_db = target - measured
    if gain_db > MAX_GAIN_DB:
        raise MasteringError(f"the audio is at {measured:.1f} LUFS; reaching {target:.1f} LUFS would need +{gain_db:.0f} dB, which only lifts noise")
    # The limiter lowers the loudness where it works, and the static trim that takes inter-sample peaks under
    # the ceiling lowers it more; the gain is searched (secant steps on loudness against gain) until the
    # finished audio is within 0.25 LU of the target.
    aim, tried = target, []
    for _ in range(2):  # the second round only when the true-peak trim took more than 0.5 LU
        out, gain_db, loudness = _search_gain(audio, gain_db, aim, sample_rate, tried)
        peak = true_peak_dbtp(out)
        trim = min(0.0, TRUE_PEAK_CEILING_DBTP - 0.05 - peak)  # a static gain: loudness and peak move by exactly this
        if trim > -0.5 or gain_db >= MAX_GAIN_DB:
            break
        aim = aim - trim  # aim higher by what the trim will take
    if trim < 0:
        out = (out * db_to_gain(trim)).astype(np.float32)
    return Mastered(out, float(gain_db + trim), loudness + trim, peak + trim, target)


MAKEUP_PASSES = 5


def _search_gain(audio: np.ndarray, gain_db: float, aim: float, sample_rate: int, tried: list[tuple[float, float]]) -> tuple[np.ndarray, float, float]:
    """(limited audio, gain, its loudness): the gain before the limiter that brings the limited audio within
    0.5 LU of `aim` (a quarter of the 2 LU tolerance). The limiter lowers the loudness where it works, so the
    gain is searched: secant steps on loudness against gain, from the (gain, loudness) pairs in `tried`."""
    if len(tried) >= 2:  # a second round: step from what the first learnt
        gain_db = _secant_step(tried, aim)
    for _ in range(MAKEUP_PASSES):
        out = limit(audio * db_to_gain(gain_db), sample_rate)
        loudness = integrated_loudness(out, sample_rate)
        tried.append((gain_db, loudness))
        if abs(aim - loudness) < 0.5 or gain_db >= MAX_GAIN_DB:
            break
        gain_db = _secant_step(tried, aim)
    return out, gain_db, loudness


def _secant_step(tried: list[tuple[float, float]], aim: float) -> float:
    """The next gain to try: along the line through the last two (gain, loudness) pairs; from one, a slope of
    0.7 (loudness gained per dB of gain where the limiter works: measured 0.3-1.0 on generated clips)."""
    gain_db, loudness = tried[-1]
    slope = 0.7 if aim > loudness else 1.0
    if len(tried) >= 2 and abs(tried[-1][0] - tried[-2][0]) > 1e-6:
        slope = max((tried[-1][1] - tried[-2][1]) / (tried[-1][0] - tried[-2][0]), 0.05)
    return min(MAX_GAIN_DB, gain_db + float(np.clip((aim - loudness) / slope, -12.0, 12.0)))


def report(mastered: Mastered, sample_rate: int = SAMPLE_RATE, exclude_tail_seconds: float = 0.0) -> LevelReport:
    """The level report of mastered audio, from what `master` measured (only dead air is read again)."""
    return LevelReport(mastered.loudness_lufs, mastered.true_peak_dbtp, dead_air_seconds(mastered.audio, sample_rate, exclude_tail_seconds), mastered.target_lufs)


class StreamMaster:
    """Mastering for the live stream, chunk by chunk, with no pumping at the joins.

    The gain follows the loudness of the last half second (BS.1770 gated) towards the target of the arousal
    of the moment: a leveller. The generator's own level wanders by 20-30 dB over a few seconds in a stream
    (a slower gain, following 3 s, left the short-term loudness more than 3 LU off its line 31% of the
    time); the price is that the music's own swells are flattened at that scale too. The gain moves
    smoothly: a linear ramp within each chunk, rising at most `max_rise_db` and falling at most
    `max_fall_db` per second, so a join never carries a step; the limiter keeps its state from chunk to chunk, and a
    look-ahead guard (`TruePeakGuard`) holds the true peak under -1 dBTP.

        sm = StreamMaster()
        out = sm.process(chunk, arousal=0.2)    # float32, same length, `sm.delay` samples later
    """

    HISTORY_SECONDS = 0.5  # measured on 4 x 60 s streams: 3 s (with 4 / 12 dB/s) left 27 of 452 joins with a short-term step over 3 dB

    @property
    def delay(self) -> int:
        """Samples the output lags the input by (the true-peak guard's look-ahead)."""
        return self._guard.lookahead

    def __init__(self, sample_rate: int = SAMPLE_RATE, max_rise_db: float = 24.0, max_fall_db: float = 48.0):
        self.sample_rate = sample_rate
        self.max_rise_db, self.max_fall_db = max_rise_db, max_fall_db  # dB per second the gain may rise / fall
        self.gain_db: float | None = None
        self._history = np.zeros(0, dtype=np.float32)
        self._board = _limiter(sample_rate)
        self._guard = TruePeakGuard(sample_rate)

    def process(self, chunk: np.ndarray, arousal: float) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        keep = round(self.HISTORY_SECONDS * self.sample_rate)
        self._history = np.concatenate([self._history, chunk])[-keep:]
        loudness = integrated_loudness(self._history, self.sample_rate)
        wanted = self.gain_db if self.gain_db is not None else 0.0
        if math.isfinite(loudness):
            wanted = min(MAX_GAIN_DB, target_lufs(arousal) - loudness)
        if self.gain_db is None:
            self.gain_db = wanted
        seconds = chunk.size / self.sample_rate
        end = self.gain_db + max(-self.max_fall_db * seconds, min(self.max_rise_db * seconds, wanted - self.gain_db))
        ramp = np.linspace(self.gain_db, end, chunk.size, endpoint=False, dtype=np.float64) if chunk.size else np.zeros(0)
        self.gain_db = end
        limited = limit(chunk * np.power(10.0, ramp / 20.0).astype(np.float32), self.sample_rate, self._board, reset=False)
        return self._guard.process(limited)


class TruePeakGuard:
    """The stream's last stage: a look-ahead gain that keeps the true peak under the ceiling, chunk after chunk.

    A clip is limited, measured and trimmed as a whole (`master`); a stream cannot be trimmed after the fact,
    and a limiter that clips (pedalboard's) leaves inter-sample peaks. No maintained Python package offers a
    streaming true-peak limiter, so this stage is small and plain: the 4x oversampled peak of every sample
    (`oversampled_abs`, BS.1770-4 Annex 2) gives the gain each sample needs; a sliding minimum
    over the look-ahead and a moving average of the same length (which never exceeds any need it covers)
    turn it into a smooth gain that is down before the peak arrives. The output lags the input by
    `lookahead` samples (20 ms), the same for every chunk; the first chunk starts with that much silence.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, ceiling_dbtp: float = TRUE_PEAK_CEILING_DBTP - 0.3, lookahead_seconds: float = 0.02):
        self.ceiling = db_to_gain(ceiling_dbtp)
        self.lookahead = max(8, round(lookahead_seconds * sample_rate))
        self._delay = np.zeros(self.lookahead, dtype=np.float64)  # input not yet emitted
        self._context = np.zeros(32, dtype=np.float64)  # emitted input, for the oversampling filter's left edge
        self._minima = np.ones(self.lookahead - 1)  # the sliding minima of the last emitted samples

    def process(self, chunk: np.ndarray) -> np.ndarray:
        from numpy.lib.stride_tricks import sliding_window_view

        n = chunk.size
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        buffer = np.concatenate([self._delay, np.asarray(chunk, dtype=np.float64)])
        padded = np.concatenate([self._context, buffer])
        # upfirdn's output lags by half its filter (23.5 points): sample i sits at point 4i + 23.5, so the
        # points 4i + 22 .. 4i + 25 are the ones within half a sample of it.
        up = oversampled_abs(padded)
        lag = (_true_peak_taps().size - 1) // 2 - 1
        around = up[lag : lag + padded.size * OVERSAMPLING].reshape(-1, OVERSAMPLING).max(axis=1)
        peaks = np.maximum(around, np.abs(padded))[self._context.size :]
        need = np.minimum(1.0, self.ceiling / np.maximum(peaks, 1e-12))
        # minima[i]: the least need over samples i .. i + lookahead - 1 (for the n samples emitted now)
        minima = sliding_window_view(need, self.lookahead)[:n].min(axis=1)
        history = np.concatenate([self._minima, minima])
        gain = sliding_window_view(history, self.lookahead).mean(axis=1)  # n values, each <= the need of its sample
        out = buffer[:n] * gain
        self._minima = history[-(self.lookahead - 1) :]
        self._context = np.concatenate([self._context, buffer[:n]])[-self._context.size :]
        self._delay = buffer[n:]
        return out.astype(np.float32)
