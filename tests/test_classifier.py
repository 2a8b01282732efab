"""The classifier: model shapes, windowing, the shipped checkpoint on synthesised music, errors, CLI, training."""

import csv
import io
import json

import numpy as np
import pytest
import soundfile
import torch

from moodmusic import classifier
from moodmusic.classifier.inference import window_starts
from moodmusic.classifier.model import MoodCRNN
from moodmusic.corpus.cues import Performance
from moodmusic.corpus.render import arrange, render_clips, soundfont_path
from moodmusic.corpus.scores import Piece
from moodmusic.analysis import Analysis
from moodmusic.audio import AudioDecodeError
from moodmusic.cli import main
from moodmusic.mel import SAMPLE_RATE


def test_model_reads_any_window_length():
    model = MoodCRNN().eval()
    for frames in (32, 100, 256, 431):
        out = model(torch.randn(2, 80, frames) - 6, torch.rand(2, 12, frames))
        assert out["valence_arousal"].shape == (2, 2) and out["quadrant_logits"].shape == (2, 4)
        assert out["embedding"].shape == (2, 128)
        assert out["valence_arousal"].abs().max() <= 1


def _harmonic_tones(midi_pitches, seconds=1.0):
    """Notes with six decaying harmonics each, as an instrument would play them."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = np.zeros_like(t)
    for pitch in midi_pitches:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        audio += sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 7))
    return (0.1 * audio).astype(np.float32)


def test_chroma_finds_the_notes_of_a_chord_and_not_their_neighbours():
    from moodmusic.classifier.features import chroma

    profile = chroma(_harmonic_tones([60, 64, 67])).mean(dim=1)  # C major triad: C, E, G
    assert profile.shape == (12,)
    chord, others = profile[[0, 4, 7]], profile[[i for i in range(12) if i not in (0, 4, 7)]]
    assert chord.min() > 0.5 and others.max() < 0.5 * chord.min()
    # The minor third (Eb) that would turn the chord minor must stay dark, although E's partials sit beside it.
    assert profile[3] < 0.1


def test_mode_head_hears_the_same_mode_in_every_key():
    from moodmusic.classifier.model import ModeHead

    torch.manual_seed(0)
    head = ModeHead(8).eval()
    profile = torch.rand(1, 12)
    every_key = torch.cat([torch.roll(profile, shift, dims=1) for shift in range(12)])
    scores = head(every_key)
    assert torch.allclose(scores, scores[:1].expand_as(scores), atol=1e-5)
    assert not torch.allclose(head(torch.rand(1, 12)), scores[:1])  # it does read the profile


def test_semitone_levels_keep_what_the_chroma_folds_away():
    from moodmusic.classifier.features import LOWEST_MIDI, chroma, tonal_features

    # A melody note doubled a third above, over a chord that already holds that third: the chroma's
    # strongest classes are the chord's either way; the unfolded semitone levels show the added E5.
    chord = [48, 52, 55]
    plain, doubled = _harmonic_tones(chord + [72]), _harmonic_tones(chord + [72, 76])
    assert torch.allclose(chroma(plain).mean(dim=1).argsort()[-3:].sort().values, torch.tensor([0, 4, 7]))
    features = tonal_features(doubled, semitones=True)
    assert features.shape[0] == 84 and torch.equal(features[:12], chroma(doubled))
    levels_plain, levels_doubled = tonal_features(plain, True)[12:].mean(dim=1), features[12:].mean(dim=1)
    e5 = 76 - LOWEST_MIDI
    assert levels_doubled[e5] > 0.8 and levels_doubled[e5] > levels_plain[e5] + 0.1
    assert levels_doubled.min() >= 0 and levels_doubled.max() <= 1


def test_pitch_branch_hears_an_interval_at_any_pitch():
    from moodmusic.classifier.model import PitchIntervals

    torch.manual_seed(0)
    branch = PitchIntervals(8).eval()
    levels = torch.zeros(1, 72, 64)
    levels[0, 30, :], levels[0, 34, :] = 1.0, 0.8  # a major third
    moved = torch.roll(levels, 5, dims=1)  # the same third five semitones higher
    assert torch.allclose(branch(levels), branch(moved), atol=1e-6)
    minor = levels.clone()
    minor[0, 34], minor[0, 33] = 0.0, 0.8
    assert not torch.allclose(branch(levels), branch(minor))  # it does hear which interval


def test_classifier_with_pitch_branch_reads_windows_and_rejects_the_wrong_input():
    from moodmusic.classifier.features import tonal_features
    from moodmusic.classifier.inference import MoodClassifier
    from moodmusic.classifier.model import ClassifierConfig

    config = ClassifierConfig(pitch_channels=8)
    model = MoodCRNN(**vars(config)).eval()
    classifier = MoodClassifier(model, config)
    analysis = classifier.analyze(_harmonic_tones([60, 64, 67], seconds=7.0))
    assert len(analysis.timeline) == 3 and len(analysis.embedding) == config.embedding_dim
    with pytest.raises(ValueError, match=r"tonal \(B, 84, T\)"):
        model(torch.randn(1, 80, 64), torch.rand(1, 12, 64))
    assert tonal_features(np.zeros(1000, dtype=np.float32), semitones=True).shape == (84, 4)


def test_analysis_windows_take_their_tonal_context_around_them():
    from moodmusic.classifier.features import context_profile

    tonal = torch.zeros(12, 1000)
    tonal[0, :500], tonal[7, 500:] = 1.0, 1.0
    inside = context_profile(tonal, 0, 256, context_frames=0)
    assert inside[0] == 1 and inside[7] == 0
    around = context_profile(tonal, 300, 556, context_frames=258)  # frames 42..814
    assert torch.isclose(around[0], torch.tensor(458 / 772)) and torch.isclose(around[7], torch.tensor(314 / 772))


def test_windows_cover_the_audio_without_silence_padding():
    assert window_starts(100, 256, 256) == [0]
    assert window_starts(512, 256, 256) == [0, 256]
    assert window_starts(600, 256, 256) == [0, 256, 344]  # an 88-frame tail gets an end-aligned window
    assert window_starts(550, 256, 256) == [0, 256]  # a 38-frame tail is too short to count


def scale_piece(major: bool, bars: int = 4) -> Piece:
    """A little two-voice tune in C: melody in eighths over a bass line, major or minor."""
    third, sixth = (64, 69) if major else (63, 68)
    melody = [60, 62, third, 65, 67, sixth, 67, 65, third, 62, 60, 62, third, 62, 60, 60] * bars
    onsets = np.arange(len(melody)) * 0.5
    bass_onsets = np.arange(0, len(melody) * 0.5, 2.0)
    return Piece(
        source="test", collection="test",
        onsets=np.concatenate([onsets, bass_onsets]),
        durations=np.concatenate([np.full(len(melody), 0.5), np.full(bass_onsets.size, 2.0)]),
        pitches=np.array(melody + [48, 53, 55, 48] * (bass_onsets.size // 4) + [48] * (bass_onsets.size % 4)),
        parts=np.array([0] * len(melody) + [1] * bass_onsets.size),
        length=len(melody) * 0.5,
    )  # fmt: skip


def perform_clip(major: bool, tempo: float, velocity: int, drums: int, articulation: float, seconds: float = 6.0) -> np.ndarray:
    performance = Performance(
        mode="major" if major else "minor", tempo_bpm=tempo, notes_per_beat=2, on_beat_only=False, velocity=velocity,
        expression=100 if velocity > 80 else 70, velocity_spread=4, beat_accent=velocity > 80, articulation=articulation,
        transpose=0, bright_timbre=velocity > 80, melody_program=0, accompaniment_program=0, pulse_program=0,
        accompaniment_per_beat=2.0 if drums else 1.0, drums=drums, reverb=40,
    )  # fmt: skip
    piece = scale_piece(major)
    beat = 1.0
    window = seconds * tempo / 60 * beat
    from moodmusic.corpus.scores import excerpt

    clip = arrange(excerpt(piece, 0, window), beat, performance, seconds, np.random.default_rng(0))
    return render_clips([clip], seconds, soundfont_path("fluidr3"))[0]


@pytest.fixture(scope="module")
def shipped():
    return classifier.load()


def test_shipped_classifier_hears_fast_loud_major_above_slow_soft_minor(shipped):
    bright = shipped.analyze(perform_clip(major=True, tempo=150, velocity=112, drums=2, articulation=0.6))
    dark = shipped.analyze(perform_clip(major=False, tempo=50, velocity=38, drums=0, articulation=1.0))
    assert bright.overall.arousal > dark.overall.arousal + 0.3
    assert bright.overall.valence > dark.overall.valence + 0.3
    assert bright.quadrant == "happy" and dark.overall.valence < 0


@pytest.mark.parametrize("major, tempo, velocity", [(True, 150, 112), (False, 50, 38)])
def test_shipped_classifier_hears_the_same_mood_at_two_gains(shipped, major, tempo, velocity):
    clip = perform_clip(major=major, tempo=tempo, velocity=velocity, drums=2 if major else 0, articulation=0.6 if major else 1.0)
    loud = clip * (10 ** (-1 / 20) / np.max(np.abs(clip)))  # peak -1 dBFS, and the same 20 dB quieter
    first, second = shipped.analyze(loud), shipped.analyze(loud * 0.1)
    assert abs(first.overall.arousal - second.overall.arousal) <= 0.10
    assert abs(first.overall.valence - second.overall.valence) <= 0.05
    assert first.quadrant == second.quadrant
    assert second.loudness_lufs == pytest.approx(first.loudness_lufs - 20, abs=0.1)


@pytest.mark.xfail(strict=True, reason="known gap: the level-invariant ear (input at -30 LUFS) hears these slow, soft scale "
                   "performances at arousal +0.11 to +0.15, where the ear that read level heard -0.3 to -0.6; without the level, "
                   "slow tempo and legato alone do not make it say calm (docs/notes/2026-12-07-level-invariant-ear.md)")  # fmt: skip
def test_shipped_classifier_hears_slow_soft_music_as_calm(shipped):
    dark = shipped.analyze(perform_clip(major=False, tempo=50, velocity=38, drums=0, articulation=1.0))
    calm = shipped.analyze(perform_clip(major=True, tempo=60, velocity=50, drums=0, articulation=0.9))
    assert dark.quadrant == "sad" and calm.quadrant == "calm"


@pytest.mark.parametrize("tempo, velocity, quadrants", [(60, 50, None), (140, 105, ("happy", "angry"))])
def test_shipped_classifier_hears_the_mode_without_the_corpus_textures(shipped, tempo, velocity, quadrants):
    # Real music has no "share of melody notes doubled in thirds": the same performance in major and in minor,
    # with neither v2 texture, must still land on its side of valence 0 (an ear trained on the v2 corpus alone
    # heard these minor clips at -0.07 to -0.11, docs/notes/2026-12-05-classifier-experiments.md). The slow
    # pair's arousal is the known gap of the test above.
    major = shipped.analyze(perform_clip(major=True, tempo=tempo, velocity=velocity, drums=0, articulation=0.9))
    minor = shipped.analyze(perform_clip(major=False, tempo=tempo, velocity=velocity, drums=0, articulation=0.9))
    assert major.overall.valence > 0.2 and minor.overall.valence < -0.2
    if quadrants is not None:
        assert (major.quadrant, minor.quadrant) == quadrants


def test_analysis_has_timeline_distributions_and_embedding(shipped):
    rng = np.random.default_rng(0)
    samples = (0.05 * rng.normal(size=10 * SAMPLE_RATE)).astype(np.float32)
    analysis = shipped.analyze(samples)
    assert abs(analysis.duration - 10) < 1e-6
    assert [round(w.start, 2) for w in analysis.timeline] == [0.0, 2.97, 5.94, 7.04]  # last window end-aligned: (862 - 256) frames
    assert analysis.timeline[-1].end == pytest.approx(10.0, abs=0.02)
    for reading in [analysis.overall, *analysis.timeline]:
        assert sum(reading.quadrants.values()) == pytest.approx(1.0, abs=1e-6)
        assert sum(reading.moods.values()) == pytest.approx(1.0, abs=1e-6)
        assert -1 <= reading.valence <= 1 and -1 <= reading.arousal <= 1
    assert len(analysis.embedding) == 128
    assert json.loads(json.dumps(analysis.as_dict()))["primary_mood"] in ("chill", "energy", "emotion", "upbeat")
    assert Analysis.from_dict(analysis.as_dict()).overall == analysis.overall


def test_short_long_and_encoded_inputs(shipped, tmp_path):
    assert len(shipped.analyze(np.zeros(2000, dtype=np.float32)).timeline) == 1  # 0.09 s
    buffer = io.BytesIO()
    soundfile.write(buffer, np.zeros((44100 * 2, 2), dtype=np.float32), 44100, format="FLAC")
    assert shipped.analyze(buffer.getvalue()).duration == pytest.approx(2.0, abs=0.01)


def test_bad_input_raises_the_documented_error(shipped, tmp_path):
    with pytest.raises(AudioDecodeError):
        shipped.analyze(b"definitely not audio" * 50)
    with pytest.raises(AudioDecodeError):
        shipped.analyze(np.zeros(0, dtype=np.float32))
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioDecodeError):
        shipped.analyze(empty)


def test_analyze_cli_json_and_csv_for_a_folder(tmp_path, capsys):
    folder = tmp_path / "music"
    folder.mkdir()
    for name in ("a.wav", "b.ogg"):
        t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
        soundfile.write(folder / name, (0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), SAMPLE_RATE)
    assert main(["analyze", str(folder), "--no-timeline"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["file"].rsplit("/", 1)[-1] for r in results] == ["a.wav", "b.ogg"]
    assert "timeline" not in results[0] and "embedding" not in results[0]
    out = tmp_path / "out.csv"
    assert main(["analyze", str(folder / "a.wav"), "--format", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 1 and rows[0]["quadrant"] in ("happy", "angry", "sad", "calm")
    (folder / "broken.mp3").write_bytes(b"garbage" * 100)
    assert main(["analyze", str(folder / "broken.mp3")]) == 1
    assert "could not decode" in capsys.readouterr().err


def test_training_runs_resumes_and_exports_nothing_without_flag(tmp_path):
    from moodmusic.corpus.build import BuildConfig, build
    from moodmusic.classifier.train import TrainConfig, train

    corpus = tmp_path / "corpus"
    build(BuildConfig(out=str(corpus), clips=12, seconds=2.0, seed=5), progress=False)
    config = TrainConfig(data=(str(corpus),), out=str(tmp_path / "run"), epochs=1, batch_size=4, window_frames=128)
    first = train(config, progress=False)
    assert first["best_epoch"] == 0 and (tmp_path / "run" / "best" / "model.safetensors").exists()
    config.epochs = 2
    second = train(config, progress=False)  # resumes: only epoch 2 runs
    log = [json.loads(line) for line in open(tmp_path / "run" / "log.jsonl")]
    assert [r["epoch"] for r in log] == [0, 1]
    assert "test" in second and second["test"]["clips"] > 0
    reloaded = classifier.load(tmp_path / "run" / "best")
    assert reloaded.window_frames == 128


def test_training_from_a_trained_classifier_keeps_its_architecture_and_weights(tmp_path):
    """--init: the new run reads the features of the starting model and starts from its weights
    (at learning rate 0 they come out unchanged), whatever the run's own architecture arguments say."""
    from moodmusic.corpus.build import BuildConfig, build
    from moodmusic.classifier.train import TrainConfig, train
    from moodmusic import checkpoints

    corpus = tmp_path / "corpus"
    build(BuildConfig(out=str(corpus), clips=12, seconds=2.0, seed=5), progress=False)
    train(TrainConfig(data=(str(corpus),), out=str(tmp_path / "first"), epochs=1, batch_size=4, window_frames=128, pitch_channels=0), progress=False)
    start = tmp_path / "first" / "best"
    train(TrainConfig(data=(str(corpus),), out=str(tmp_path / "again"), epochs=1, batch_size=4, learning_rate=0.0, init=str(start)), progress=False)
    before, after = classifier.load(start), classifier.load(tmp_path / "again" / "best")
    assert checkpoints.load_config(tmp_path / "again" / "best") == checkpoints.load_config(start)  # no pitch branch, 128-frame windows, same mel scaling
    for (name, old), new in zip(before.model.named_parameters(), after.model.parameters()):
        assert torch.equal(old, new), name


def test_training_joins_several_corpora(tmp_path):
    """Two renditions of one plan (cues v1 and v2) train one model; their splits line up piece by piece,
    and the one trusted for the sign of valence only is left out of validation and test."""
    from moodmusic.corpus.build import BuildConfig, build
    from moodmusic.corpus.loaders import load_any
    from moodmusic.classifier.train import TrainConfig, train

    for cues in ("v1", "v2"):
        build(BuildConfig(out=str(tmp_path / cues), clips=12, seconds=2.0, seed=5, cues=cues), progress=False)
    clips = {cues: load_any(tmp_path / cues) for cues in ("v1", "v2")}
    assert {(c.source, c.split) for c in clips["v1"]} == {(c.source, c.split) for c in clips["v2"]}
    config = TrainConfig(data=(str(tmp_path / "v2"),), sign_only_data=(str(tmp_path / "v1"),), out=str(tmp_path / "run"), epochs=1,
                         batch_size=4, window_frames=128, pitch_channels=0)  # fmt: skip
    summary = train(config, progress=False)
    assert summary["train_clips"] == 2 * sum(c.split == "train" for c in clips["v2"]) > 0
    assert summary["test"]["clips"] == sum(c.split == "test" for c in clips["v2"]) > 0


def test_sign_only_labels_teach_the_side_of_zero_not_the_size():
    from moodmusic.classifier.train import point_errors

    target = torch.tensor([[0.8, 0.2], [0.8, 0.2], [-0.6, 0.0], [0.8, 0.2]])
    predicted = torch.tensor([[0.3, 0.2], [-0.1, 0.2], [-0.4, 0.0], [0.3, 0.2]])
    size_known = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    errors = point_errors(predicted, target, size_known, torch.ones(4, 2), sign_margin=0.25)
    assert errors[0] == 0 and errors[2] == 0  # right side by the margin: the size is not asked for
    assert errors[1] == pytest.approx(0.35)  # wrong side: 0.25 - (-0.1)
    assert errors[3] == pytest.approx(0.5 - 0.05)  # a known size keeps the smooth L1 (beta 0.1)


def test_cue_head_learns_from_the_corpus_cue_tracks(tmp_path):
    """--cue-weight: the model gets a cue head; crops carry the cue tracks of the same frames; the loss is
    low for logits that say where the cue sounds and high for the opposite."""
    from moodmusic.classifier.data import CropDataset, load_examples
    from moodmusic.classifier.train import TrainConfig, cue_errors, train
    from moodmusic.corpus.build import BuildConfig, build
    from moodmusic.corpus.loaders import load_any

    corpus = tmp_path / "corpus"
    build(BuildConfig(out=str(corpus), clips=12, seconds=2.0, seed=5, cues="v3"), progress=False)
    clips = load_any(corpus)
    np.save(clips[0].cue_tracks, np.load(clips[0].cue_tracks)[:, :-1])  # as a renderer may leave it: a frame short of the mel
    examples = load_examples(clips, progress=False)
    assert all(e.cue_tracks is not None and e.cue_tracks.shape[1] == e.mel.shape[1] for e in examples)
    dataset = CropDataset(examples, 128, None, seed=0, context_frames=258)
    for index, example in enumerate(examples):
        item = dataset[index]
        start = next(s for s in range(example.mel.shape[1] - 127) if np.array_equal(example.mel[:, s : s + 128].astype(np.float32), item["mel"].numpy()))
        assert np.array_equal(item["cue_tracks"].numpy(), example.cue_tracks[:, start : start + 128]) and item["cue_tracks_known"] == 1

    tracks = torch.zeros(2, 2, 128)
    tracks[0, 0, :64] = 1  # the first clip's doubling sounds in its first half
    known = torch.tensor([1.0, 0.0])
    right = torch.full((2, 8, 2), -8.0)
    right[0, :4, 0] = 8.0
    wrong = -right
    assert cue_errors(right, tracks, known) < 0.01 < 1.0 < cue_errors(wrong, tracks, known)
    assert cue_errors(wrong, tracks, torch.zeros(2)) == 0  # tracks nobody knows teach nothing

    summary = train(TrainConfig(data=(str(corpus),), out=str(tmp_path / "run"), epochs=1, batch_size=4, window_frames=128, cue_weight=1.0), progress=False)
    log = json.loads(open(tmp_path / "run" / "log.jsonl").readline())
    assert log["cue"] > 0 and summary["test"]["clips"] > 0
    trained = classifier.load(tmp_path / "run" / "best")
    assert trained.model.cue is not None
    outputs = trained.model(torch.randn(1, 80, 128) - 6, torch.rand(1, trained.model.tonal_rows, 128))
    assert outputs["cue_logits"].shape == (1, 8, 2)
    from moodmusic import checkpoints

    with pytest.raises(SystemExit, match="has none"):  # the shipped ear has no cue head to fine-tune
        train(TrainConfig(data=(str(corpus),), out=str(tmp_path / "again"), epochs=1, cue_weight=1.0, init=str(checkpoints.stage_dir("classifier"))), progress=False)
