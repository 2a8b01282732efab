"""The real-music set: its builder (on tiny made-up tracks: the game packages are not installed in CI),
its weak labels in training, and the shipped analyzer's level invariance."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile
import torch

from moodmusic.corpus.real import LABELS, Track, assign_splits, build, excerpt_starts
from moodmusic.mel import SAMPLE_RATE


def test_excerpts_skip_intros_and_endings_and_short_tracks_give_one():
    assert excerpt_starts(8.0, 10.0, 4) == [0.0]
    starts = excerpt_starts(200.0, 10.0, 4)
    assert len(starts) == 4 and starts[0] == pytest.approx(10.0) and starts[-1] == pytest.approx(180.0)
    assert len(excerpt_starts(25.0, 10.0, 4)) == 2


def test_every_label_has_a_held_out_track_and_the_split_is_stable():
    tracks = [Track("p", f"p/{label}{i}.ogg", label, "", None) for label in LABELS for i in range(label == "defeat" or 5)]
    splits = assign_splits(tracks)
    for label in LABELS:
        names = [t.name for t in tracks if t.label == label]
        assert any(splits[n] == "test" for n in names)
        assert sum(splits[n] == "test" for n in names) == (len(names) + 2) // 3
    assert assign_splits(list(reversed(tracks))) == splits


def tone(frequency: float, seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (level * np.sin(2 * np.pi * frequency * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))).astype(np.float32)


@pytest.fixture()
def tiny_real_set(tmp_path):
    sources = tmp_path / "games"
    sources.mkdir()
    tracks = []
    made_up = [("battle", 30, 0.5), ("peaceful", 25, 0.05), ("dark", 12, 0.2), ("unlabelled", 3, 0.2), ("peaceful", 12, 0.0), ("battle", 12, 0.3), ("battle", 12, 0.3)]
    for i, (label, seconds, level) in enumerate(made_up):
        path = sources / f"track{i}.ogg"
        soundfile.write(path, tone(220 * (i + 1), seconds, level), SAMPLE_RATE)
        tracks.append(Track("game-data", f"game-data/track{i}.ogg", label, f"made up: {label}", path))
    out = tmp_path / "real"
    rows = build(out, per_track=2, seconds=10.0, progress=False, tracks=tracks)
    return out, rows


def test_build_cuts_labelled_excerpts_and_writes_the_index(tiny_real_set):
    out, rows = tiny_real_set
    # 2 + 2 + 1 + 1 + 1 excerpts; the 3 s track is too short; the silent track's excerpt is a pause, not music.
    assert [r["label"] for r in rows] == ["battle", "battle", "peaceful", "peaceful", "dark", "battle", "battle"]
    with open(out / "index.csv") as f:
        index = list(csv.DictReader(f))
    assert [(float(r["valence"]), float(r["arousal"])) for r in index[:3:2]] == [(0.0, 0.5), (0.5, -0.5)]
    audio, rate = soundfile.read(out / index[0]["audio"])
    assert rate == SAMPLE_RATE and audio.shape == (10 * SAMPLE_RATE,)
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=0.03)  # the track's own level is kept
    text = (out / "index.md").read_text()
    assert "made up: battle" in text and "| battle | +0 | +1 |" in text


def test_weak_labels_train_only_the_signs_they_know(tiny_real_set, tmp_path):
    from moodmusic.classifier.data import CropDataset, load_examples
    from moodmusic.classifier.train import TrainConfig, point_errors, train, weak_repeats
    from moodmusic.corpus.build import BuildConfig, build as build_corpus
    from moodmusic.corpus.loaders import load_any

    out, _ = tiny_real_set
    clips = load_any(out)
    assert all(c.weak for c in clips) and {c.label for c in clips} == {"battle", "peaceful", "dark"}
    examples = load_examples(clips, progress=False, input_lufs=-30.0)
    item = CropDataset(examples, 128, None, context_frames=258)[0]  # a battle excerpt: arousal's sign only
    assert item["size_known"].tolist() == [0.0, 0.0] and item["sign_known"].tolist() == [0.0, 1.0]

    predicted = torch.tensor([[-0.9, 0.4], [-0.9, -0.1]])
    errors = point_errors(predicted, torch.tensor([[0.0, 0.5], [0.0, 0.5]]), torch.zeros(2, 2), torch.tensor([[0.0, 1.0], [0.0, 1.0]]), sign_margin=0.25)
    assert errors[0] == 0 and errors[1] == pytest.approx(0.35)  # valence unknown: -0.9 costs nothing; arousal on the wrong side

    corpus = tmp_path / "corpus"
    build_corpus(BuildConfig(out=str(corpus), clips=8, seconds=2.0, seed=3), progress=False)
    summary = train(TrainConfig(data=(str(corpus), str(out)), out=str(tmp_path / "run"), epochs=1, batch_size=4, window_frames=128,
                                pitch_channels=0, input_lufs=-30.0, weak_repeat=2), progress=False)  # fmt: skip
    real_train = [e for e, c in zip(examples, clips) if c.split == "train"]
    assert real_train and summary["train_clips"] == sum(c.split == "train" for c in load_any(corpus)) + len(real_train) + len(weak_repeats(real_train, 2))
    assert np.isfinite(summary["val"]["valence_mae"])



def test_weak_labels_are_balanced_by_repeats_up_to_a_limit():
    from moodmusic.classifier.data import Example
    from moodmusic.classifier.train import weak_repeats

    def excerpt(valence, arousal):
        return Example(np.zeros((80, 4)), np.zeros((12, 4)), valence, arousal, 0, False, "t", weak=True)

    peaceful, dark, battle, unlabelled = [excerpt(0.5, -0.5)] * 10, [excerpt(-0.5, 0.0)] * 2, [excerpt(0.0, 0.5)], [excerpt(0.0, 0.0)] * 3
    extra = weak_repeats(peaceful + dark + battle + unlabelled, most=4)
    assert len(extra) == 2 * 3 + 1 * 3  # dark 5x and battle 10x short of peaceful, both capped at 4 views
    assert not any(e.valence == 0 and e.arousal == 0 for e in extra) and not any(e.valence == 0.5 for e in extra)


def test_real_music_measure_on_the_held_out_excerpts(tiny_real_set):
    from moodmusic import classifier
    from moodmusic.classifier.evaluate import real_music

    out, rows = tiny_real_set
    held_out = [r for r in rows if r["split"] == "test"]
    report = real_music(classifier.load(), out)
    assert report["excerpts"] == len(held_out) and len(report["points"]) == len(held_out)
    assert report["median_arousal_change"] <= 0.10 and report["median_valence_change"] <= 0.05  # the shipped front end
    high = sum(r["label"] == "battle" for r in held_out)
    low = sum(r["label"] == "peaceful" for r in held_out)
    assert report["arousal_pairs"] == high * low
    assert report["dark_heard_negative"]["excerpts"] == sum(r["label"] == "dark" for r in held_out)
