"""Seamless loops: how the chain closes a clip on itself, and how a seam is measured.

A loop of `length` samples is cut from audio that runs past it. Its start is crossfaded with the
music's own continuation past the end (`equal_power_loop`), so the last sample flows into the first
as it would inside the clip. A slow gain ride (`level_ramp`) brings the end to the start's loudness.
What is left is the music's own variation: two adjacent half-seconds of a phrase can differ by a
few dB (a rest, a bar's first beat). So, as a sound designer placing loop points does, `best_loop`
tries start points over a short span and keeps the one whose seam is most level; the loop's length
is what was asked for, only where it begins in the generated audio moves.

The seam's two measures live here too, so the chain, the game bank and the benchmark use
one definition.
"""

from __future__ import annotations

import numpy as np

from moodmusic.mel import SAMPLE_RATE

SEAM_WINDOW_SECONDS = 0.5  # the RMS of this much audio before and after the seam is compared


def rms_db(audio: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-9))


def equal_power_loop(audio: np.ndarray, length: int, crossfade: int) -> np.ndarray:
    """The first `length` samples of `audio`, their start crossfaded with what follows them, so the end joins the start.

    `audio` must hold at least `length + crossfade` samples: the tail beyond `length` is the music's own
    continuation, which is faded out over the loop's first `crossfade` samples while the start fades in.
    """
    if audio.size < length + crossfade:
        raise ValueError("the audio must run `crossfade` samples past the loop's length")
    looped = audio[:length].copy()
    looped[:crossfade] = _crossfade(audio[:crossfade], audio[length : length + crossfade], crossfade)
    return looped


def _crossfade(head: np.ndarray, continuation: np.ndarray, crossfade: int) -> np.ndarray:
    """The first samples of an equal-power crossfade of `crossfade` samples: `head` fades in, `continuation` out."""
    ramp = np.linspace(0.0, 1.0, crossfade, dtype=np.float32)[: head.size]
    return head * np.sin(ramp * np.pi / 2) + continuation * np.cos(ramp * np.pi / 2)


def level_ramp(audio: np.ndarray, length: int, window: int, limit_db: float = 18.0) -> np.ndarray:
    """A slow gain ride (linear in dB over the loop) that brings the loop's end to its start's loudness.

    The generator's loudness can drift over a clip; a loop's seam joins its end to its start, so a drift
    would be a jump in level there. The ride is capped at `limit_db`: a clip that fades to near silence is
    not boosted into noise (and its seam is reported as it is).
    """
    return (audio * _ride_gain(audio, length, window, limit_db, 0, audio.size)).astype(np.float32)


def _ride_gain(audio: np.ndarray, length: int, window: int, limit_db: float, start: int, stop: int) -> np.ndarray:
    """level_ramp's gain for samples start..stop (it depends only on the position and the two windows)."""
    difference = float(np.clip(rms_db(audio[:window]) - rms_db(audio[length - window : length]), -limit_db, limit_db))
    ramp = np.minimum(np.arange(start, stop, dtype=np.float64) / length, 1.0) * difference
    return 10 ** (ramp / 20)


def close_loop(audio: np.ndarray, length: int, crossfade: int) -> np.ndarray:
    """A loop of `length` samples from the start of `audio` (which runs `crossfade` samples further)."""
    return equal_power_loop(level_ramp(audio, length, crossfade), length, crossfade)


def seam_metrics(audio: np.ndarray, window_seconds: float = SEAM_WINDOW_SECONDS) -> dict[str, float]:
    """How a loop joins: the sample jump from its last sample to its first against the clip's own 99.9th
    percentile jump, and the RMS (dB) of the `window_seconds` before and after the seam.

    >>> t = np.arange(22050) / 22050
    >>> seam = seam_metrics(np.sin(2 * np.pi * 100 * t).astype(np.float32))   # 100 whole periods: it loops
    >>> seam["seam_jump"] <= seam["p999_jump"], seam["rms_difference_db"]
    (True, 0.0)
    """
    jumps = np.abs(np.diff(audio.astype(np.float64)))
    window = round(window_seconds * SAMPLE_RATE)
    before, after = rms_db(audio[-window:]), rms_db(audio[:window])
    return {
        "seam_jump": float(abs(float(audio[0]) - float(audio[-1]))),
        "p999_jump": float(np.percentile(jumps, 99.9)),
        "rms_before_db": round(before, 2), "rms_after_db": round(after, 2), "rms_difference_db": round(abs(before - after), 2),
    }  # fmt: skip


def seam_difference_db(audio: np.ndarray, length: int, crossfade: int, window: int, limit_db: float = 18.0) -> float:
    """|RMS dB| difference across the seam of `close_loop(audio, length, crossfade)`, from the samples that
    make up its two windows only (a long loop's search would otherwise rebuild it once per candidate)."""
    def gain(start: int, stop: int) -> np.ndarray:
        return _ride_gain(audio, length, crossfade, limit_db, start, stop)

    after = audio[:window] * gain(0, window)
    mixed = min(window, crossfade)
    after[:mixed] = _crossfade(after[:mixed], audio[length : length + mixed] * gain(length, length + mixed), crossfade)
    before = audio[length - window : length] * gain(length - window, length)
    return abs(rms_db(before) - rms_db(after))


def best_loop(audio: np.ndarray, length: int, crossfade: int, search: int, step: int) -> tuple[np.ndarray, int]:
    """(loop, offset): `close_loop` of `audio[offset:]` for the offset in [0, search] (multiples of
    `step`) whose seam has the smallest difference in RMS; the earliest offset wins a tie.

    `audio` must hold `search + length + crossfade` samples.
    """
    if audio.size < search + length + crossfade:
        raise ValueError("the audio must run `search + crossfade` samples past the loop's length")
    window = min(round(SEAM_WINDOW_SECONDS * SAMPLE_RATE), length // 2)
    offsets = range(0, search + 1, step)
    differences = [seam_difference_db(audio[offset : offset + length + crossfade], length, crossfade, window) for offset in offsets]
    offset = offsets[int(np.argmin(np.round(differences, 6)))]  # argmin: the first of equal ones
    return close_loop(audio[offset : offset + length + crossfade], length, crossfade), offset
