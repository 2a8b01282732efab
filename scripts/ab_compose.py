"""Time `Pipeline.compose` (10 s, verify + narrate with the template narrator) in two source trees, interleaved.

The chain's speed target compares a change against the commit before it on the same machine in the same
run; this shared 2-core machine drifts by 10-20% between minutes, so the two trees take turns, a few clips
each, and the medians of all clips are compared.

    git worktree add /tmp/base <commit>
    .venv/bin/python scripts/ab_compose.py /tmp/base . --rounds 6 --clips 8
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import sys, json, time
sys.path.insert(0, sys.argv[1])
import torch; torch.set_num_threads(2)
import moodmusic.pipeline as P
from moodmusic.narrator import TemplateNarrator
assert P.__file__.startswith(sys.argv[1]), P.__file__
chain = P.load_pipeline(narrator=TemplateNarrator())
chain.compose("calm", 10.0, seed=999, verify=True, narrate=True)  # warm-up
moods, times = ["calm", "sad", "angry", "happy"], []
for i in range(int(sys.argv[2])):
    started = time.perf_counter()
    chain.compose(moods[i % 4], 10.0, seed=int(sys.argv[3]) + i, verify=True, narrate=True)
    times.append(time.perf_counter() - started)
print(json.dumps(times))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the earlier tree (e.g. a git worktree of the previous commit)")
    parser.add_argument("after", help="the tree under test")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--clips", type=int, default=8, help="clips per tree per round")
    args = parser.parse_args()
    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    times: dict[str, list[float]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", CHILD, tree, str(args.clips), str(100 * round_)], capture_output=True, text=True, check=True)
            times[name] += json.loads(out.stdout.strip().splitlines()[-1])
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({"clips_each": len(times["before"]), "median_s": medians, "ratio_after_over_before": medians["after"] / medians["before"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
