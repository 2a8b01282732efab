"""Mastering (moodmusic.mastering) and the sampler's liveness (generator.sampling.Liveness)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from moodmusic import mastering
from moodmusic.mel import LOG_FLOOR, N_MELS, SAMPLE_RATE


def drums_and_tone(seconds: float, level: float, seed: int = 0) -> np.ndarray:
    """A tone with sharp clicks on every beat: a large crest factor, so the limiter has work to do."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = 0.2 * np.sin(2 * np.pi * 330 * t) + 0.02 * rng.standard_normal(t.size)
    for beat in np.arange(0.25, seconds, 0.5):  # off the stream test's chunk joins, which fall on whole half-seconds
        start = round(beat * SAMPLE_RATE)
        audio[start : start + 200] += np.hanning(400)[200:] * 1.5
    return (level * audio).astype(np.float32)


@pytest.mark.parametrize("arousal", [-1.0, -0.3, 0.4, 1.0])
@pytest.mark.parametrize("level", [0.01, 3.0])
def test_master_reaches_the_target_under_the_true_peak_ceiling(arousal, level):
    done = mastering.master(drums_and_tone(6.0, level), arousal)
    report = mastering.measure(done.audio, arousal=arousal)
    assert report.target_lufs == pytest.approx(-19 + 4 * arousal)
    assert abs(report.loudness_lufs - report.target_lufs) <= 0.5  # the target's tolerance is 2 LU
    assert report.true_peak_dbtp <= mastering.TRUE_PEAK_CEILING_DBTP
    assert report.gates_failed == []
    # What master() says it measured is what an independent measurement reads.
    assert done.loudness_lufs == pytest.approx(report.loudness_lufs, abs=0.01)
    assert done.true_peak_dbtp == pytest.approx(report.true_peak_dbtp, abs=0.01)


def test_true_peak_sees_between_the_samples():
    # A sine at a quarter of the sample rate, sampled 45 degrees off its peaks: samples at 0.707, true peak 1.0.
    t = np.arange(4096)
    audio = np.sin(2 * np.pi * t / 4 + np.pi / 4).astype(np.float32)
    assert 20 * np.log10(np.max(np.abs(audio))) == pytest.approx(-3.01, abs=0.05)
    assert mastering.true_peak_dbtp(audio) == pytest.approx(0.0, abs=0.2)


def test_silence_and_noise_floors_are_refused_not_boosted():
    with pytest.raises(mastering.MasteringError, match="silent"):
        mastering.master(np.zeros(SAMPLE_RATE * 2, dtype=np.float32), 0.0)
    whisper = drums_and_tone(3.0, 0.0035)  # about -65.5 LUFS: a generator that fell silent, not music
    with pytest.raises(mastering.MasteringError, match="only lifts noise"):
        mastering.master(whisper, 0.0)


def test_dead_air_and_the_gates():
    music = drums_and_tone(6.0, 0.3)
    gap = music.copy()
    gap[2 * SAMPLE_RATE : round(3.6 * SAMPLE_RATE)] = 0.0
    assert mastering.dead_air_seconds(music) == 0.0
    assert 1.5 <= mastering.dead_air_seconds(gap) <= 1.7
    assert "dead_air" in mastering.measure(gap).gates_failed
    quiet = mastering.measure(music * 0.01)
    assert quiet.below_floor and "floor" in quiet.gates_failed
    assert "true_peak" in mastering.measure(music * 4).gates_failed
    # A closing fade may be excluded (a stinger's), nothing else.
    faded = music.copy()
    faded[-SAMPLE_RATE - 100 :] = 0.0
    assert mastering.dead_air_seconds(faded) > 0 and mastering.dead_air_seconds(faded, exclude_tail_seconds=1.1) == 0.0


def test_a_moving_mood_is_mastered_moment_by_moment():
    audio = drums_and_tone(12.0, 0.2)
    done = mastering.master(audio, lambda t: -0.8 if t < 6 else 0.8)
    times, loudness = mastering.short_term_loudness(done.audio)
    early, late = loudness[(times > 1.5) & (times < 4.5)], loudness[(times > 7.5) & (times < 10.5)]
    # The targets are -22.2 and -15.8 LUFS: the second half is about 6 dB louder, within 3 LU of its line.
    assert np.all(np.abs(early - (-22.2)) < 3) and np.all(np.abs(late - (-15.8)) < 3)
    assert done.true_peak_dbtp <= mastering.TRUE_PEAK_CEILING_DBTP


def test_stream_master_glides_without_steps_and_holds_the_peak():
    sm = mastering.StreamMaster()
    chunk = SAMPLE_RATE // 2
    source = np.concatenate([drums_and_tone(10.0, 0.05), drums_and_tone(10.0, 0.5, seed=1)])  # a 20 dB jump in the input
    out = np.concatenate([sm.process(source[i : i + chunk], arousal=0.0) for i in range(0, source.size, chunk)])
    assert sm.delay > 0 and np.all(out[: sm.delay] == 0)  # the guard's look-ahead: the output lags by sm.delay samples
    out, source = out[sm.delay :], source[: source.size - sm.delay]
    gains = 20 * np.log10(np.maximum(np.abs(out), 1e-9) / np.maximum(np.abs(source), 1e-9))
    assert mastering.true_peak_dbtp(out) <= mastering.TRUE_PEAK_CEILING_DBTP
    # The gain glides (at most max_rise_db or max_fall_db per second): across every join it is continuous.
    for join in range(chunk, source.size - chunk, chunk):
        if join == 10 * SAMPLE_RATE:
            continue  # the input's own 20 dB step: the limiter takes it, the gain then glides down
        quiet_enough = np.abs(out[join - 50 : join + 50]) < 0.5  # away from the limiter's work
        before, after = gains[join - 50 : join][quiet_enough[:50]], gains[join : join + 50][quiet_enough[50:]]
        if before.size and after.size:
            assert abs(np.median(after) - np.median(before)) < 1.0, join / SAMPLE_RATE
    # After it settles, the loudness is the target of arousal 0 (-19 LUFS) on both sides of the jump.
    assert mastering.integrated_loudness(out[6 * SAMPLE_RATE : 10 * SAMPLE_RATE]) == pytest.approx(-19, abs=2)
    assert mastering.integrated_loudness(out[16 * SAMPLE_RATE : 19 * SAMPLE_RATE]) == pytest.approx(-19, abs=2)


def test_normalise_loudness_for_analysis():
    audio = drums_and_tone(3.0, 0.05)
    assert mastering.integrated_loudness(mastering.normalise_loudness(audio, -30.0)) == pytest.approx(-30.0, abs=0.01)
    assert mastering.normalise_loudness(audio, None) is not None
    silent = np.zeros(SAMPLE_RATE, dtype=np.float32)
    assert np.array_equal(mastering.normalise_loudness(silent, -30.0), silent)


class SilentUnlessPositive(torch.nn.Module):
    """A stand-in generator: digital silence when the latent's first value is negative, quiet music otherwise."""

    def forward(self, context, mood, latent, frame_noise):
        slices = torch.full((latent.shape[0], N_MELS, 8), LOG_FLOOR)
        alive = latent[:, 0] > 0
        slices[alive] = -4.0
        return slices


def test_liveness_redraws_silent_slices_from_the_clips_own_stream():
    from moodmusic.generator.sampling import Liveness

    liveness = Liveness()
    generator = torch.Generator().manual_seed(0)
    latents = torch.tensor([[-1.0], [1.0], [-1.0]])

    def redraw():
        return torch.randn(1, 1, generator=generator), torch.zeros(1, 1, 1)

    out, rejected = liveness.write(SilentUnlessPositive(), torch.zeros(3, N_MELS, 4), torch.zeros(3, 2), (latents, torch.zeros(3, 1, 1)), [redraw] * 3)
    levels = Liveness.level_db(out)
    assert torch.all(levels > liveness.quiet_db), levels  # every row came back alive
    never, _ = Liveness(retries=0).write(SilentUnlessPositive(), torch.zeros(1, N_MELS, 4), torch.zeros(1, 2), (latents[:1], torch.zeros(1, 1, 1)), [redraw])
    assert float(Liveness.level_db(never)[0]) < liveness.quiet_db  # without retries the silence stays: the check is what fixes it


def test_liveness_caps_a_blown_up_slice():
    from moodmusic.generator.sampling import Liveness

    class Explodes(torch.nn.Module):
        def forward(self, context, mood, latent, frame_noise):
            return torch.full((latent.shape[0], N_MELS, 8), 11.0)

    out, _ = Liveness(retries=2).write(Explodes(), torch.zeros(1, N_MELS, 4), torch.zeros(1, 2), (torch.zeros(1, 1), torch.zeros(1, 1, 1)),
                                    [lambda: (torch.zeros(1, 1), torch.zeros(1, 1, 1))])  # fmt: skip
    assert float(out.max()) == pytest.approx(Liveness().ceiling)


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_the_bounded_memory_meter_equals_pyloudnorm(rate):
    import warnings

    import pyloudnorm

    from moodmusic.mastering import LOUDNESS_CHUNK, integrated_loudness

    rng = np.random.default_rng(rate)
    # Lengths around the chunk and block edges; each with silence (absolute gate) and a quiet stretch (relative gate).
    for n in (int(0.41 * rate), 3 * rate + 17, LOUDNESS_CHUNK, LOUDNESS_CHUNK + 1, 2 * LOUDNESS_CHUNK + rate // 3):
        x = (0.1 * rng.standard_normal(n)).astype(np.float32)
        x[: n // 5] = 0
        x[n // 3 : n // 2] *= 0.001
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = pyloudnorm.Meter(rate).integrated_loudness(x.astype(np.float64))
        assert integrated_loudness(x, rate) == pytest.approx(expected, abs=1e-6)
    assert integrated_loudness(np.zeros(5 * rate, dtype=np.float32), rate) == -math.inf
