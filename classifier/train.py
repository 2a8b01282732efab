"""`moodmusic train classifier`: train the mood CRNN with accelerate (one CPU or many GPUs).

Trains on the corpus (or a DEAM folder, a CSV manifest, quadrant folders: corpus.loaders), or on
several of them at once (their splits joined: renditions of one plan under two cue versions share
their pieces' splits, so nothing leaks). The real-music set (`moodmusic corpus real`) joins the same
way: of its weak labels only the sign of each dimension that a track's use in its game implies is
trained on, and its unlabelled excerpts add no loss (they shape the batch-norm statistics). `--sign-only-data` adds data whose valence labels the
audio carries only the sign of (a cues-v1 corpus): those clips train arousal, the quadrant, the mode
and the valence sign, never the size of valence, and are left out of validation and test.

Validates each epoch on the val split with whole-clip windowed predictions, keeps the best epoch,
and resumes from `<out>/state.pt` when it exists. `--init DIR` starts from a trained classifier's weights
and keeps its architecture and mel statistics (fine-tuning, e.g. on more data). `--export` writes the best model to
checkpoints/classifier and records it, with its test-split metrics, in the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class TrainConfig:
    """The arguments of the classifier's training (`moodmusic train classifier`)."""

    data: tuple[str, ...] = ("data/corpus",)  # one or more data folders or manifests, joined
    sign_only_data: tuple[str, ...] = ()  # more data, trusted for the sign of valence only
    sign_margin: float = 0.25  # a sign-only clip's valence is pushed at least this far to its side of 0
    scale: str = "signed"  # for CSV manifests: signed, unit or deam
    out: str = "runs/classifier"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    quadrant_weight: float = 0.5
    mode_weight: float = 0.5  # the mode head's major/minor loss, against the sign of valence
    pitch_channels: int = 16  # the semitone branch (classifier.model.PitchIntervals); 0: none
    cue_weight: float = 0.0  # the cue head's loss against the corpus's cue tracks; 0: no cue head
    seed: int = 0
    window_frames: int = 256
    augment: bool = True
    threads: int = 2
    init: str = ""  # a classifier folder to start from: its weights, architecture and mel statistics
    # The front end's input loudness (LUFS): every clip is brought to it before its features, in training
    # and in analyze(), so the level carries no mood. None: inputs as they come (or as the --init model has it).
    input_lufs: float | None = None
    weak_repeat: int = 1  # a weak label of few excerpts (the real-music set) is repeated towards the most common one's count, at most this many times
    export: bool = False


def train(config: TrainConfig, progress: bool = True) -> dict:
    import torch
    from accelerate import Accelerator
    from tqdm import tqdm

    from moodmusic.classifier.data import AugmentConfig, CropDataset, load_examples, mel_statistics
    from moodmusic.classifier.inference import MoodClassifier, build_model
    from moodmusic.classifier.metrics import predict_examples, score
    from moodmusic.classifier.model import ClassifierConfig
    from moodmusic.corpus.cues import CUE_TRACKS
    from moodmusic.corpus.loaders import load_any
    from moodmusic import checkpoints
    from moodmusic.runs import RunFolder, invocation
    from moodmusic.mood import QUADRANTS

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    accelerator = Accelerator()
    run = RunFolder(config.out)
    out = run.path

    initial = ClassifierConfig(**checkpoints.load_config(Path(config.init))) if config.init else None
    if initial is not None:  # the features and crops the starting model reads
        config = dataclasses.replace(config, pitch_channels=initial.pitch_channels, window_frames=initial.window_frames)
        if config.input_lufs is None:
            config = dataclasses.replace(config, input_lufs=initial.input_lufs)
        initial = dataclasses.replace(initial, input_lufs=config.input_lufs)  # a fine-tune may move to a level-invariant front end
        if config.cue_weight > 0 and not initial.cue_tracks:
            raise SystemExit(f"--cue-weight needs a model with a cue head; {config.init} has none (train one from scratch with --cue-weight)")
    sources = [(source, False) for source in config.data] + [(source, True) for source in config.sign_only_data]
    clips = [(clip, sign_only) for source, sign_only in sources for clip in load_any(Path(source), config.scale)]
    examples = {}
    for name in ("train", "val", "test"):
        # Epochs are chosen, and the model scored, only on clips whose whole label the audio carries,
        # so sign-only data and weak labels are not even loaded outside the train split (the real-music
        # set's held-out part is measured by `moodmusic evaluate classifier --real`).
        split = [(clip, sign_only) for clip, sign_only in clips if clip.split == name and (name == "train" or not (sign_only or clip.weak))]
        loaded = load_examples([clip for clip, _ in split], progress, desc=f"loading {name}", semitones=config.pitch_channels > 0, input_lufs=config.input_lufs)
        examples[name] = [dataclasses.replace(example, valence_sign_only=sign_only) for example, (_, sign_only) in zip(loaded, split)]
    examples["train"] += weak_repeats(examples["train"], config.weak_repeat)
    if not examples["train"]:
        raise SystemExit(f"{', '.join(config.data)}: no clips in the train split")
    validation = examples["val"] or [e for e in examples["train"] if not e.valence_sign_only][:200]
    test = examples["test"]

    if initial is not None:  # fine-tuning: the model keeps the input scaling its weights were trained with
        model_config = initial
        model = checkpoints.load_weights(build_model(model_config), Path(config.init))
    else:
        mean, std = mel_statistics(examples["train"])
        model_config = ClassifierConfig(
            mel_mean=mean, mel_std=std, window_frames=config.window_frames, pitch_channels=config.pitch_channels,
            cue_tracks=len(CUE_TRACKS) if config.cue_weight > 0 else 0, input_lufs=config.input_lufs,
        )  # fmt: skip
        model = build_model(model_config)
    dataset = CropDataset(examples["train"], config.window_frames, AugmentConfig() if config.augment else None, config.seed, model_config.context_frames)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=len(dataset) > config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate, total_steps=config.epochs * len(loader))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    best_dir = out / "best"
    start_epoch, best = 0, {"epoch": -1, "objective": float("inf")}
    state = run.load_state()  # resume: our own training state, read without unpickling objects
    if state is not None:
        accelerator.unwrap_model(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best = int(state["epoch"]) + 1, json.loads(state["best"])
        accelerator.print(f"resuming after epoch {start_epoch - 1} (best so far: epoch {best['epoch']})")
    run.resume(start_epoch - 1, invocation(config), unit="epoch")

    cross_entropy = torch.nn.CrossEntropyLoss(reduction="none")
    binary_cross_entropy = torch.nn.BCEWithLogitsLoss(reduction="none")
    positive_valence = torch.tensor([float(mood_quadrant in ("happy", "calm")) for mood_quadrant in QUADRANTS], device=accelerator.device)
    for epoch in range(start_epoch, config.epochs):
        dataset.epoch = epoch
        model.train()
        started, totals, batches = time.perf_counter(), {"loss": 0.0, "va": 0.0, "quadrant": 0.0, "mode": 0.0, "cue": 0.0}, 0
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False):
            outputs = model(batch["mel"], batch["tonal"], batch["context"])
            errors = point_errors(outputs["valence_arousal"], batch["valence_arousal"], batch["size_known"], batch["sign_known"], config.sign_margin)
            point_loss = (errors * batch["has_point"]).mean()
            # A label names the quadrant when it knows both signs (weak labels may not).
            quadrant_known = batch["sign_known"].prod(dim=1)
            quadrant_loss = masked_mean(cross_entropy(outputs["quadrant_logits"], batch["quadrant"]), quadrant_known)
            # Every label that knows the valence sign, quadrant-only ones too, tells the mode: major (happy, calm) or not.
            major = positive_valence[batch["quadrant"]]
            mode_loss = masked_mean(binary_cross_entropy(outputs["mode_logit"], major), batch["sign_known"][:, 0])
            loss = point_loss + config.quadrant_weight * quadrant_loss + config.mode_weight * mode_loss
            cue_loss = torch.zeros((), device=loss.device)
            if "cue_logits" in outputs and config.cue_weight > 0:
                cue_loss = cue_errors(outputs["cue_logits"], batch["cue_tracks"], batch["cue_tracks_known"])
                loss = loss + config.cue_weight * cue_loss
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            totals["loss"] += loss.item()
            totals["va"] += point_loss.item()
            totals["quadrant"] += quadrant_loss.item()
            totals["mode"] += mode_loss.item()
            totals["cue"] += cue_loss.item()
            batches += 1

        network = accelerator.unwrap_model(model).eval()
        classifier = MoodClassifier(network.cpu(), model_config)
        metrics = score(validation, predict_examples(classifier, validation))
        network.to(accelerator.device)
        # One number to pick the best epoch: errors in both dimensions plus the quadrants missed.
        objective = metrics["valence_mae"] + metrics["arousal_mae"] + (1 - metrics["quadrant_accuracy"])
        record = {"epoch": epoch, "seconds": round(time.perf_counter() - started, 1), **{k: round(v / max(batches, 1), 5) for k, v in totals.items()}}
        record.update({f"val_{k}": v for k, v in metrics.items() if k != "confusion"})
        run.log(record)
        accelerator.print(
            f"epoch {epoch + 1}: loss {record['loss']:.4f}  val quadrant acc {metrics['quadrant_accuracy']:.3f}  "
            f"valence MAE {metrics['valence_mae']:.3f}  arousal MAE {metrics['arousal_mae']:.3f}  ({record['seconds']} s)"
        )
        if objective < best["objective"]:
            best = {"epoch": epoch, "objective": objective, "val": metrics}
            checkpoints.save(network, model_config, best_dir)
        state = {
            "model": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "best": json.dumps(best),
        }
        run.save_state(state)

    final = build_model(model_config)
    checkpoints.load_weights(final, best_dir)
    classifier = MoodClassifier(final.eval(), model_config)
    summary = {"best_epoch": best["epoch"], "val": best.get("val"), "train_clips": len(examples["train"])}
    if test:
        summary["test"] = score(test, predict_examples(classifier, test))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if config.export:
        target = checkpoints.stage_dir("classifier")
        checkpoints.save(final, model_config, target)
        checkpoints.record(
            "classifier",
            model=final,
            command=run.provenance(),
            data=f"{' + '.join(config.data + tuple(f'{d} (valence sign only)' for d in config.sign_only_data))}: {len(examples['train'])} train clips, {len(validation)} val, {len(test)} test (split by source piece)",
            metrics={"val": _headline(best.get("val")), "test": _headline(summary.get("test")), "best_epoch": best["epoch"]},
        )
        accelerator.print(f"exported to {target}")
    return summary


def weak_repeats(examples: list, most: int) -> list:
    """The extra copies that balance the weak labels (the real-music set): each label's excerpts are repeated
    until the label is seen about as often as the most common one, at most `most` times in all; unlabelled
    excerpts (no sign known) are not repeated. One label of many tracks (a peace playlist) would otherwise
    teach a bias, not a mood."""
    from collections import Counter

    labelled = [e for e in examples if e.weak and (e.valence != 0 or e.arousal != 0)]
    counts = Counter((e.valence, e.arousal) for e in labelled)
    largest = max(counts.values(), default=0)
    return [e for e in labelled for _ in range(min(most, round(largest / counts[(e.valence, e.arousal)])) - 1)]


def point_errors(predicted, target, size_known, sign_known, sign_margin: float):
    """Per clip: the smooth L1 error of (valence, arousal), summed over the two; for a dimension whose
    label knows only the sign (`size_known` 0, `sign_known` 1: a cues-v1 valence, a weak label), a hinge
    that asks for the right side of 0 by `sign_margin`, so an inaudible size is never taught; a dimension
    the label knows nothing of (both 0) adds nothing. `size_known` and `sign_known` are (B, 2)."""
    import torch

    errors = torch.nn.functional.smooth_l1_loss(predicted, target, reduction="none", beta=0.1)
    sign_errors = torch.relu(sign_margin - torch.sign(target) * predicted)
    return (size_known * errors + (1 - size_known) * sign_known * sign_errors).sum(dim=1)


def masked_mean(values, mask):
    """The mean of per-clip `values` over the clips where `mask` is 1 (0 if there are none)."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def cue_errors(cue_logits, cue_tracks, known):
    """Binary cross-entropy of the cue head's per-step logits (B, T', K) against the share of each step's
    frames in which the cue sounds (from the (B, K, T) tracks), over the clips whose tracks are `known`."""
    import torch

    steps = cue_logits.shape[1]
    targets = torch.nn.functional.avg_pool1d(cue_tracks, cue_tracks.shape[-1] // steps)[..., :steps].transpose(1, 2)
    errors = torch.nn.functional.binary_cross_entropy_with_logits(cue_logits, targets, reduction="none").mean(dim=(1, 2))
    return (errors * known).sum() / known.sum().clamp_min(1.0)


def _headline(metrics: dict | None) -> dict | None:
    if not metrics:
        return None
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items() if k != "confusion"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--data", nargs="+", default=list(defaults.data), help="corpus folder, DEAM folder, CSV manifest (path,valence,arousal) or quadrant folders; several are joined")
    parser.add_argument("--sign-only-data", nargs="+", default=[], help="more data whose valence labels the audio carries only the sign of (a cues-v1 corpus)")
    parser.add_argument("--scale", default=defaults.scale, choices=("signed", "unit", "deam"), help="value scale of a CSV manifest")
    parser.add_argument("--out", default=defaults.out, help="run folder: training state, log, best model")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--pitch-channels", type=int, default=defaults.pitch_channels, help="channels of the semitone branch (0: chroma and mel only)")
    parser.add_argument("--cue-weight", type=float, default=defaults.cue_weight, help="weight of the cue head's loss against the corpus's cue tracks (0: no cue head)")
    parser.add_argument("--no-augment", action="store_true", help="train without augmentation")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads for torch")
    parser.add_argument("--init", default="", help="start from this classifier folder (its weights, architecture and mel statistics), e.g. checkpoints/classifier")
    parser.add_argument("--input-lufs", type=float, default=None,
                        help="bring every input to this loudness (LUFS) before its features, so the level carries no mood (e.g. -30)")
    parser.add_argument("--weak-repeat", type=int, default=defaults.weak_repeat, help="repeat the excerpts of each weak label (the real-music set) until it is seen about as often as the most common label, at most this many times (1: no repeats)")
    parser.add_argument("--export", action="store_true", help="write the best model to checkpoints/classifier and the manifest")


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(
        data=tuple(args.data), sign_only_data=tuple(args.sign_only_data), scale=args.scale, out=args.out, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, pitch_channels=args.pitch_channels, cue_weight=args.cue_weight, augment=not args.no_augment, threads=args.threads, init=args.init, input_lufs=args.input_lufs, weak_repeat=args.weak_repeat, export=args.export,
    )  # fmt: skip
    summary = train(config)
    print(json.dumps({k: v for k, v in summary.items() if k != "val"}, indent=2, default=str))
    return 0
