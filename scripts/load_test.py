"""Moved into the package: `python -m moodmusic.evaluation.load_test` (what `moodmusic bench --load-test` runs).

This wrapper keeps the old command, `python scripts/load_test.py ...`, that docs/benchmarks.md records, working
from a source checkout.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from moodmusic.evaluation.load_test import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
