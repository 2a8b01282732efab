"""The evaluation harness: the closed loop, the folder report and the benchmark on tiny untrained models.

The numbers mean nothing here (the models make noise); the tests check that every section of each report
is there, holds finite numbers, and that the metrics themselves are right on inputs with known answers.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import soundfile

from moodmusic.metrics import frechet_distance, frechet_distance_from_stats, mean_pairwise_l1, quadrant_confusion, spearman
from moodmusic.mel import SAMPLE_RATE
from moodmusic.mood import NAMED_MOODS
from conftest import finite_numbers, tone, write_tiny_corpus


# ---- metrics on known answers ----------------------------------------------------------------------------


def test_frechet_distance_of_identical_sets_is_zero():
    points = np.random.default_rng(0).normal(size=(200, 6))
    assert frechet_distance(points, points) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_of_a_shifted_set_is_the_squared_shift():
    points = np.random.default_rng(1).normal(size=(300, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(points, points + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_frechet_distance_of_known_gaussians():
    # Diagonal covariances: the trace term is sum (sigma_a - sigma_b)^2, per dimension.
    mean_a, mean_b = np.array([0.0, 1.0]), np.array([1.0, 1.0])
    cov_a, cov_b = np.diag([1.0, 4.0]), np.diag([4.0, 9.0])
    expected = 1.0 + (1.0 - 2.0) ** 2 + (2.0 - 3.0) ** 2
    assert frechet_distance_from_stats(mean_a, cov_a, mean_b, cov_b) == pytest.approx(expected)
    # and from samples of those Gaussians, approximately
    rng = np.random.default_rng(2)
    a = rng.multivariate_normal(mean_a, cov_a, size=20000)
    b = rng.multivariate_normal(mean_b, cov_b, size=20000)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.1)


def test_frechet_distance_stays_finite_with_fewer_points_than_dimensions():
    rng = np.random.default_rng(3)
    value = frechet_distance(rng.normal(size=(5, 32)), rng.normal(size=(7, 32)))
    assert value is not None and math.isfinite(value) and value > 0
    assert frechet_distance(rng.normal(size=(1, 4)), rng.normal(size=(5, 4))) is None


def test_spearman_and_confusion():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [5, 5, 5, 5]) is None  # undefined, not NaN
    asked = np.array([NAMED_MOODS[q] for q in ("happy", "angry", "sad", "calm")])
    heard = asked.copy()
    heard[3] = NAMED_MOODS["sad"]  # a calm clip heard as sad
    confusion = quadrant_confusion(asked, heard)
    assert confusion["accuracy"] == 0.75 and confusion["rows_true_columns_heard"][3] == [0, 0, 1, 0]


def test_mood_section_reports_accuracy_per_seed():
    from moodmusic.evaluation.closed_loop import _mood_section

    def record(valence, arousal, seed, heard_valence):
        return {"valence": valence, "arousal": arousal, "seed": seed, "heard_valence": heard_valence, "heard_arousal": arousal}

    # Seed 0 is heard right on both off-axis moods, seed 1 on one of them; the on-axis point counts for neither.
    records = [record(0.8, 0.8, 0, 0.5), record(-0.8, 0.8, 0, -0.5), record(0.8, 0.8, 1, 0.5), record(-0.8, 0.8, 1, 0.5), record(0.0, 0.8, 1, -0.9)]
    mood = _mood_section(records)
    assert mood["off_axis_clips"] == 4 and mood["quadrant_accuracy"] == 0.75
    assert mood["quadrant_accuracy_by_seed"] == {0: 1.0, 1: 0.5}
    assert mood["quadrant_accuracy_seed_stderr"] == pytest.approx(0.25)


def test_mean_pairwise_l1():
    mels = [np.zeros((80, 10)), np.ones((80, 12)), np.full((80, 10), 3.0)]
    value, pairs = mean_pairwise_l1(mels)
    assert pairs == 3 and value == pytest.approx((1 + 3 + 2) / 3)
    assert mean_pairwise_l1(mels[:1]) == (None, 0)


def test_shuffled_slices_keep_length_and_draw_from_the_same_group():
    from moodmusic.evaluation.closed_loop import shuffle_slices

    mels = [np.full((80, 100), 1.0), np.full((80, 90), 2.0), np.full((80, 70), 9.0)]
    shuffled = shuffle_slices(mels, ["a", "a", "b"], slice_frames=32)
    assert [m.shape for m in shuffled] == [m.shape for m in mels]
    assert set(np.unique(shuffled[0])) <= {1.0, 2.0} and set(np.unique(shuffled[2])) == {9.0}


# ---- the closed loop ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(tiny_checkpoints):
    import torch

    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    torch.set_num_threads(1)
    return load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())


def test_closed_loop_quick_report_has_every_section(pipeline, tmp_path):
    from moodmusic.evaluation.closed_loop import ClosedLoopConfig, _run, write_report

    corpus = write_tiny_corpus(tmp_path / "corpus", clips_per_split=16)  # 4 test clips per quadrant
    config = ClosedLoopConfig.quick(seconds=2.0, corpus=str(corpus), progress=False)
    report, artifacts = _run(pipeline, config)
    write_report(report, artifacts, tmp_path / "out", "test")
    assert report["clips"] == 18 and len(report["per_clip"]) == 18
    mood = report["mood"]
    assert mood["confusion"]["clips"] == 8  # the 3 x 3 grid has 4 off-axis points, 2 seeds each
    for key in ("quadrant_accuracy", "quadrant_accuracy_all_points", "valence_mae", "arousal_mae"):
        assert math.isfinite(mood[key]), key
    generated_acoustic = report["acoustic"]["generated_vs_asked"]
    assert set(generated_acoustic["spearman"]) == {"tempo_bpm", "onset_rate", "rms_db", "centroid_hz", "major"}
    assert report["acoustic"]["real_vs_labels"]["clips"] == 8
    diversity = report["diversity"]
    assert diversity["generated_mean_pairwise_l1"] > 0 and diversity["real_same_quadrant_mean_pairwise_l1"] > 0 and diversity["ratio"] > 0
    frechet = report["realism"]["frechet"]
    assert set(frechet) == {"generated", "copy_synthesis", "shuffled_slices", "real_vs_real"}
    assert all(math.isfinite(v) and v >= 0 for v in frechet.values())
    assert report["realism"]["sizes"]["reference"] == report["realism"]["sizes"]["copy_synthesis"] == 8
    assert 0.0 <= report["narration"]["names_heard_primary_rate"] <= 1.0
    assert set(report["acceptance"]) == {"quadrant_accuracy", "valence_mae", "arousal_mae", "arousal_spearman", "valence_spearman", "diversity_ratio",
                                         "frechet_margin", "key_mode_agreement", "onset_rate_arousal_spearman", "level_gates_passed"}  # fmt: skip
    # The level gates: every clip was measured; a clip failing one counts as a miss whatever was heard.
    mood = report["mood"]
    assert set(mood["gates"]) == {"floor", "dead_air", "true_peak"} and all(r["level"]["loudness_lufs"] is not None for r in report["per_clip"])
    hits = [r["heard_quadrant"] == r["asked_quadrant"] and not r["gates_failed"] for r in report["per_clip"] if r["valence"] and r["arousal"]]
    assert mood["quadrant_accuracy"] == pytest.approx(sum(hits) / len(hits))
    numbers = dict(finite_numbers(report))
    assert numbers
    written = json.loads((tmp_path / "out" / "evaluation.json").read_text())  # strict JSON: no NaN
    assert written["mood"] == report["mood"]
    markdown = (tmp_path / "out" / "evaluation.md").read_text()
    for heading in ("## Acceptance", "## Level gates", "## Does the clip carry", "## The independent acoustic judge", "## Diversity", "## Realism", "## Narration"):
        assert heading in markdown
    for image in ("confusion", "scatter", "acoustic", "mels", "embeddings"):
        assert (tmp_path / "out" / f"evaluation_{image}.png").stat().st_size > 1000, image


def test_closed_loop_without_a_corpus_says_so(pipeline, tmp_path):
    from moodmusic.evaluation.closed_loop import ClosedLoopConfig, evaluate_grid

    config = ClosedLoopConfig(grid=2, seeds=2, seconds=1.0, corpus=str(tmp_path / "missing"), acoustic=False, progress=False)
    report = evaluate_grid(pipeline, config)
    assert report["realism"]["available"] is False and "no corpus" in report["realism"]["reason"]
    assert report["diversity"]["ratio"] is None and report["acceptance"]["frechet_margin"]["met"] is None
    assert report["clips"] == 8 and "acoustic" not in report
    list(finite_numbers(report))
    # a dict config, as a request body gives it, works the same
    assert evaluate_grid(pipeline, {"grid": 2, "seeds": 1, "seconds": 1.0, "corpus": None, "acoustic": False, "progress": False})["clips"] == 4


def test_evaluate_chain_command(tiny_checkpoints, tmp_path):
    from moodmusic.cli import main

    corpus = write_tiny_corpus(tmp_path / "corpus", clips_per_split=8, seconds=1.5)
    out = tmp_path / "report"
    code = main(["evaluate", "chain", "--quick", "--grid", "2", "--seeds", "2", "--seconds", "1.5", "--corpus", str(corpus),
                 "--checkpoints", str(tiny_checkpoints), "--out", str(out), "--threads", "1", "--no-acoustic"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["config"]["grid"] == 2 and report["realism"]["frechet"]["generated"] is not None


# ---- a folder a user brings ----------------------------------------------------------------------------------


def test_folder_report(tiny_checkpoints, tmp_path):
    from moodmusic.cli import main

    music = tmp_path / "soundtrack"
    (music / "level2").mkdir(parents=True)
    soundfile.write(music / "menu.wav", tone(2.0, 330.0), SAMPLE_RATE)
    soundfile.write(music / "level2" / "boss.wav", tone(3.5, 110.0, amplitude=0.6), SAMPLE_RATE)
    soundfile.write(music / "credits.flac", tone(1.0, 523.0, amplitude=0.1), SAMPLE_RATE)
    (music / "broken.wav").write_bytes(b"not audio at all")
    (music / "notes.txt").write_text("ignored")
    out = tmp_path / "report"
    assert main(["evaluate", "folder", str(music), "--out", str(out), "--checkpoints", str(tiny_checkpoints), "--narrate"]) == 0
    report = json.loads((out / "folder.json").read_text())
    summary = report["summary"]
    assert summary["files"] == 4 and summary["analysed"] == 3 and summary["failed"] == 1
    assert sum(summary["quadrant_shares"].values()) == pytest.approx(1.0)
    assert sum(summary["primary_mood_shares"].values()) == pytest.approx(1.0)
    rows = {r["file"]: r for r in report["files"]}
    assert "error" in rows["broken.wav"] and rows["level2/boss.wav"]["seconds"] == pytest.approx(3.5, abs=0.01)
    assert all(r["narrative"] for name, r in rows.items() if name != "broken.wav")
    list(finite_numbers(report))
    with open(out / "folder.csv") as f:
        assert len(list(csv.DictReader(f))) == 4
    assert (out / "folder_mood_square.png").stat().st_size > 1000
    assert "| calm |" in (out / "folder.md").read_text() or "| happy |" in (out / "folder.md").read_text()


# ---- the benchmark --------------------------------------------------------------------------------------------


def test_bench_quick(pipeline, tmp_path):
    from moodmusic.evaluation.bench import BenchConfig, bench, markdown

    results = bench(pipeline, BenchConfig.quick(seconds=2.0, analysis_seconds=3.0, stream_seconds=1.0, threads=1))
    for section in ("generator", "vocoder", "generate_and_vocode", "compose", "analysis"):
        assert results[section]["median_s"] > 0 and results[section]["real_time_factor"] > 0 and results[section]["peak_rss_mb"] > 0
    assert set(results["classifier"]["throughput_windows_per_s"]) == {"1", "16", "64", "256"}
    assert results["narrator"]["p95_ms"] > 0
    streaming = results["streaming"]
    assert streaming["time_to_first_audio_s"] > 0 and streaming["min_lead_s"] is not None
    assert results["server_load"]["available"] is False
    assert len(results["acceptance"]) == 16
    assert results["acceptance"]["server_load.clip_p50_s"]["met"] is None  # not measured without --load-test
    loops = results["loops"]
    assert loops["loops"] == 8 and 0 <= loops["jump_pass_rate"] <= 1 and 0 <= loops["rms_pass_rate"] <= 1
    list(finite_numbers(results))
    text = markdown(results, "test")
    assert "## Classifier" in text and "## Streaming" in text and "## Server under load" in text and "## Loop seams" in text
