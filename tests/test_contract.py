"""The published OpenAPI contract against a real server on loopback: Schemathesis generates requests from
/openapi.json (valid and invalid ones, every operation, stateful sequences that follow a made clip) and runs
all its checks: no 5xx, every status and body as documented, schema-valid requests accepted, invalid ones
refused, answers within the deadline.

CI runs a bounded, seeded run (MOODMUSIC_CONTRACT_EXAMPLES cases per operation, default 8). The full run
that docs/server.md quotes: MOODMUSIC_CONTRACT_EXAMPLES=80 .venv/bin/python -m pytest tests/test_contract.py -s
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from moodmusic.server.app import create_app
from moodmusic.server.background import BackgroundServer
from moodmusic.server.settings import Settings

EXAMPLES = int(os.environ.get("MOODMUSIC_CONTRACT_EXAMPLES", "8"))
DEADLINE_S = 20.0  # the server's; a response may take it and a little more (the 504 itself)
CONFIG = Path(__file__).with_name("schemathesis.toml")


def test_schemathesis_finds_no_failure_in_the_contract(tiny_checkpoints, tmp_path):
    from moodmusic.pipeline import load_pipeline
    from moodmusic.narrator import TemplateNarrator

    pipeline = load_pipeline(tiny_checkpoints, narrator=TemplateNarrator())
    settings = Settings(store_dir=str(tmp_path / "store"), workers=2, queue_size=16, deadline_s=DEADLINE_S, warmup=False)
    schemathesis = Path(sys.executable).with_name("schemathesis")
    with BackgroundServer(create_app(settings, pipeline)) as running:
        command = [str(schemathesis), "--config-file", str(CONFIG), "run", running.url + "/openapi.json", "--checks", "all",
                   "--max-examples", str(EXAMPLES), "--seed", "1", "--max-response-time", str(DEADLINE_S + 5), "--workers", "1",
                   "--request-timeout", str(DEADLINE_S + 30), "--generation-database", "none", "--no-color"]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    print(output[-1500:])
    assert result.returncode == 0, output[-8000:]
    assert generated and int(generated.group(1)) >= 11 * EXAMPLES // 2, output[-2000:]  # it did generate cases for the operations
    assert "Tested: 11" in output or "Tested: 12" in output, output[-2000:]  # every operation
