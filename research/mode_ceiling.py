"""How much of the mode (the corpus's main valence cue) each representation holds.

For a random sample of corpus clips, the Krumhansl key estimate (moodmusic.tonality) is asked for the
mode of: the performed notes themselves (the manifest's `performed_key`, computed from the score), the
classifier's audio chroma (classifier.features), and the 80-band log-mel folded onto the 12 pitch
classes by each band's centre frequency (the only tonal view a generator that writes the shared mel
gets). Agreement with the written mode is printed for each: a ceiling for what a model reading that
representation can hear of valence.

    python research/mode_ceiling.py --corpus data/corpus --clips 800
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import soundfile
import torch
from tqdm import tqdm

from moodmusic.classifier.features import chroma, spectral_peaks
from moodmusic.mel import MEL, N_MELS, SAMPLE_RATE
from moodmusic.tonality import estimate_key


def mel_to_pitch_class(lowest_hz: float) -> np.ndarray:
    """(12, 80): each mel band from `lowest_hz` up shared between the two pitch classes nearest its centre."""
    import librosa

    centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=MEL.f_min, fmax=MEL.f_max, htk=False)[1:-1]
    midi = 69 + 12 * np.log2(np.maximum(centres, 1.0) / 440.0)
    distance = np.abs((midi[None, :] - np.arange(12)[:, None] + 6) % 12 - 6)
    weights = np.maximum(0.0, 1.0 - distance)
    weights[:, centres < lowest_hz] = 0.0
    return weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/corpus")
    parser.add_argument("--clips", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    corpus = Path(args.corpus)
    with open(corpus / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    rows = [rows[i] for i in np.random.default_rng(args.seed).choice(len(rows), size=min(args.clips, len(rows)), replace=False)]
    folds = {lowest: mel_to_pitch_class(lowest) for lowest in (200.0, 500.0, 1000.0)}
    agree: dict[str, list[bool]] = {"score (performed notes)": [], "audio chroma (classifier)": []}
    for row in tqdm(rows, desc="clips"):
        mode = row["mode"]
        agree["score (performed notes)"].append(row["performed_key"].split()[-1] == mode)
        samples, rate = soundfile.read(corpus / row["audio"], dtype="float32")
        assert rate == SAMPLE_RATE, f"{row['audio']}: {rate} Hz"
        agree["audio chroma (classifier)"].append(estimate_key(chroma(samples).mean(dim=1).numpy()).mode == mode)
        energy = np.exp(np.load(corpus / row["mel"]).astype(np.float32))
        scaled = energy / np.maximum(energy.max(axis=0, keepdims=True), 1e-12)
        peaks = spectral_peaks(torch.from_numpy(scaled)).numpy()
        for lowest, fold in folds.items():
            for name, bands in (("all bands", scaled), ("band peaks", peaks)):
                key = f"log-mel folded, from {lowest:.0f} Hz, {name}"
                agree.setdefault(key, []).append(estimate_key((fold @ bands).mean(axis=1)).mode == mode)
    print(json.dumps({"clips": len(rows), "mode_agreement": {k: round(float(np.mean(v)), 4) for k, v in agree.items()}}, indent=2))


if __name__ == "__main__":
    main()
