"""`moodmusic train vocoder`: train (or resume) the HiFi-GAN vocoder (see vocoder/train.py)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", default="data/corpus", help="corpus folder with manifest.csv (default: data/corpus)")
    parser.add_argument("--out", default="runs/vocoder", help="run folder: state, log.jsonl; resumes when it holds a state")
    parser.add_argument("--steps", type=int, default=3000, help="train up to this step (default: 3000)")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per step (default: 16)")
    parser.add_argument("--segment", type=int, default=8192, help="samples per window (default: 8192)")
    parser.add_argument("--lr", type=float, default=2e-4, help="AdamW learning rate of both networks (default: 2e-4); "
                        "on resume, a new value rescales the decayed schedule")
    parser.add_argument("--lr-decay", type=float, default=0.9999, help="ExponentialLR gamma per step (default: 0.9999)")
    parser.add_argument("--stft-weight", type=float, default=20.0, help="weight of the multi-resolution STFT loss; 0: off (default: 20)")
    parser.add_argument("--sc-weight", type=float, default=1.0, help="share of spectral convergence in the STFT loss; 0: log magnitude only (default: 1)")
    parser.add_argument("--adversarial-start", type=int, default=0, help="step from which the discriminators train (default: 0)")
    parser.add_argument("--layout", choices=("v2", "v3"), default="v3", help="HiFi-GAN layout (default: v3, the fastest on a CPU)")
    parser.add_argument("--channels", type=int, default=128, help="generator's upsample_initial_channel (default: 128)")
    parser.add_argument("--checkpoint-every", type=int, default=250, help="save the state (and export) every N steps")
    parser.add_argument("--log-every", type=int, default=10, help="append averaged losses to log.jsonl every N steps")
    parser.add_argument("--val-clips", type=int, default=4, help="val-split clips scored at each checkpoint (default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice, one per core); "
                        "use 1 when other jobs share the cores: oversubscribed threads run many times slower")
    parser.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is found")
    parser.add_argument("--export", action="store_true", help="write checkpoints/vocoder/ and its manifest entry at each checkpoint")
    parser.add_argument("--export-only", action="store_true", help="write checkpoints/vocoder/ from the run's saved state and stop (no training)")


def run(args: argparse.Namespace) -> int:
    from moodmusic.commandline import command_line

    import torch

    from moodmusic.vocoder.model import VocoderConfig
    from moodmusic.vocoder.train import TrainConfig, train

    if args.steps < 1 or args.batch_size < 1 or args.segment < 1024:
        raise SystemExit("--steps and --batch-size must be positive and --segment at least 1024")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    config = TrainConfig(
        corpus=args.corpus, out=args.out, steps=args.steps, batch_size=args.batch_size, segment=args.segment,
        lr=args.lr, lr_decay=args.lr_decay, stft_weight=args.stft_weight, sc_weight=args.sc_weight, adversarial_start=args.adversarial_start,
        checkpoint_every=args.checkpoint_every, log_every=args.log_every, val_clips=args.val_clips, seed=args.seed,
        cpu=args.cpu, export=args.export, export_only=args.export_only, command=command_line(args),
        generator=VocoderConfig.preset(args.layout, args.channels),
    )  # fmt: skip
    scores = train(config)
    for name, value in scores.items():
        print(f"{name}: {value:.4f}")
    return 0
