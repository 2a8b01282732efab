"""`moodmusic corpus rerender`: a corpus's clips passed through a vocoder (real audio -> log-mel -> audio).

Every generated clip reaches the classifier through the chain's renderer, and the renderer leaves its own
marks: Griffin-Lim's phase smear spreads each partial over its neighbouring semitones, which an ear trained
on clean renditions takes for dissonance, i.e. for negative valence (`docs/classifier.md`). A rerendered
corpus is the same clips, labels and splits heard through a renderer, so the classifier can learn what the
renderer does and hear through it (`moodmusic train classifier --sign-only-data <this folder>`).

The output folder holds `audio/<id>.wav` and a `manifest.csv` with the source's rows (only the chosen split
when one is given). Its `mel` column is left empty: the log-mel of the rerendered audio is not the source's.
The cue tracks are copied: the renderer keeps every note where it was.
Resumable: clips whose WAV exists are skipped.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import time
from pathlib import Path


def rerender(source: Path, out: Path, renderer: str = "griffinlim", split: str = "", progress: bool = True) -> int:
    """Write `out` from the corpus in `source`; returns the number of clips rendered now (not skipped)."""
    import torch
    from tqdm import tqdm

    from moodmusic.corpus.loaders import DatasetError, corpus_manifest
    from moodmusic.audio import load_audio, write_wav
    from moodmusic.mel import log_mel
    from moodmusic.vocoder.model import load as load_vocoder

    with open(corpus_manifest(source)) as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [row for row in reader if not split or row["split"] == split]
    if not rows:
        raise DatasetError(f"{source}: no clips{' in the ' + split + ' split' if split else ''}")
    render = load_vocoder(renderer)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rendered = 0
    for row in tqdm(rows, desc=f"rerender ({render.name})", unit="clip", disable=not progress):
        target = out / "audio" / f"{row['id']}.wav"
        if not target.exists():
            with torch.inference_mode():
                audio = render.render(log_mel(load_audio(Path(source) / row["audio"]))[None])[0].numpy()
            write_wav(target, audio)  # atomic: a clip cut off mid-write is never taken for a finished one
            rendered += 1
        row["audio"], row["mel"] = f"audio/{row['id']}.wav", ""
        if row.get("cue_tracks") and (Path(source) / row["cue_tracks"]).exists():
            (out / "cue_tracks").mkdir(exist_ok=True)
            shutil.copyfile(Path(source) / row["cue_tracks"], out / row["cue_tracks"])
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rendered


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", default="data/corpus", help="corpus folder to rerender (default: data/corpus)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--vocoder", default="griffinlim", help="'griffinlim' (default), 'griffinlim-sparse' or a HiFi-GAN folder")
    parser.add_argument("--split", choices=("train", "val", "test"), default="", help="only this split (default: all)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rendered = rerender(Path(args.source), Path(args.out), args.vocoder, args.split)
    print(f"{rendered} clips rendered into {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0
