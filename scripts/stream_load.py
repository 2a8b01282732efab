"""Moved into the package: `python -m moodmusic.evaluation.stream_load` (what `moodmusic bench --load-test` runs).

This wrapper keeps the old command, `python scripts/stream_load.py ...`, that docs/benchmarks.md records, working
from a source checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moodmusic.evaluation.stream_load import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
