"""The measuring scripts run end to end against a real server (tiny models: plumbing, not figures)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, tmp_path: Path) -> dict:
    """A load driver of the package (`python -m moodmusic.evaluation.<name>`, what `moodmusic bench --load-test` runs)."""
    out = tmp_path / f"{name}.json"
    result = subprocess.run([sys.executable, "-m", f"moodmusic.evaluation.{name}", "--tiny", *args, "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(out.read_text())


def test_load_script_reports_latency_statuses_and_memory(tmp_path):
    summary = run_script("load_test", "--requests", "100", "--concurrency", "4", "--clip-seconds", "1", "--analyze-seconds", "3", tmp_path=tmp_path)
    assert summary["requests"] == 100 and not summary["errors"]
    assert {"clip", "analyze", "moods"} <= set(summary["routes"]) and summary["routes"]["clip"]["p50_s"] > 0


def test_stream_script_plays_concurrent_streams_through_the_server(tmp_path):
    summary = run_script("stream_load", "--streams", "2", "--seconds", "3", tmp_path=tmp_path)
    assert summary["streams"] == 2 and summary["sequence_gaps"] == 0 and summary["underruns"] == 0
    assert all(s["seconds"] >= 3 for s in summary["per_stream"]) and summary["server_rss_mb"]["peak"] > 0


def load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / ("research" if (REPO / "research" / f"{name}.py").exists() else "scripts") / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_note_transcriber_counts_a_third_under_the_top_note_and_only_the_same_instruments_one():
    import numpy as np
    import torch

    transcriber = load_script("note_transcriber")
    roll = np.zeros((16, 72, 4), dtype=bool)
    roll[0, 40, :] = True  # the melody's top note in every frame
    roll[0, 36, 0] = True  # frame 0: a major third under it, same instrument
    roll[1, 37, 1] = True  # frame 1: a minor third under it, another instrument
    roll[1, 38, 2] = True  # frame 2: a second under it: no third
    assert transcriber.third_under_top(torch.from_numpy(roll.any(axis=0))[None]).tolist() == [[1.0, 1.0, 0.0, 0.0]]
    assert transcriber.same_instrument_third_share(roll) == 0.25
    model = transcriber.NoteTranscriber(channels=4)
    notes, frames = model(torch.rand(2, 72, 40))
    assert notes.shape == (2, 72, 40) and frames.shape == (2, len(transcriber.FRAME_HEADS), 40)
