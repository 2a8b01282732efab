"""Train the HiFi-GAN vocoder on the corpus: `moodmusic train vocoder` (vocoder/cli.py).

The recipe is speechbrain's LJSpeech HiFi-GAN (docs/conventions.md) sized for a CPU budget:
- random `segment`-sample windows of the train split's WAVs; their mels are computed on the window
  with moodmusic.mel.log_mel, exactly as a generated mel will arrive;
- generator loss (speechbrain's GeneratorLoss): 45 x mel L1 + `stft_weight` x multi-resolution
  STFT (spectral convergence + log magnitude; it pulls spectral convergence down much faster than
  the mel L1 alone when steps are few) + 1 x adversarial MSE + 10 x feature matching;
- discriminators (vocoder/discriminators.py, the MPD + MSD layout narrowed) train with MSEDLoss from
  `adversarial_start` on; before that they stay idle and the generator learns reconstruction only;
- AdamW lr 2e-4, betas (0.8, 0.99), ExponentialLR stepped every step.

Everything runs through accelerate, so the same command trains on the CPU or a GPU.

Layout of `out/`:
    state/generator/       model.safetensors + config.json (loadable: vocoder.load("<out>/state/generator"))
    state/discriminator/   model.safetensors + config.json
    state/optimizers.pt    optimizer and scheduler state dicts (tensors and numbers; read with weights_only=True)
    state/trainer.json     the step reached and the training config
    log.jsonl              one line per log step (losses, lr, seconds per step) and per validation
    commands.jsonl         the commands that trained it, each with the step it started from (the manifest records
                           them all); log and commands are kept by moodmusic.runs.RunFolder, as for every trainer
A run whose `out/state/` exists resumes from it; the state is swapped in whole, so an interrupted
save leaves the previous one intact.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from moodmusic.corpus.loaders import LabelledClip, load_corpus
from moodmusic import checkpoints
from moodmusic.runs import RunFolder, invocation
from moodmusic.audio import load_audio
from moodmusic.mel import SAMPLE_RATE, log_mel
from moodmusic.vocoder.discriminators import Discriminator, DiscriminatorConfig
from moodmusic.vocoder.metrics import MelL1Loss, MultiResolutionSTFTLoss, log_mel_l1, multi_resolution_distance
from moodmusic.vocoder.model import STAGE, VocoderConfig, build_generator

STATE = "state"
SILENCE_RMS = 1e-3  # a window this quiet teaches nothing; draw another (a few tries)


@dataclass(frozen=True)
class TrainConfig:
    """The arguments of the vocoder's training (`moodmusic train vocoder`), with the generator's and discriminators' configs."""

    corpus: str = "data/corpus"
    out: str = "runs/vocoder"
    steps: int = 3000
    batch_size: int = 16
    segment: int = 8192  # samples per training window (speechbrain's recipe: 8192)
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.99)
    lr_decay: float = 0.9999  # ExponentialLR gamma, per step
    mel_weight: float = 45.0
    stft_weight: float = 20.0  # 0 turns the multi-resolution STFT loss off
    sc_weight: float = 1.0  # its spectral-convergence share (vocoder/metrics.py says why 0 can be better)
    adversarial_weight: float = 1.0
    feature_weight: float = 10.0
    adversarial_start: int = 0  # step from which the discriminators train and the GAN losses count
    checkpoint_every: int = 250
    log_every: int = 10
    val_clips: int = 4  # held-out (val split) clips scored at every checkpoint
    seed: int = 0
    cpu: bool = False  # force the CPU even where accelerate finds a GPU
    export: bool = False  # also write checkpoints/vocoder/ + the manifest entry at each checkpoint
    export_only: bool = False  # write checkpoints/vocoder/ from the run's saved state, without training
    command: str = ""  # the command line, for the manifest
    generator: VocoderConfig = field(default_factory=VocoderConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)


class SegmentSampler:
    """Random training windows. The draw for step n depends only on (seed, n), so a resumed run
    sees the batches an uninterrupted one would have. Decoded clips are cached as 16-bit PCM
    (3,200 clips of 8 s: 1.1 GB)."""

    def __init__(self, clips: list[LabelledClip], segment: int, seed: int):
        if not clips:
            raise ValueError("no training clips: the corpus has no train split")
        self.clips, self.segment, self.seed = clips, segment, seed
        self._cache: dict[int, np.ndarray] = {}

    def _audio(self, index: int) -> np.ndarray:
        if index not in self._cache:
            samples = load_audio(self.clips[index].audio)
            self._cache[index] = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
        return self._cache[index]

    def batch(self, step: int, size: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step])
        windows = []
        for _ in range(size):
            for _attempt in range(4):
                audio = self._audio(int(rng.integers(len(self.clips))))
                start = int(rng.integers(max(1, audio.size - self.segment + 1)))
                window = audio[start : start + self.segment].astype(np.float32) / 32767
                if np.sqrt(np.mean(window**2)) > SILENCE_RMS:
                    break
            windows.append(np.pad(window, (0, self.segment - window.size)))
        return torch.from_numpy(np.stack(windows)).unsqueeze(1)  # (B, 1, segment)


def split_clips(corpus: str | Path, split: str) -> list[LabelledClip]:
    return sorted((c for c in load_corpus(Path(corpus)) if c.split == split), key=lambda c: str(c.audio))


@torch.no_grad()
def validate(generator: torch.nn.Module, audios: list[torch.Tensor]) -> dict[str, float]:
    """Copy-synthesis of held-out clips with the generator as it is now (vocoder/metrics.py)."""
    if not audios:
        return {}
    was_training = generator.training
    generator.eval()
    scores = {}
    for audio in audios:
        rendered = generator(log_mel(audio).unsqueeze(0)).reshape(-1)[: audio.numel()]
        for n_fft, values in multi_resolution_distance(rendered, audio).items():
            for name, value in values.items():
                scores.setdefault(f"val_{name}_{n_fft}", []).append(value)
        scores.setdefault("val_log_mel_l1", []).append(log_mel_l1(rendered, audio))
    generator.train(was_training)
    return {k: float(np.mean(v)) for k, v in scores.items()}


def _config_from_dict(values: dict) -> TrainConfig:
    values = dict(values)
    values["betas"] = tuple(values["betas"])
    values["generator"] = VocoderConfig.from_dict(values["generator"])
    disc = values["discriminator"]
    values["discriminator"] = DiscriminatorConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in disc.items()})
    return TrainConfig(**values)


def save_state(out: Path, step: int, config: TrainConfig, generator, discriminator, optimizers: dict) -> None:
    """Write the whole state to state.tmp/, then swap it in for state/."""
    tmp, final, old = out / f"{STATE}.tmp", out / STATE, out / f"{STATE}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    checkpoints.save(generator, config.generator, tmp / "generator")
    checkpoints.save(discriminator, config.discriminator, tmp / "discriminator")
    torch.save({name: part.state_dict() for name, part in optimizers.items()}, tmp / "optimizers.pt")
    (tmp / "trainer.json").write_text(json.dumps({"step": step, "config": asdict(config)}, indent=2) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def read_state_step(out: str | Path) -> int | None:
    """The step a saved state reached, or None when there is none."""
    path = Path(out) / STATE / "trainer.json"
    return json.loads(path.read_text())["step"] if path.exists() else None


def _adopt_old_history(out: Path, run) -> None:
    """A run folder from before moodmusic.runs kept its commands in state/trainer.json: carry them over once."""
    path = out / STATE / "trainer.json"
    if run.commands() or not path.exists():
        return
    for entry in json.loads(path.read_text()).get("history", []):
        with open(run.path / "commands.jsonl", "a") as f:
            f.write(json.dumps({"from": entry["from_step"], "unit": "step", "command": entry["command"]}) + "\n")


def _load_state(out: Path, config: TrainConfig, generator, discriminator) -> tuple[int, dict, float]:
    """Weights now (before accelerate places the models); optimizer states and the run's lr for after."""
    state = out / STATE
    saved = _config_from_dict(json.loads((state / "trainer.json").read_text())["config"])
    if saved.generator != config.generator or saved.discriminator != config.discriminator:
        raise checkpoints.CheckpointError(f"{state} holds a run with other model sizes; use another --out or the same sizes")
    checkpoints.load_weights(generator, state / "generator")
    checkpoints.load_weights(discriminator, state / "discriminator")
    optimizer_states = torch.load(state / "optimizers.pt", map_location="cpu", weights_only=True)
    return read_state_step(out), optimizer_states, saved.lr


def export(generator: torch.nn.Module, config: TrainConfig, step: int, metrics: dict, n_train: int, provenance: str = "") -> None:
    """checkpoints/vocoder/ (the generator with weight norm, as trained; load() removes it) + MANIFEST.json."""
    checkpoints.save(generator, config.generator, checkpoints.stage_dir(STAGE))
    seconds = step * config.batch_size * config.segment / SAMPLE_RATE
    # Every command that trained these weights, each from the step it started at (moodmusic.runs).
    command = provenance or config.command or f"moodmusic train vocoder --corpus {config.corpus} --out {config.out} --steps {config.steps} --export"
    checkpoints.record(
        STAGE,
        model=generator,
        command=command,
        data=f"{n_train} train-split clips of {config.corpus}; random {config.segment}-sample windows, "
        f"{config.batch_size} a step ({seconds / 3600:.1f} h of audio seen by step {step})",
        metrics=metrics,
        extra={"steps": step, "adversarial_start": config.adversarial_start},
    )


def train(config: TrainConfig, progress: bool = True) -> dict[str, float]:
    """Train (or resume) to `config.steps`; returns the last validation scores."""
    import speechbrain as sb
    from accelerate import Accelerator
    from speechbrain.lobes.models.HifiGAN import DiscriminatorLoss, GeneratorLoss, MelganFeatureLoss, MSEDLoss, MSEGLoss
    from tqdm import tqdm

    run = RunFolder(config.out)
    out = run.path
    accelerator = Accelerator(cpu=config.cpu)
    torch.manual_seed(config.seed)

    train_clips = split_clips(config.corpus, "train")
    sampler = SegmentSampler(train_clips, config.segment, config.seed)
    val_audio = [torch.from_numpy(load_audio(c.audio)).to(accelerator.device) for c in split_clips(config.corpus, "val")[: config.val_clips]]

    generator = build_generator(config.generator)
    discriminator = Discriminator(config.discriminator)
    opt_g = torch.optim.AdamW(generator.parameters(), config.lr, betas=config.betas)
    opt_d = torch.optim.AdamW(discriminator.parameters(), config.lr, betas=config.betas)
    step, optimizer_states, resumed_lr = 0, None, config.lr
    _adopt_old_history(out, run)
    if read_state_step(out) is not None:
        step, optimizer_states, resumed_lr = _load_state(out, config, generator, discriminator)
    elif config.export_only:
        raise checkpoints.CheckpointError(f"{out / STATE} does not exist: nothing to export; train first")
    if config.export_only:
        # The manifest describes the run as it was trained (its batch size, window, ...), not this command.
        saved = _config_from_dict(json.loads((out / STATE / "trainer.json").read_text())["config"])
        scores = validate(generator, [audio.cpu() for audio in val_audio])
        export(generator, saved, step, scores, len(train_clips), run.provenance())
        accelerator.print(f"exported {out / STATE} (step {step}) to {checkpoints.stage_dir(STAGE)}")
        return scores
    if step:
        accelerator.print(f"resuming {out} from step {step} (of {config.steps})")
    if accelerator.is_main_process:
        run.resume(step, config.command or invocation(config))
    generator, discriminator, opt_g, opt_d = accelerator.prepare(generator, discriminator, opt_g, opt_d)
    sched_g = torch.optim.lr_scheduler.ExponentialLR(opt_g, config.lr_decay)
    sched_d = torch.optim.lr_scheduler.ExponentialLR(opt_d, config.lr_decay)
    optimizers = {"generator": opt_g, "discriminator": opt_d, "generator_scheduler": sched_g, "discriminator_scheduler": sched_d}
    if optimizer_states is not None:
        for name, part in optimizers.items():
            part.load_state_dict(optimizer_states[name])
        if resumed_lr != config.lr:  # a new --lr on resume rescales the schedule where it stands
            for optimizer, scheduler in ((opt_g, sched_g), (opt_d, sched_d)):
                for group in optimizer.param_groups:
                    group["lr"] *= config.lr / resumed_lr
                scheduler.base_lrs = [config.lr] * len(scheduler.base_lrs)
            accelerator.print(f"learning rate rescaled by {config.lr / resumed_lr:g} (--lr {config.lr:g}, the run had {resumed_lr:g})")

    generator_loss = GeneratorLoss(
        stft_loss=MultiResolutionSTFTLoss(sc_weight=config.sc_weight) if config.stft_weight else None, stft_loss_weight=config.stft_weight,
        mseg_loss=MSEGLoss(), mseg_loss_weight=config.adversarial_weight,
        feat_match_loss=MelganFeatureLoss(), feat_match_loss_weight=config.feature_weight,
        l1_spec_loss=MelL1Loss(), l1_spec_loss_weight=config.mel_weight,
    )  # fmt: skip
    discriminator_loss = DiscriminatorLoss(msed_loss=MSEDLoss())

    def checkpoint(at: int) -> dict[str, float]:
        scores = validate(accelerator.unwrap_model(generator), val_audio)
        if accelerator.is_main_process:
            save_state(out, at, config, accelerator.unwrap_model(generator), accelerator.unwrap_model(discriminator), optimizers)
            run.log({"step": at, **scores})
            if config.export:
                export(accelerator.unwrap_model(generator), config, at, scores, len(train_clips), run.provenance())
        return scores

    generator.train()
    discriminator.train()
    sums: dict[str, float] = {}
    interval_start, interval_steps = time.perf_counter(), 0
    scores: dict[str, float] = {}
    bar = tqdm(total=config.steps, initial=step, desc="vocoder", unit="step", disable=not (progress and accelerator.is_main_process))
    while step < config.steps:
        y = sampler.batch(step, config.batch_size).to(accelerator.device)
        y_hat = generator(log_mel(y.squeeze(1)))[..., : y.shape[-1]]
        losses: dict[str, torch.Tensor] = {}
        scores_fake = feats_fake = feats_real = None
        if step >= config.adversarial_start:
            scores_fake, _ = discriminator(y_hat.detach())
            scores_real, _ = discriminator(y)
            losses["D_loss"] = discriminator_loss(scores_fake, scores_real)["D_loss"]
            opt_d.zero_grad(set_to_none=True)
            accelerator.backward(losses["D_loss"])
            opt_d.step()
            sched_d.step()
            discriminator.requires_grad_(False)  # the generator's step needs gradients through D, not for it
            scores_fake, feats_fake = discriminator(y_hat)
            with torch.no_grad():
                _, feats_real = discriminator(y)
        losses.update(generator_loss(sb.Stage.TRAIN, y_hat, y, scores_fake, feats_fake, feats_real))
        opt_g.zero_grad(set_to_none=True)
        accelerator.backward(losses["G_loss"])
        opt_g.step()
        sched_g.step()
        discriminator.requires_grad_(True)
        step += 1

        for name, value in losses.items():
            value = float(value.detach()) if torch.is_tensor(value) else float(value)
            if not math.isfinite(value):
                raise FloatingPointError(f"step {step}: {name} is {value}; lower --lr or check the data")
            sums[name] = sums.get(name, 0.0) + value
        interval_steps += 1
        bar.update(1)
        if step % config.log_every == 0 or step == config.steps:
            elapsed = time.perf_counter() - interval_start
            entry = {"step": step, "lr": sched_g.get_last_lr()[0], "seconds_per_step": elapsed / interval_steps}
            entry.update({name: total / interval_steps for name, total in sums.items()})
            if accelerator.is_main_process:
                run.log(entry)
            bar.set_postfix(mel=f"{entry.get('G_l1_spec_loss', 0):.3f}", s_step=f"{entry['seconds_per_step']:.2f}")
            sums, interval_start, interval_steps = {}, time.perf_counter(), 0
        if step % config.checkpoint_every == 0 or step == config.steps:
            scores = checkpoint(step)
            interval_start = time.perf_counter()  # validation time is not training time
    bar.close()
    return scores
