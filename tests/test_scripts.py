"""The measuring scripts run end to end against a real server (tiny models: plumbing, not figures)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, tmp_path: Path) -> dict:
    out = tmp_path / f"{name}.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / name), "--tiny", *args, "--json", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(out.read_text())


def test_load_script_reports_latency_statuses_and_memory(tmp_path):
    summary = run_script("load_test.py", "--requests", "100", "--concurrency", "4", "--clip-seconds", "1", "--analyze-seconds", "3", tmp_path=tmp_path)
    assert summary["requests"] == 100 and not summary["errors"]
    assert {"clip", "analyze", "moods"} <= set(summary["routes"]) and summary["routes"]["clip"]["p50_s"] > 0


def test_stream_script_plays_concurrent_streams_through_the_server(tmp_path):
    summary = run_script("stream_load.py", "--streams", "2", "--seconds", "3", tmp_path=tmp_path)
    assert summary["streams"] == 2 and summary["sequence_gaps"] == 0 and summary["underruns"] == 0
    assert all(s["seconds"] >= 3 for s in summary["per_stream"]) and summary["server_rss_mb"]["peak"] > 0
