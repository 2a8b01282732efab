"""How close to the valence target a clip-level read-out of an ear gets, and what it would take to close the rest.

The ear reads valence per ~3 s window and averages the windows. This script reads each clip once through the ear
(`classifier.inference.read_windows`) and keeps, per clip: the averaged (valence, arousal), quadrant probabilities,
major/minor logit and cue-head shares, and the spread of the windows' valence. A gradient-boosted regression (the
read-out) learns valence from those on the train split; its settings are chosen on the val split from a small grid,
and the test split is scored with the chosen one. Then the same with more per-clip facts beside the ear's:

- the shares a note transcriber found (`research/note_transcriber.py shares`, one or more files, averaged),
- the true share of frames whose top note has a third under it (a perfect transcription without instruments),
- the same, counting only a third played by the top note's own instrument (a transcription that knew instruments),
- the true shares of the cue tracks (a listener that finds every doubled and every clashing note).

    python research/valence_readout.py --corpus data/corpus-v3 --checkpoint runs/s24/ear_v3_cue_e60/best \\
        --shares runs/transcriber/shares.npz [--textureless data/corpus-v1 --textureless-shares runs/transcriber/shares-v1.npz]

With --textureless it also fits the read-out on the textured and the textureless train clips together, and scores
both ways on both test splits: what the read-out costs on music that does not carry the corpus's textures.

An experiment: the read-out is fitted on one corpus's clips, and is not part of the shipped ear.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from tqdm import tqdm

from moodmusic import classifier
from moodmusic.classifier.data import load_examples
from moodmusic.corpus.loaders import load_any

SPLITS = ("train", "val", "test")
GRID = {"learning_rate": (0.03, 0.05, 0.1), "max_depth": (3, 4), "max_iter": (200, 400), "loss": ("absolute_error",)}


def ear_features(model: classifier.MoodClassifier, clips: list) -> tuple[np.ndarray, np.ndarray]:
    """(N, features) of each clip as the ear hears it, and (N,) the ear's own valence reading."""
    rows, heard = [], []
    for example in tqdm(load_examples(clips, progress=False, semitones=model.model.reads_semitones, input_lufs=model.config.input_lufs), desc="hearing", unit="clip", leave=False):
        windows = model.read(torch.from_numpy(example.mel.astype(np.float32)), torch.from_numpy(example.tonal.astype(np.float32)))
        (valence, arousal), quadrant_probabilities, _ = windows.combined()
        cues = windows.mean(windows.cue_shares) if windows.cue_shares is not None else np.zeros(0)
        window_valence = windows.valence_arousal[:, 0]
        rows.append([valence, arousal, *quadrant_probabilities, windows.mean(windows.mode_logits), *cues, window_valence.std(), window_valence.min(), window_valence.max()])
        heard.append(valence)
    return np.array(rows), np.array(heard)


def fit_read_out(features: dict[str, np.ndarray], valence: dict[str, np.ndarray]) -> tuple[float, float, dict]:
    """Fit on train for each setting of GRID, choose by val MAE; returns (val MAE, test MAE, the setting)."""
    best = None
    for values in itertools.product(*GRID.values()):
        setting = dict(zip(GRID, values))
        model = HistGradientBoostingRegressor(random_state=0, **setting).fit(features["train"], valence["train"])
        val = float(np.abs(model.predict(features["val"]) - valence["val"]).mean())
        if best is None or val < best[0]:
            best = (val, float(np.abs(model.predict(features["test"]) - valence["test"]).mean()), setting)
    return best


def load_shares(paths: list[str], by_split: dict[str, list]) -> list:
    loaded = [np.load(path) for path in paths]
    for path, shares in zip(paths, loaded):
        for split in SPLITS:
            if list(shares[f"{split}_ids"]) != [c.audio.stem for c in by_split[split]]:
                raise SystemExit(f"{path}: its {split} clips are not this corpus's, in this order")
    return loaded


def readings(model: classifier.MoodClassifier, folder: str, share_paths: list[str]) -> dict:
    """One corpus as the ear (and the transcribers) heard it, per split."""
    clips = load_any(Path(folder))
    by_split = {split: [c for c in clips if c.split == split] for split in SPLITS}
    heard = {split: ear_features(model, by_split[split]) for split in SPLITS}
    loaded = load_shares(share_paths, by_split)
    return {
        "ear": {split: heard[split][0] for split in SPLITS},
        "heard": {split: heard[split][1] for split in SPLITS},
        "valence": {split: np.array([c.valence for c in by_split[split]]) for split in SPLITS},
        "arousal": {split: np.array([c.arousal for c in by_split[split]]) for split in SPLITS},
        "shares": {split: np.mean([x[split] for x in loaded], axis=0) for split in SPLITS} if loaded else None,
        "truth": {split: loaded[0][f"{split}_true"] for split in SPLITS} if loaded else None,  # third under the top note, same instrument, doubling, clash
    }


def compare_with_textureless(textured: dict, textureless: dict) -> None:
    """The read-out (ear + transcriber shares) fitted on the textured clips, or on both renditions, heard on both test
    splits: valence MAE and quadrant accuracy (the quadrant of the read-out's valence and the ear's arousal)."""
    from moodmusic.mood import quadrant_indices

    def features(corpus: dict, split: str) -> np.ndarray:
        return np.hstack([corpus["ear"][split], corpus["shares"][split]])

    def scored(model, corpus: dict) -> str:
        valence = np.clip(model.predict(features(corpus, "test")), -1, 1)
        heard = quadrant_indices(valence, corpus["ear"]["test"][:, 1])
        asked = quadrant_indices(corpus["valence"]["test"], corpus["arousal"]["test"])
        return f"{np.abs(valence - corpus['valence']['test']).mean():.4f} / {np.mean(heard == asked):.1%}"

    setting = fit_read_out({s: features(textured, s) for s in SPLITS}, textured["valence"])[2]
    print("\n| read-out of ear + transcriber | textured test: valence MAE / quadrant | textureless test: valence MAE / quadrant |")
    print("|---|---|---|")
    for name, corpora, weight in (("fitted on the textured train clips", (textured,), 1.0), ("fitted on both renditions' train clips", (textured, textureless), 1.0),
                                  ("the same, the textureless clips at half weight", (textured, textureless), 0.5)):  # fmt: skip
        model = HistGradientBoostingRegressor(random_state=0, **setting).fit(
            np.vstack([features(c, "train") for c in corpora]),
            np.concatenate([c["valence"]["train"] for c in corpora]),
            sample_weight=np.concatenate([np.full(len(c["valence"]["train"]), 1.0 if c is textured else weight) for c in corpora]),
        )
        print(f"| {name} | {scored(model, textured)} | {scored(model, textureless)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="data/corpus-v3")
    parser.add_argument("--checkpoint", default=None, help="classifier folder (default: the shipped one)")
    parser.add_argument("--shares", nargs="*", default=[], help="files from `research/note_transcriber.py shares` on the same corpus")
    parser.add_argument("--textureless", default=None, help="the same plan built with --cues v1 (e.g. data/corpus-v1): how the read-out hears music without the textures")
    parser.add_argument("--textureless-shares", nargs="*", default=[], help="the transcribers' shares on that corpus, in the order of --shares")
    args = parser.parse_args()
    if args.textureless and len(args.textureless_shares) != len(args.shares):
        parser.error("--textureless needs --textureless-shares, one file for each of --shares")
    torch.set_num_threads(2)
    model = classifier.load(args.checkpoint)
    corpus = readings(model, args.corpus, args.shares)
    valence = corpus["valence"]
    print(f"ear {model.version} on {args.corpus}")
    print("| the read-out learns valence from | val valence MAE | test valence MAE | setting chosen on val |")
    print("|---|---|---|---|")
    print(f"| (no read-out: the ear's own reading) | {np.abs(corpus['heard']['val'] - valence['val']).mean():.4f} | {np.abs(corpus['heard']['test'] - valence['test']).mean():.4f} | |")

    def report(name: str, extra: dict[str, np.ndarray] | None) -> None:
        features = {split: corpus["ear"][split] if extra is None else np.hstack([corpus["ear"][split], extra[split]]) for split in SPLITS}
        val, test, setting = fit_read_out(features, valence)
        print(f"| {name} | {val:.4f} | {test:.4f} | {', '.join(f'{k} {v}' for k, v in setting.items())} |", flush=True)

    report("the ear's outputs, per clip", None)
    if not args.shares:
        return
    truth = corpus["truth"]
    report(f"... and the transcriber's shares ({len(args.shares)} model{'s' if len(args.shares) > 1 else ''}, averaged)", corpus["shares"])
    report("... and the true share of a third under the top note (every note known, no instruments)", {s: truth[s][:, :1] for s in SPLITS})
    report("... and the same, played by the top note's own instrument", {s: truth[s][:, 1:2] for s in SPLITS})
    report("... and the true doubling and clash shares (cue tracks)", {s: truth[s][:, 2:] for s in SPLITS})
    if args.textureless:
        compare_with_textureless(corpus, readings(model, args.textureless, args.textureless_shares))


if __name__ == "__main__":
    main()
