"""An end-to-end build on a few short clips: FluidSynth, mels, manifest, splits, resume."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile

from moodmusic.corpus.build import BuildConfig, build, plan, split_for, summary
from moodmusic.cli import main
from moodmusic.mel import N_MELS, frames_for_seconds

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed: run scripts/setup.sh")


def read_manifest(folder):
    with open(folder / "manifest.csv") as f:
        return list(csv.DictReader(f))


def test_plan_is_deterministic_balanced_and_splits_by_piece():
    config = BuildConfig(clips=200, seconds=4.0, seed=3)
    first, second = plan(config), plan(config)
    assert first == second
    clips = [c for t in first for c in t.clips]
    assert len(clips) == 200
    quadrants = [("happy", "angry", "sad", "calm")[int(c.id[1:]) % 4] for c in clips]
    assert {q: quadrants.count(q) for q in set(quadrants)} == {"happy": 50, "angry": 50, "sad": 50, "calm": 50}
    candidates = [p for t in first for p in t.candidates]
    assert len(candidates) == len(set(candidates))  # no score is planned twice
    splits = [t.split for t in first]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (20, 2, 3)
    assert plan(BuildConfig(clips=200, seconds=4.0, seed=4)) != first


def test_split_shares():
    splits = [split_for(slot, 100, seed=0) for slot in range(100)]
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (80, 10, 10)


def test_cli_build_writes_clips_mels_and_manifest_and_resumes(tmp_path, capsys):
    out = tmp_path / "corpus"
    assert main(["corpus", "build", "--clips", "12", "--seconds", "2", "--out", str(out), "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "happy" in printed and "12 clips" in printed
    rows = read_manifest(out)
    assert len(rows) == 12
    assert {r["quadrant"] for r in rows} == {"happy", "angry", "sad", "calm"}
    by_source = {}
    for row in rows:
        by_source.setdefault(row["source"], set()).add(row["split"])
        samples, rate = soundfile.read(out / row["audio"])
        assert rate == 22050 and samples.ndim == 1 and samples.size == 2 * 22050
        assert np.max(np.abs(samples)) <= 1.0 and np.sqrt(np.mean(samples**2)) > 1e-4  # not silent
        mel = np.load(out / row["mel"])
        assert mel.shape == (N_MELS, frames_for_seconds(2))
        assert (float(row["valence"]) >= 0) == (row["mode"] == "major")
    assert all(len(splits) == 1 for splits in by_source.values())

    # Resume: remove one finished task and its files; the rebuild restores the same manifest.
    first_rows = json.loads((out / "rows" / "00000.json").read_text())
    (out / "rows" / "00000.json").unlink()
    for row in first_rows:
        (out / row["audio"]).unlink()
    assert main(["corpus", "build", "--clips", "12", "--seconds", "2", "--out", str(out), "--seed", "1"]) == 0
    again = read_manifest(out)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    assert [r["rms_db"] for r in again] == [r["rms_db"] for r in rows]  # deterministic rendering

    # Other arguments into the same folder are refused rather than mixed in.
    with pytest.raises(SystemExit):
        main(["corpus", "build", "--clips", "12", "--seconds", "3", "--out", str(out)])


def test_summary_counts_clips_per_split_and_quadrant():
    rows = [{"split": "train", "quadrant": "sad", "seconds": "8", "source": "a"}] * 3
    text = summary(rows)
    assert "3 (  0.4 min)" in text and "pieces per split: train 1" in text


def test_rerender_passes_a_split_through_the_renderer_and_resumes(tmp_path, capsys):
    from moodmusic.corpus.loaders import DatasetError, load_corpus
    from moodmusic.audio import load_audio
    from moodmusic.mel import log_mel

    source, out = tmp_path / "corpus", tmp_path / "rerendered"
    build(BuildConfig(out=str(source), clips=12, seconds=2.0, seed=5), progress=False)
    train_rows = [row for row in read_manifest(source) if row["split"] == "train"]
    assert main(["corpus", "rerender", "--from", str(source), "--out", str(out), "--split", "train"]) == 0
    assert f"{len(train_rows)} clips rendered" in capsys.readouterr().out
    rows = read_manifest(out)
    assert [(r["id"], r["valence"], r["arousal"], r["split"]) for r in rows] == [(r["id"], r["valence"], r["arousal"], r["split"]) for r in train_rows]
    assert all(r["mel"] == "" for r in rows)  # the rerendered audio's own mel is computed when it is loaded
    assert all(np.array_equal(np.load(out / r["cue_tracks"]), np.load(source / r["cue_tracks"])) for r in rows)  # the notes did not move
    clips = load_corpus(out)
    assert all(clip.mel is None and clip.audio.exists() for clip in clips)
    # The audio is the source's mel made sound again: close in its mel, not the same samples.
    original, again = load_audio(source / train_rows[0]["audio"]), load_audio(clips[0].audio)
    assert abs(len(again) - len(original)) < 1024 and not np.allclose(again[: len(original)], original[: len(again)], atol=1e-3)
    original_mel, again_mel = log_mel(original), log_mel(again)
    frames = min(original_mel.shape[1], again_mel.shape[1])
    assert float((original_mel[:, :frames] - again_mel[:, :frames]).abs().mean()) < 0.5
    assert main(["corpus", "rerender", "--from", str(source), "--out", str(out), "--split", "train"]) == 0
    assert "0 clips rendered" in capsys.readouterr().out  # resumed: nothing left to do
    with pytest.raises(DatasetError, match="no manifest.csv"):
        from moodmusic.vocoder.rerender import rerender

        rerender(tmp_path / "nowhere", out)


def test_cue_tracks_are_written_and_an_older_build_is_annotated_to_the_same(tmp_path, capsys):
    out = tmp_path / "corpus"
    build(BuildConfig(out=str(out), clips=12, seconds=2.0, seed=5, cues="v3"), progress=False)
    rows = read_manifest(out)
    written = {row["id"]: np.load(out / row["cue_tracks"]) for row in rows}
    assert all(tracks.shape == (2, frames_for_seconds(2)) for tracks in written.values())
    for row in rows:  # each cue sounds only on its side of valence, and only when its share is drawn
        doubled, dissonant = written[row["id"]].sum(axis=1)
        assert (doubled > 0) <= (float(row["consonant_doubling"]) > 0) and (dissonant > 0) <= (float(row["dissonance"]) > 0)
    assert any(tracks[0].any() for tracks in written.values()) and any(tracks[1].any() for tracks in written.values())

    # A build from before cue tracks: no folder, no column. Annotating re-arranges it to the same tracks.
    shutil.rmtree(out / "cue_tracks")
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "cue_tracks"])
        writer.writeheader()
        writer.writerows({k: v for k, v in row.items() if k != "cue_tracks"} for row in rows)
    assert main(["corpus", "annotate", "--corpus", str(out)]) == 0
    assert "cue tracks written for 12 clips" in capsys.readouterr().out
    again = read_manifest(out)
    assert all(np.array_equal(np.load(out / row["cue_tracks"]), written[row["id"]]) for row in again)

    # A manifest that the plan does not reproduce is refused, not annotated wrongly.
    again[0]["bpm"] = "1.0"
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(again[0]))
        writer.writeheader()
        writer.writerows(again)
    with pytest.raises(SystemExit, match="does not re-arrange"):
        main(["corpus", "annotate", "--corpus", str(out)])
