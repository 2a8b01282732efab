"""Loop construction and the seam measures (moodmusic.loops)."""

import json

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


def test_bank_writes_loops_in_the_format_asked_for(tiny_checkpoints, tmp_path):
    from moodmusic.games.bank import build_bank
    from moodmusic.audio import load_audio
    from moodmusic.pipeline import load_pipeline

    chain = load_pipeline(tiny_checkpoints)
    manifest = build_bank(chain, tmp_path / "bank", rows=1, cols=2, seconds=2.0, variants=1, progress=False, audio_format="ogg")
    assert manifest["format"] == "ogg" and [e["file"] for e in manifest["loops"]] == ["r0_c0_v0.ogg", "r0_c1_v0.ogg"]
    assert json.loads((tmp_path / "bank" / "bank.json").read_text()) == manifest
    for entry in manifest["loops"]:
        decoded = load_audio(tmp_path / "bank" / entry["file"])
        assert decoded.size == entry["samples"] == entry["loop_end"]  # the loop points hold for the decoded file
        seam = seam_metrics(decoded)
        assert seam["seam_jump"] <= seam["p999_jump"] and seam["rms_difference_db"] < 3.0
    with pytest.raises(ValueError, match="use one of"):
        build_bank(chain, tmp_path / "other", rows=1, cols=1, seconds=1.0, variants=1, progress=False, audio_format="aiff")
    assert not list((tmp_path / "other").glob("*"))  # refused before any loop was made


@pytest.mark.parametrize("audio_format", ["wav", "ogg", "flac"])
def test_bank_files_carry_the_manifests_loop_points_and_bars_at_48_khz(tiny_checkpoints, tmp_path, audio_format):
    import soundfile

    from moodmusic.games.bank import build_bank
    from moodmusic.loopfiles import read_ogg_loop, read_wav_markers
    from moodmusic.pipeline import load_pipeline

    manifest = build_bank(load_pipeline(tiny_checkpoints), tmp_path, rows=1, cols=2, seconds=3.0, variants=1, progress=False,
                          audio_format=audio_format, sample_rate=48000, beats_per_bar=3)  # fmt: skip
    assert manifest["sample_rate"] == 48000
    for entry in manifest["loops"]:
        path = tmp_path / entry["file"]
        bar = entry["bar_seconds"] * 48000
        assert entry["beats_per_bar"] == 3 and entry["sample_rate"] == 48000 and entry["loop_length"] == entry["loop_end"] == entry["samples"]
        assert abs(entry["loop_length"] - entry["bars"] * bar) <= 1  # a whole number of bars, within a sample
        assert entry["bar_starts"] == [round(i * bar) for i in range(entry["bars"])]
        info = soundfile.info(str(path))
        assert info.samplerate == 48000 and info.frames == entry["samples"]
        if audio_format == "wav":
            markers = read_wav_markers(path)
            assert (markers["loop_start"], markers["loop_end"]) == (entry["loop_start"], entry["loop_end"])
            assert [m[0] for m in markers["markers"]] == entry["bar_starts"]
        else:
            from mutagen import File

            tags = File(str(path))
            assert (int(tags["LOOPSTART"][0]), int(tags["LOOPLENGTH"][0])) == (entry["loop_start"], entry["loop_length"])
            if audio_format == "ogg":
                assert read_ogg_loop(path) == (entry["loop_start"], entry["loop_length"])


@pytest.mark.parametrize("seconds, bpm, beats_per_bar", [(30.0, None, None), (120.0, None, None), (1.0, 40.0, 12), (120.0, 40.0, 12), (10.0, 133.0, 3)])
def test_loops_of_any_allowed_length_are_whole_bars(tiny_checkpoints, seconds, bpm, beats_per_bar):
    # Regression: the material for a loop was rounded to frames and fell a few samples short of what
    # the seam search reads at 30, 60 and 120 s; and 120 s plus the loop's extras was refused as over 120 s.
    from moodmusic.trajectory import MAX_SECONDS
    from moodmusic.pipeline import load_pipeline

    clip = load_pipeline(tiny_checkpoints).compose("calm", seconds, seed=1, verify=False, narrate=False, loop=True, bpm=bpm, beats_per_bar=beats_per_bar)
    bar = clip.grid.bar_seconds * SAMPLE_RATE
    bars = round(clip.audio.size / bar)
    assert clip.loop and bars >= 1 and abs(clip.audio.size - bars * bar) <= 0.5  # whole bars, within half a sample
    assert clip.audio.size <= MAX_SECONDS * SAMPLE_RATE and (bars == 1 or abs(bars * clip.grid.bar_seconds - seconds) <= clip.grid.bar_seconds)
    if bpm is not None:
        assert clip.grid.bpm == bpm and clip.grid.beats_per_bar == beats_per_bar


def test_a_warp_that_stretches_past_the_music_written_continues_it(tiny_checkpoints, monkeypatch):
    # A warp onto a tempo slower than the music's pulse reads past what was written first (here a 1.3x stretch,
    # forced): the music is then continued from its own last frames, so the clip never ends on a held frame.
    import numpy as np
    import torch

    from moodmusic import pipeline as chain_module
    from moodmusic.mel import FRAMES_PER_SECOND

    monkeypatch.setattr(chain_module, "warp_positions", lambda mel, grid, frames: np.arange(frames) * 1.3)
    chain = chain_module.load_pipeline(tiny_checkpoints)
    continued = []
    generate = chain.generator.generate

    def recording(*args, **kwargs):
        continued.append(kwargs.get("context") is not None)
        return generate(*args, **kwargs)

    monkeypatch.setattr(chain.generator, "generate", recording)
    clip = chain.compose("calm", 10.0, seed=2, verify=False, narrate=False, bpm=100)
    assert continued == [False, True]  # written once, continued once
    assert clip.mel.shape[-1] == round(10.0 * FRAMES_PER_SECOND)
    tail = clip.mel[..., -20:]
    assert not torch.allclose(tail[..., 1:], tail[..., :-1])  # music to the end, not the last frame held
