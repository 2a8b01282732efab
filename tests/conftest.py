"""Shared helpers: small synthetic audio that tests make themselves."""

from __future__ import annotations

import math

import numpy as np
import pytest

from moodmusic.mel import SAMPLE_RATE


def finite_numbers(value, path: str = "report") -> dict[str, float]:
    """Every number in a JSON-like tree (a report), by its path; fails naming those that are NaN or infinite."""
    numbers: dict[str, float] = {}

    def walk(item, where: str) -> None:
        if isinstance(item, dict):
            for key, inner in item.items():
                walk(inner, f"{where}.{key}")
        elif isinstance(item, list):
            for index, inner in enumerate(item):
                walk(inner, f"{where}[{index}]")
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            numbers[where] = item

    walk(value, path)
    bad = [where for where, number in numbers.items() if not math.isfinite(number)]
    assert not bad, f"non-finite numbers: {bad[:5]}"
    return numbers


def tone(seconds: float = 1.0, frequency: float = 440.0, amplitude: float = 0.3, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture
def make_tone():
    return tone


# The tiny models live in the package so that `python -m moodmusic.evaluation.load_test --tiny` works from
# an installed copy too; this name stays the tests' (and scripts') way to get them.
from moodmusic.evaluation.tiny import write_tiny_checkpoints  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """A checkpoints folder of tiny untrained models (see write_tiny_checkpoints)."""
    return write_tiny_checkpoints(tmp_path_factory.mktemp("checkpoints"))


def write_tiny_corpus(folder, clips_per_split: int = 4, seconds: float = 2.0) -> "Path":
    """A corpus folder in the builder's layout (manifest.csv, audio/, mel/) made of synthetic tones.

    Moods alternate over the four quadrants; louder, higher, faster-pulsing tones for higher arousal.
    """
    import csv
    from pathlib import Path

    from moodmusic.audio import write_wav
    from moodmusic.mel import log_mel

    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    (folder / "mel").mkdir(exist_ok=True)
    corners = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)]
    rows = []
    for split in ("train", "val", "test"):
        for i in range(clips_per_split):
            valence, arousal = corners[i % 4]
            clip_id = f"{split}{i:03d}"
            t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            pulse = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * (2 + 2 * arousal) * t))
            samples = (0.1 + 0.1 * arousal) * pulse * np.sin(2 * np.pi * (330 + 110 * valence + 20 * i) * t)
            write_wav(folder / "audio" / f"{clip_id}.wav", samples.astype(np.float32))
            np.save(folder / "mel" / f"{clip_id}.npy", log_mel(samples.astype(np.float32)).numpy().astype(np.float16))
            rows.append({"id": clip_id, "source": f"tones/{clip_id}", "split": split, "valence": valence, "arousal": arousal,
                         "audio": f"audio/{clip_id}.wav", "mel": f"mel/{clip_id}.npy"})  # fmt: skip
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A 12-clip synthetic corpus (see write_tiny_corpus)."""
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))
