"""The shipped checkpoints, end to end: `moodmusic evaluate --quick` (the closed loop) and `moodmusic generate`.

CI has no data/ folder (it is built, not committed), so the quick evaluation's real references come
from a small test-split corpus rendered here with FluidSynth (about 10 s). Every section of the report
must be present with finite numbers (issue 8); the numbers themselves are judged in docs/evaluation.md
from the full grid, not here.
"""

from __future__ import annotations

import json

import pytest

from moodmusic import checkpoints
from moodmusic.cli import main
from conftest import finite_numbers

pytestmark = pytest.mark.skipif(
    not all((checkpoints.stage_dir(s) / checkpoints.WEIGHTS_FILE).exists() for s in ("generator", "vocoder", "classifier")),
    reason="needs the shipped generator, vocoder and classifier",
)


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    assert main(["corpus", "build", "--out", str(folder), "--clips", "160", "--seconds", "4", "--only-split", "test", "--workers", "2"]) == 0
    return folder


def test_quick_closed_loop_report_is_complete(real_corpus, tmp_path):
    # Issue 8 spells it `moodmusic evaluate --quick`: the group alone runs the closed loop.
    assert main(["evaluate", "--quick", "--corpus", str(real_corpus), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "evaluation.json").read_text())
    for section in ("mood", "acoustic", "diversity", "realism", "narration", "acceptance", "timings"):
        assert report.get(section), f"section {section} missing or empty"
    assert report["realism"].get("frechet"), report["realism"].get("reason")
    assert {"generated", "copy_synthesis", "shuffled_slices"} <= set(report["realism"]["frechet"])
    assert finite_numbers(report)  # fails naming any NaN or infinity
    markdown = (tmp_path / "evaluation.md").read_text()
    assert "confusion" in markdown.lower() and "fréchet" in markdown.lower()
    assert list(tmp_path.glob("evaluation_*.png"))


def test_generate_command_writes_a_clip_and_its_reading(tmp_path, capsys):
    out = tmp_path / "calm.wav"
    assert main(["generate", "--mood", "calm", "--seconds", "3", "--seed", "2", "--out", str(out), "--json", str(tmp_path / "calm.json")]) == 0
    report = json.loads((tmp_path / "calm.json").read_text())
    assert report["asked"]["quadrant"] == "calm" and report["heard"]["quadrant"] in ("happy", "angry", "sad", "calm")
    assert report["narration"]["narrative"] and set(report["timings"]) >= {"generator", "vocoder", "classifier", "narrator"}
    import soundfile

    audio, rate = soundfile.read(out)
    assert rate == 22050 and abs(len(audio) / rate - 3.0) < 0.02
