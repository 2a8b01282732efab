"""`moodmusic train generator`: train (or resume) the autoregressive conditional GAN on the corpus.

One step, for a batch of windows cut from train-split mels (each clip padded on the left with
`context_frames` of silence, so some windows are the cold start of a clip):
  - with probability `rollout_probability` the generator first writes 1 to `rollout_slices` slices
    from the real context (no gradient), and the slice it is trained on continues that rollout: with
    two or more, its whole context is its own output, as in a long clip. A first run trained on one
    rolled-out slice only and its clips settled into drones after 2 s (a stationary point the
    discriminator never saw); seeing its own contexts, the discriminator can call them out;
  - the discriminator (hinge loss, spectral norm) judges (context tail + slice, mood) for the real
    continuation and the generated one; its auxiliary head learns to read the mood of real slices;
  - the generator's loss: adversarial (hinge) + `feature_weight` x feature matching + `mood_weight` x
    the auxiliary head's error on the asked mood + `envelope_weight` x L1 between the time-averaged
    spectra (loudness and brightness, cues that carry arousal) + `diversity_weight` x the mode-seeking
    term of Mao et al. 2019 (two latents for the same context must give different slices);
  - with `--init` and `--anchor-weight`, + `anchor_weight` x L1 between the coarse spectrum of each frame
    (the mel averaged over groups of `anchor_bands` bands) of the slice and of the one the frozen --init
    generator writes from the same context, mood and noise. Two fine-tunes on a new corpus lost the onset
    rate and the brightness as arousal cues (docs/notes/2026-12-05-generator-on-textured-corpora.md); the anchor holds them where the generator it
    starts from had them and leaves finer detail (which notes, a third or a semitone added) free. With
    `anchor_bands` 80 it holds only each frame's loudness (the rhythm);
  - with `--critic`, + `critic_weight` x the error of a frozen mode critic (generator/critic.py: major or
    minor, from the pitch classes of the mel) reading `critic_slices` slices that the generator writes one
    after another, with gradient through all of them: the auxiliary head sees 0.74 s, too short for a key.
Updates alternate one discriminator step per generator step (the balanced ratio); the discriminator's
learning rate is the generator's (TTUR showed no gain at this scale in short runs).

The run folder (moodmusic.runs.RunFolder, as for every trainer) holds state.pt (weights, optimisers, step; loaded
with weights_only=True), log.jsonl, commands.jsonl (the commands that trained it), and steps/<step>/ (the
generator's weights at each checkpoint, safetensors + config); with --export each checkpoint is written to
checkpoints/generator/ with its manifest entry.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from moodmusic.generator.data import WindowSampler, load_training_mels
from moodmusic import checkpoints
from moodmusic.runs import RunFolder, invocation
from moodmusic.mel import LOG_FLOOR, N_MELS

STAGE = "generator"


@dataclass
class TrainConfig:
    """What `moodmusic train generator` trains on and how: the corpus, the run folder, the model's size, the losses'
    weights and the schedule; each field is a flag of the command (`add_arguments`)."""

    data: str = "data/corpus"
    out: str = "runs/generator"
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    rollout_probability: float = 0.5
    rollout_slices: int = 4
    feature_weight: float = 2.0
    mood_weight: float = 2.0
    envelope_weight: float = 2.0
    diversity_weight: float = 0.5
    critic: str = ""  # a trained mode critic (generator/critic.py); empty: none
    critic_weight: float = 1.0
    critic_slices: int = 8  # slices written with gradient for the critic to read (8 x 32 frames = its 3 s window)
    critic_batch: int = 8
    init: str = ""  # a generator folder (safetensors + config) to start from when the run holds no state yet
    discriminator_warmup: int = 0  # steps at the start that train only the discriminator (a fresh one, after --init)
    anchor_weight: float = 0.0  # weight of the coarse-spectrum L1 to the frozen --init generator's slice (0: none)
    anchor_bands: int = 80  # mel bands averaged into one anchored value (80: each frame's loudness; 8: ten coarse bands)
    average: int = 1  # export the mean weights of the last `average` checkpoints (1: the current weights)
    normalise_lufs: float | None = None  # train on the corpus brought to this loudness (load_training_mels)
    channels: int = 192
    checkpoint_every: int = 200
    log_every: int = 10
    seed: int = 0
    threads: int = 2
    export: bool = False


def hinge_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return torch.relu(1 - real).mean() + torch.relu(1 + fake).mean()


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    return sum(torch.mean(torch.abs(f - r.detach())) for f, r in zip(fake, real)) / len(fake)


def train(config: TrainConfig, progress: bool = True) -> dict:
    from accelerate import Accelerator
    from tqdm import tqdm

    from moodmusic.generator.model import DiscriminatorConfig, GeneratorConfig, MelSliceGenerator, SliceDiscriminator

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if config.anchor_weight and not config.init:  # checked before the run folder and the corpus are touched
        raise SystemExit("--anchor-weight holds the output of the --init generator: give --init too")
    if config.anchor_weight and N_MELS % config.anchor_bands:
        raise SystemExit(f"--anchor-bands must divide the {N_MELS} mel bands (e.g. 80, 16, 8, 4)")
    accelerator = Accelerator()
    run = RunFolder(config.out)
    out = run.path
    train_mels, train_moods, val_mels, val_moods = load_training_mels(config.data, config.normalise_lufs)
    sample = np.concatenate([m[:, ::8] for m in train_mels[:500]], axis=1).astype(np.float32)
    mel_mean, mel_std = float(sample.mean()), float(sample.std())
    g_config = GeneratorConfig(channels=config.channels, mel_mean=mel_mean, mel_std=mel_std)
    starting_from = Path(config.init) if config.init and not (out / "state.pt").exists() else None
    if config.init:  # the weights fix the architecture and input scaling: take them from the folder
        g_config = GeneratorConfig(**checkpoints.load_config(Path(config.init)))
    d_config = DiscriminatorConfig(mel_mean=g_config.mel_mean, mel_std=g_config.mel_std)
    generator, discriminator = MelSliceGenerator(**asdict(g_config)), SliceDiscriminator(**asdict(d_config))
    if starting_from is not None:
        checkpoints.load_weights(generator, starting_from)
        accelerator.print(f"starting from the generator in {starting_from}; the discriminator starts fresh")
    anchor = None
    if config.anchor_weight:
        anchor = MelSliceGenerator(**asdict(g_config))
        checkpoints.load_weights(anchor, Path(config.init))
        anchor = anchor.to(accelerator.device).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.learning_rate, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate, betas=config.betas)
    sampler = WindowSampler(train_mels, train_moods, g_config.context_frames, g_config.slice_frames, config.seed, config.rollout_slices)
    critic = None
    if config.critic:
        from moodmusic.generator.critic import load as load_critic

        critic = load_critic(config.critic).to(accelerator.device)

    step, state = 0, run.load_state()
    if state is not None:
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        accelerator.print(f"resuming {out} at step {step}")
    run.resume(step, invocation(config))
    generator, discriminator, opt_g, opt_d = accelerator.prepare(generator, discriminator, opt_g, opt_d)
    device = accelerator.device
    C, S = g_config.context_frames, g_config.slice_frames

    def save_state() -> None:
        run.save_state({"generator": accelerator.unwrap_model(generator).state_dict(), "discriminator": accelerator.unwrap_model(discriminator).state_dict(),
                        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step})  # fmt: skip

    def exported_model():
        model = accelerator.unwrap_model(generator)
        return averaged_checkpoints(out / "steps", config.average, g_config) if config.average > 1 else model

    trained = step < config.steps
    totals: dict[str, float] = {}
    started = time.perf_counter()
    bar = tqdm(total=config.steps, initial=step, desc="generator", unit="step", disable=not progress)
    generator.train()
    discriminator.train()
    while step < config.steps:
        windows, moods = sampler.batch(step, config.batch_size)
        windows, moods = windows.to(device), moods.to(device)
        rng = np.random.default_rng([config.seed, step, 1])
        unwrapped = accelerator.unwrap_model(generator)
        if config.rollout_slices and rng.random() < config.rollout_probability:
            # The generator continues its own output for k slices; the trained slice follows them.
            k = int(rng.integers(1, config.rollout_slices + 1))
            context = windows[..., :C]
            with torch.no_grad():
                for _ in range(k):
                    written = generator(context, moods, *unwrapped.noise(len(moods), device=device))
                    context = torch.cat([context, written], dim=2)[..., -C:]
            real_context, real = windows[..., k * S : k * S + C], windows[..., C + k * S : C + (k + 1) * S]
        else:
            context = real_context = windows[..., :C]
            real = windows[..., C : C + S]

        latent, frame_noise = unwrapped.noise(len(moods), device=device)
        fake = generator(context, moods, latent, frame_noise)

        # Discriminator step.
        judged_real = discriminator(real_context, real, moods)
        judged_fake = discriminator(context, fake.detach(), moods)
        d_adversarial = hinge_discriminator(judged_real["logits"], judged_fake["logits"])
        d_mood = torch.nn.functional.mse_loss(judged_real["mood"], moods)
        opt_d.zero_grad(set_to_none=True)
        accelerator.backward(d_adversarial + config.mood_weight * d_mood)
        opt_d.step()

        if step < config.discriminator_warmup:  # a fresh discriminator first learns what real slices look like
            step += 1
            bar.update(1)
            continue

        # Generator step.
        discriminator.requires_grad_(False)
        judged_fake = discriminator(context, fake, moods)
        with torch.no_grad():
            real_features = discriminator(real_context, real, moods)["features"]
        g_adversarial = -judged_fake["logits"].mean()
        g_features = feature_matching(judged_fake["features"], real_features)
        g_mood = torch.nn.functional.mse_loss(judged_fake["mood"], moods)
        g_envelope = torch.mean(torch.abs(fake.mean(dim=2) - real.mean(dim=2)))
        loss = g_adversarial + config.feature_weight * g_features + config.mood_weight * g_mood + config.envelope_weight * g_envelope
        if config.diversity_weight:
            other_latent, other_noise = unwrapped.noise(len(moods), device=device)
            other = generator(context, moods, other_latent, other_noise)
            spread = torch.mean(torch.abs(fake - other), dim=(1, 2)) / torch.mean(torch.abs(latent - other_latent), dim=1)
            g_diversity = 1.0 / (spread.mean() + 1e-3)
            loss = loss + config.diversity_weight * g_diversity
        else:
            g_diversity = torch.zeros(())
        if anchor is not None:
            with torch.no_grad():
                anchored = anchor(context, moods, latent, frame_noise)
            g_anchor = torch.mean(torch.abs(coarse_spectrum(fake, config.anchor_bands) - coarse_spectrum(anchored, config.anchor_bands)))
            loss = loss + config.anchor_weight * g_anchor
        else:
            g_anchor = torch.zeros(())
        if critic is not None:
            g_critic = critic_loss(generator, unwrapped.noise, critic, context[: config.critic_batch], moods[: config.critic_batch], config.critic_slices)
            loss = loss + config.critic_weight * g_critic
        else:
            g_critic = torch.zeros(())
        opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        opt_g.step()
        discriminator.requires_grad_(True)
        step += 1

        values = {"d_adversarial": d_adversarial, "d_mood": d_mood, "g_adversarial": g_adversarial, "g_features": g_features,
                  "g_mood": g_mood, "g_envelope": g_envelope, "g_diversity": g_diversity, "g_critic": g_critic, "g_anchor": g_anchor}  # fmt: skip
        for name, value in values.items():
            value = float(value.detach())
            if not math.isfinite(value):
                raise FloatingPointError(f"step {step}: {name} is {value}; lower --learning-rate")
            totals[name] = totals.get(name, 0.0) + value
        bar.update(1)
        if step % config.log_every == 0:
            entry = {"step": step, "seconds_per_step": round((time.perf_counter() - started) / config.log_every, 3)}
            entry.update({k: round(v / config.log_every, 5) for k, v in totals.items()})
            run.log(entry)
            bar.set_postfix(d=f"{entry['d_adversarial']:.2f}", mood=f"{entry['g_mood']:.3f}", env=f"{entry['g_envelope']:.3f}")
            totals, started = {}, time.perf_counter()
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_state()
            # Every checkpoint's weights stay, so one can be chosen afterwards by the closed loop.
            checkpoints.save(accelerator.unwrap_model(generator), g_config, out / "steps" / f"{step:06d}")
            if config.export:
                export(exported_model(), g_config, config, step, run.provenance(), len(train_mels), val_mels, val_moods)
            started = time.perf_counter()
    bar.close()
    if config.export and not trained:  # resumed at the last step: export what the run folder holds
        export(exported_model(), g_config, config, step, run.provenance(), len(train_mels), val_mels, val_moods)
    return {"step": step}


def coarse_spectrum(mel: torch.Tensor, bands: int) -> torch.Tensor:
    """(B, n_mels, T) log-mel -> (B, n_mels // bands, T): each frame's mean over groups of `bands` bands."""
    return torch.nn.functional.avg_pool1d(mel.transpose(1, 2), bands).transpose(1, 2)


def critic_loss(generator, noise, critic, context: torch.Tensor, moods: torch.Tensor, slices: int) -> torch.Tensor:
    """Write `slices` slices after `context` (gradient through every one); the critic says whether they
    are in the mode of the asked valence (major for valence >= 0)."""
    from moodmusic.generator.critic import mode_loss

    written = []
    for _ in range(slices):
        new = generator(context, moods, *noise(len(moods), device=context.device))
        written.append(new)
        context = torch.cat([context, new], dim=2)[..., -context.shape[2] :]
    return mode_loss(critic, torch.cat(written, dim=2), moods[:, 0])


def averaged_checkpoints(steps_dir: Path, count: int, g_config):
    """A generator whose weights are the mean of the last `count` checkpoints in `steps_dir`.

    A GAN's generator swings from checkpoint to checkpoint (here the closed loop's arousal Spearman went
    from 0.07 to 0.88 between two checkpoints 250 steps apart); the mean of recent weights sits in the
    middle of the swing (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").
    """
    from safetensors.torch import load_file

    from moodmusic.generator.model import MelSliceGenerator

    folders = sorted(p for p in Path(steps_dir).iterdir() if (p / checkpoints.WEIGHTS_FILE).exists())[-count:]
    if not folders:
        raise SystemExit(f"{steps_dir} holds no checkpoints to average")
    states = [load_file(str(folder / checkpoints.WEIGHTS_FILE)) for folder in folders]
    model = MelSliceGenerator(**asdict(g_config))
    model.load_state_dict({name: sum(state[name] for state in states) / len(states) for name in states[0]})
    return model


@torch.no_grad()
def validation_scores(model, val_mels: list[np.ndarray], val_moods: np.ndarray, clips: int = 64) -> dict:
    """Continuation on held-out clips: mean |time-averaged spectrum - real| (log units) over `clips` val clips."""
    from moodmusic.generator.sampling import Session

    model.eval()
    errors = []
    for mel, (valence, arousal) in list(zip(val_mels, val_moods))[:clips]:
        split = min(256, mel.shape[1] // 2)  # up to 3 s of real context, then continue it
        real = torch.from_numpy(mel[:, split : split + 8 * model.slice_frames].astype(np.float32))
        if real.shape[1] < model.slice_frames:
            continue
        session = Session(model, (float(valence), float(arousal)), seed=0, context=torch.from_numpy(mel[:, :split].astype(np.float32)))
        generated = torch.cat([session.next_slice() for _ in range(-(-real.shape[1] // model.slice_frames))], dim=1)
        errors.append(float(torch.mean(torch.abs(generated[:, : real.shape[1]].mean(1) - real.mean(1)))))
    model.train()
    if not errors:
        return {"val_clips": 0}
    return {"val_envelope_l1": round(float(np.mean(errors)), 4), "val_clips": len(errors)}


def export(model, g_config, config: TrainConfig, step: int, command: str, n_train: int, val_mels, val_moods) -> None:
    directory = checkpoints.stage_dir(STAGE)
    checkpoints.save(model, g_config, directory)
    metrics = validation_scores(model, val_mels, val_moods)
    checkpoints.record(
        STAGE, model=model, command=command, metrics=metrics, extra={"steps": step, **({"averaged_checkpoints": config.average} if config.average > 1 else {})},
        data=f"{n_train} train-split clips of {config.data} (log-mels), windows of context + 2 slices, batch {config.batch_size}",
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrainConfig()
    parser.add_argument("--data", default=defaults.data, help="corpus folder (manifest.csv + mel/)")
    parser.add_argument("--out", default=defaults.out, help="run folder: state.pt, log.jsonl; resumes when state.pt exists")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--rollout-probability", type=float, default=defaults.rollout_probability)
    parser.add_argument("--rollout-slices", type=int, default=defaults.rollout_slices, help="most slices of its own output the generator continues in training")
    parser.add_argument("--diversity-weight", type=float, default=defaults.diversity_weight)
    parser.add_argument("--channels", type=int, default=defaults.channels, help="generator width (weights grow with its square)")
    parser.add_argument("--critic", default=defaults.critic, help="a trained mode critic folder (moodmusic train critic) whose verdict on 3 s rollouts joins the loss")
    parser.add_argument("--critic-weight", type=float, default=defaults.critic_weight)
    parser.add_argument("--normalise-lufs", type=float, default=None, help="train on every clip brought to this loudness (LUFS), so level carries no mood")
    parser.add_argument("--init", default=defaults.init, help="start from this generator folder (e.g. checkpoints/generator) with a fresh discriminator")
    parser.add_argument("--discriminator-warmup", type=int, default=defaults.discriminator_warmup, help="first steps train only the discriminator")
    parser.add_argument("--anchor-weight", type=float, default=defaults.anchor_weight, help="weight of an L1 that keeps each frame's coarse spectrum as the frozen --init generator writes it (0: off)")
    parser.add_argument("--anchor-bands", type=int, default=defaults.anchor_bands, help="mel bands averaged per anchored value: 80 holds each frame's loudness (rhythm), 8 also brightness")
    parser.add_argument("--average", type=int, default=defaults.average, help="export the mean weights of the last N checkpoints (default 1: the current weights)")
    parser.add_argument("--checkpoint-every", type=int, default=defaults.checkpoint_every)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=defaults.threads, help="CPU threads for torch")
    parser.add_argument("--export", action="store_true", help="write checkpoints/generator/ and its manifest entry at each checkpoint")


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(
        data=args.data, out=args.out, steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
        rollout_probability=args.rollout_probability, rollout_slices=args.rollout_slices, diversity_weight=args.diversity_weight, channels=args.channels,
        critic=args.critic, critic_weight=args.critic_weight, average=args.average, init=args.init, discriminator_warmup=args.discriminator_warmup, anchor_weight=args.anchor_weight, anchor_bands=args.anchor_bands,
        normalise_lufs=args.normalise_lufs, checkpoint_every=args.checkpoint_every, seed=args.seed, threads=args.threads, export=args.export,
    )  # fmt: skip
    print(json.dumps(train(config)))
    return 0
