"""Does the scaled-out server hear real music as the single one does? Three Debian game tracks, as shipped and 20 dB
quieter, sent to `POST /v1/analyze` of `moodmusic serve` and of `moodmusic serve --ray` (the Listener deployment).

    .venv/bin/python research/ray_real_recordings.py      # prints a Markdown table and the largest difference

Needs the soundtracks scripts/install_soundtracks.sh installs (hedgewars-data, supertux-data).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from scale_check import start, stop  # noqa: E402

TRACKS = [
    Path("/usr/share/games/hedgewars/Data/Music/Castle.ogg"),
    Path("/usr/share/games/hedgewars/Data/Music/Beach.ogg"),
    Path("/usr/share/games/supertux2/music/antarctic/chipdisko.ogg"),
]


def uploads() -> dict[str, bytes]:
    """Each track as 16-bit FLAC (a WAV of the longest is over the 50 MB upload limit), as shipped and 20 dB quieter."""
    out = {}
    for track in TRACKS:
        samples, rate = soundfile.read(track, dtype="float32", always_2d=False)
        for gain_db in (0, -20):
            buffer = io.BytesIO()
            soundfile.write(buffer, samples * 10 ** (gain_db / 20), rate, format="FLAC", subtype="PCM_16")
            out[f"{track.stem} {gain_db:+d} dB"] = buffer.getvalue()
    return out


def main() -> int:
    files = uploads()
    scratch = Path(tempfile.mkdtemp(prefix="moodmusic-real-"))
    python = [sys.executable, "-m", "moodmusic.server.cli", "--narrator", "template"]
    heard: dict[str, dict[str, dict]] = {}
    for name, command in {"single": python + ["--store", str(scratch / "a")],
                          "ray": python + ["--ray", "--composers", "1", "--store", str(scratch / "b")]}.items():  # fmt: skip
        process, url = start(command, scratch / f"{name}.log")
        try:
            for label, data in files.items():
                answer = httpx.post(f"{url}/v1/analyze", files={"file": ("track.flac", data)}, data={"narrate": "false"}, timeout=300)
                answer.raise_for_status()
                heard.setdefault(label, {})[name] = answer.json()["heard"]
        finally:
            stop(process)
            if name == "ray":
                import subprocess

                subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
    print("| track | single: valence, arousal, quadrant | ray: valence, arousal, quadrant |")
    print("|---|---|---|")
    largest = 0.0
    for label, by in heard.items():
        a, b = by["single"], by["ray"]
        largest = max(largest, abs(a["valence"] - b["valence"]), abs(a["arousal"] - b["arousal"]))
        print(f"| {label} | {a['valence']:+.3f}, {a['arousal']:+.3f}, {a['quadrant']} | {b['valence']:+.3f}, {b['arousal']:+.3f}, {b['quadrant']} |")
    print(f"\nlargest difference between the servers: {largest:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
