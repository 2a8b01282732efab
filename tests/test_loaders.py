"""The loaders for data a user brings, each on small files in its real layout."""

import numpy as np
import pytest
import soundfile

from moodmusic.corpus.loaders import DatasetError, load_any, load_csv_manifest, load_deam, load_quadrant_folders, split_of


def write(path, seconds=0.5, suffix_format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.sin(np.arange(int(seconds * 22050)) * 0.05).astype(np.float32) * 0.2
    soundfile.write(path, samples, 22050, format=suffix_format)
    return path


def make_deam(root):
    for song in (2, 3, 2001):
        write(root / "MEMD_audio" / f"{song}.mp3", suffix_format="MP3")
    annotations = root / "annotations" / "annotations averaged per song" / "song_level"
    annotations.mkdir(parents=True)
    (annotations / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "song_id, valence_mean, valence_std, arousal_mean, arousal_std\n2,3.1,0.94,3,0.63\n3,9,1.0,1,1.0\n4,5,1,5,1\n"
    )
    (annotations / "static_annotations_averaged_songs_2000_2058.csv").write_text(
        "song_id,valence_mean,valence_std,valence_max_mean,valence_max_std,valence_min_mean,valence_min_std,arousal_mean,arousal_std\n"
        "2001,7,1,8,1,6,1,5,1\n"
    )


def test_deam_layout(tmp_path):
    make_deam(tmp_path / "DEAM")
    clips = {c.source: c for c in load_deam(tmp_path / "DEAM")}
    assert set(clips) == {"deam/2", "deam/3", "deam/2001"}  # song 4 has no audio
    assert clips["deam/2"].valence == pytest.approx((3.1 - 5) / 4) and clips["deam/2"].arousal == pytest.approx(-0.5)
    assert clips["deam/3"].valence == 1.0 and clips["deam/3"].arousal == -1.0
    assert clips["deam/2001"].valence == 0.5 and clips["deam/2001"].audio.suffix == ".mp3"
    assert load_any(tmp_path / "DEAM") == load_deam(tmp_path / "DEAM")


def test_csv_manifest_with_scales_and_errors(tmp_path):
    write(tmp_path / "audio" / "a.wav")
    write(tmp_path / "audio" / "b.flac", suffix_format="FLAC")
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,valence,arousal\naudio/a.wav,0.5,-0.5\naudio/b.flac,-1,1\n")
    clips = load_csv_manifest(manifest)
    assert [(c.valence, c.arousal) for c in clips] == [(0.5, -0.5), (-1.0, 1.0)]
    assert all(c.split in ("train", "val", "test") for c in clips)
    unit = tmp_path / "unit.csv"
    unit.write_text("path,valence,arousal\naudio/a.wav,0.75,0.25\n")
    assert load_csv_manifest(unit, scale="unit")[0].valence == 0.5
    with pytest.raises(DatasetError, match="outside"):
        load_csv_manifest(_write(tmp_path / "bad.csv", "path,valence,arousal\naudio/a.wav,5,5\n"))
    with pytest.raises(DatasetError, match="missing column"):
        load_csv_manifest(_write(tmp_path / "cols.csv", "file,v,a\naudio/a.wav,0,0\n"))
    with pytest.raises(DatasetError, match="does not exist"):
        load_csv_manifest(_write(tmp_path / "gone.csv", "path,valence,arousal\naudio/nope.wav,0,0\n"))
    assert load_any(manifest) == clips


def _write(path, text):
    path.write_text(text)
    return path


def test_quadrant_folders(tmp_path):
    for folder in ("happy", "tense", "sad", "relaxed", "notes"):
        write(tmp_path / folder / "x.wav")
    clips = load_quadrant_folders(tmp_path)
    assert len(clips) == 4 and all(c.quadrant_only for c in clips)
    quadrant_of = {c.source.split("/")[0]: (c.valence >= 0, c.arousal >= 0) for c in clips}
    assert quadrant_of == {"happy": (True, True), "tense": (False, True), "sad": (False, False), "relaxed": (True, False)}
    assert load_any(tmp_path) == clips


def test_unknown_layout_and_split_stability(tmp_path):
    (tmp_path / "misc").mkdir()
    with pytest.raises(DatasetError, match="not a layout we know"):
        load_any(tmp_path)
    assert split_of("some/song.mp3") == split_of("some/song.mp3")
    splits = [split_of(f"song{i}") for i in range(2000)]
    assert 0.75 < splits.count("train") / 2000 < 0.85
