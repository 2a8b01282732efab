"""Vocoders: log-mel (docs/conventions.md) in, mono waveform at 22,050 Hz out.

Three kinds load through `load()` (vocoder/__init__.py):
- our HiFi-GAN: speechbrain's `HifiganGenerator` built from `VocoderConfig`, weights in the
  checkpoint format of moodmusic.checkpoints (checkpoints/vocoder/ when shipped);
- a speechbrain HiFi-GAN folder a user has (`hyperparams.yaml` + `generator.ckpt`);
- Griffin-Lim (torchaudio), the fallback that needs no weights, after a least-squares or a sparse
  (sinusoid) inversion of the mel filterbank.

Weight norm: every state dict we write or read is the generator *as constructed*, with weight
norm (speechbrain's parametrisation keys, or the older weight_g/weight_v that torch converts on
load). Loading calls `remove_weight_norm()` afterwards, so inference runs on plain convolutions.
A state dict saved after weight-norm removal also loads (its layers are stripped first).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from moodmusic import checkpoints
from moodmusic.checkpoints import CheckpointError
from moodmusic.mel import HOP_LENGTH, MEL, N_MELS, SAMPLE_RATE, SinusoidMelInverse
from moodmusic.vocoder.streaming import StreamRenderer

STAGE = "vocoder"
GRIFFIN_LIM = "griffinlim"
GRIFFIN_LIM_SPARSE = "griffinlim-sparse"
GRIFFIN_LIM_INVERSIONS = {"least-squares": GRIFFIN_LIM, "sparse": GRIFFIN_LIM_SPARSE}  # inversion -> the name load() takes
SHIPPED_HIFIGAN = "hifigan"
SPEECHBRAIN_HPARAMS = "hyperparams.yaml"
SPEECHBRAIN_WEIGHTS = "generator.ckpt"
# speechbrain's "same" convolutions pad by reflection, which needs an input longer than the pad;
# shorter mels are rendered with replicated frames and trimmed back.
MIN_FRAMES = 8


@dataclass(frozen=True)
class VocoderConfig:
    """Constructor arguments of speechbrain's HifiganGenerator (written as config.json).

    The default is a V2-sized generator (0.93 M parameters): it renders 10 s in about 0.4 s on
    2 CPU cores, where V1 (512 channels, 13.9 M) takes 4.3 s (docs/conventions.md).
    """

    in_channels: int = N_MELS
    out_channels: int = 1
    resblock_type: str = "1"
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 128
    upsample_factors: tuple[int, ...] = (8, 8, 2, 2)
    inference_padding: int = 5
    cond_channels: int = 0
    conv_post_bias: bool = True

    @classmethod
    def preset(cls, layout: str = "v2", channels: int = 128) -> VocoderConfig:
        """HiFi-GAN's published layouts at a chosen width (upsample_initial_channel).

        "v2": resblock 1, upsampling 8-8-2-2 (the paper's V2 at 128 channels).
        "v3": resblock 2 (one dilated conv per step, no undilated follow-up), upsampling 8-8-4, so
        the full-rate stage is skipped; the paper's V3 is 256 channels. Measured here (2 cores,
        10 s of audio): V2-128 0.63 s, V3-256 0.67 s, V3-192 0.40 s, V3-128 0.25 s.
        """
        if layout == "v2":
            return cls(upsample_initial_channel=channels)
        if layout == "v3":
            return cls(
                resblock_type="2", resblock_dilation_sizes=((1, 2), (2, 6), (3, 12)), resblock_kernel_sizes=(3, 5, 7),
                upsample_kernel_sizes=(16, 16, 8), upsample_initial_channel=channels, upsample_factors=(8, 8, 4),
            )  # fmt: skip
        raise ValueError(f"unknown HiFi-GAN layout {layout!r}; choose v2 or v3")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VocoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise CheckpointError(f"unknown vocoder config key(s) {', '.join(sorted(unknown))}; expected some of {', '.join(sorted(known))}")
        values = dict(values)
        for key in ("resblock_kernel_sizes", "upsample_kernel_sizes", "upsample_factors"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        if "resblock_dilation_sizes" in values:
            values["resblock_dilation_sizes"] = tuple(tuple(int(d) for d in ds) for ds in values["resblock_dilation_sizes"])
        if "resblock_type" in values:
            values["resblock_type"] = str(values["resblock_type"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        """Our mels have 80 bands and one frame per 256 samples; a generator must agree."""
        hop = math.prod(self.upsample_factors)
        if self.in_channels != N_MELS or hop != HOP_LENGTH or self.cond_channels:
            raise CheckpointError(
                f"this HiFi-GAN takes {self.in_channels} mel bands at {hop} samples per frame"
                f"{' with conditioning' if self.cond_channels else ''}; moodmusic's mels need {N_MELS} bands at {HOP_LENGTH} (docs/conventions.md)"
            )


def build_generator(config: VocoderConfig) -> torch.nn.Module:
    """speechbrain's HifiganGenerator with weight norm, as it trains."""
    from speechbrain.lobes.models.HifiGAN import HifiganGenerator

    config.check()
    values = config.as_dict()
    values["resblock_dilation_sizes"] = [list(d) for d in config.resblock_dilation_sizes]
    for key in ("resblock_kernel_sizes", "upsample_kernel_sizes", "upsample_factors"):
        values[key] = list(values[key])
    return HifiganGenerator(**values)


def receptive_field_frames(config: VocoderConfig) -> int:
    """Frames on each side of a frame that can change its samples (an upper bound).

    Streaming renders this many frames of context and lookahead around each chunk, so that the
    samples it keeps are the ones a one-shot rendering gives. Each layer's reach, in samples at
    its own rate, is divided by that rate's samples per frame. The V2 layout reaches 15, V3 12.
    """
    reach = 3.0  # conv_pre: kernel 7 at the frame rate
    rate = 1
    for factor, kernel in zip(config.upsample_factors, config.upsample_kernel_sizes):
        reach += math.ceil(kernel / factor) / rate  # a transposed conv sees ceil(k/u) input samples
        rate *= factor
        blocks = []
        for size, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
            half = (size - 1) // 2
            per_block = sum(half * d for d in dilations)
            if config.resblock_type == "1":  # each dilated conv is followed by an undilated one
                per_block += half * len(dilations)
            blocks.append(per_block)
        reach += max(blocks) / rate
    reach += 3 / rate  # conv_post: kernel 7 at the sample rate
    return math.ceil(reach)


def load_generator_state(generator: torch.nn.Module, state: dict[str, torch.Tensor], where: str) -> torch.nn.Module:
    """Load strictly, then remove weight norm (see the module docstring); eval mode."""
    has_weight_norm = any(k.endswith(("parametrizations.weight.original0", "weight_g")) for k in state)
    if not has_weight_norm:
        generator.remove_weight_norm()
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{where} does not match the HiFi-GAN generator its config describes: {error}") from error
    if has_weight_norm:
        generator.remove_weight_norm()
    return generator.eval()


class Vocoder:
    """Renders log-mels to audio. Subclasses implement `_render` on a float32 (B, 80, T) batch."""

    name: str
    version: str
    device: torch.device
    context_frames: int  # streaming context and lookahead, in frames (see receptive_field_frames)
    crossfade_samples: int  # streaming overlap between consecutive renders

    def _render(self, mels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def render(self, mels: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(80, T) -> (T * 256,) samples; (B, 80, T) -> (B, T * 256). float32 on the vocoder's device."""
        mels = torch.as_tensor(mels).to(self.device, torch.float32)  # corpus mels are float16
        single = mels.dim() == 2
        batch = mels.unsqueeze(0) if single else mels
        if batch.dim() != 3 or batch.shape[1] != N_MELS:
            raise ValueError(f"expected a mel of shape (80, T) or (B, 80, T), got {tuple(mels.shape)}")
        frames = batch.shape[-1]
        if frames == 0:
            audio = batch.new_zeros(batch.shape[0], 0)
        else:
            if frames < MIN_FRAMES:
                batch = torch.nn.functional.pad(batch, (0, MIN_FRAMES - frames), mode="replicate")
            with torch.inference_mode():
                audio = self._render(batch)[:, : frames * HOP_LENGTH]
        return audio[0] if single else audio

    def stream(self, lookahead_frames: int | None = None) -> StreamRenderer:
        """A renderer for a mel that arrives in chunks (vocoder/streaming.py)."""
        return StreamRenderer(self, lookahead_frames=lookahead_frames)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, version={self.version!r})"


class HifiganVocoder(Vocoder):
    """A HiFi-GAN generator as a Vocoder: ours (`load_checkpoint_folder`) or a speechbrain folder a user has."""

    def __init__(self, generator: torch.nn.Module, config: VocoderConfig, *, name: str, version: str, device: str | torch.device = "cpu"):
        self.generator = generator.to(device).eval()
        self.config = config
        self.name, self.version, self.device = name, version, torch.device(device)
        self.context_frames = receptive_field_frames(config)
        self.crossfade_samples = HOP_LENGTH  # renders agree where kept; the fade only guards lookahead shortcuts

    def _render(self, mels: torch.Tensor) -> torch.Tensor:
        # forward, not inference(): inference replicate-pads 5 frames a side (docs/conventions.md), and
        # the exact T * 256 samples are what streaming and callers line up against.
        return self.generator(mels).squeeze(1)


class GriffinLimVocoder(Vocoder):
    """Unmix the mel filterbank to a linear magnitude, then Griffin-Lim (torchaudio).

    `inversion` "least-squares" is torchaudio's InverseMelScale, the textbook baseline; "sparse" is
    `moodmusic.mel.SinusoidMelInverse`, which puts the partials back at their pitch before the phase is
    searched (docs/vocoder.md). Phase starts at zero (not random), so the same mel always gives the same audio.
    """

    def __init__(self, n_iter: int = 32, inversion: str = "least-squares", device: str | torch.device = "cpu"):
        import torchaudio

        if inversion not in GRIFFIN_LIM_INVERSIONS:
            raise ValueError(f"inversion must be one of {sorted(GRIFFIN_LIM_INVERSIONS)}, got {inversion!r}")
        self.n_iter = n_iter
        self.name = GRIFFIN_LIM_INVERSIONS[inversion]
        self.version, self.device = f"{self.name}-{n_iter}", torch.device(device)
        self.context_frames = 8  # twice the window's span; Griffin-Lim's phase is only locally consistent
        self.crossfade_samples = MEL.n_fft  # its chunks' phases differ, so fade over a full window
        if inversion == "sparse":
            self.inverse_mel = SinusoidMelInverse().to(self.device)
        else:
            self.inverse_mel = torchaudio.transforms.InverseMelScale(
                n_stft=MEL.n_fft // 2 + 1, n_mels=MEL.n_mels, sample_rate=MEL.sample_rate,
                f_min=MEL.f_min, f_max=MEL.f_max, norm=MEL.norm, mel_scale=MEL.mel_scale,
            ).to(self.device)  # fmt: skip
        self.window = torch.hann_window(MEL.win_length, device=self.device)

    def _render(self, mels: torch.Tensor) -> torch.Tensor:
        import torchaudio

        # T * 256 samples re-analyse to T + 1 centred frames, so the last frame is repeated once.
        padded = torch.nn.functional.pad(mels, (0, 1), mode="replicate")
        magnitude = self.inverse_mel(torch.exp(padded))  # the mel is the natural log of magnitude
        return torchaudio.functional.griffinlim(
            magnitude, self.window, MEL.n_fft, MEL.hop_length, MEL.win_length, power=1.0,
            n_iter=self.n_iter, momentum=0.99, length=mels.shape[-1] * HOP_LENGTH, rand_init=False,
        )  # fmt: skip


def load_checkpoint_folder(directory: Path, device: str | torch.device = "cpu", name: str | None = None, version: str | None = None) -> HifiganVocoder:
    """A folder in moodmusic's checkpoint format (model.safetensors + config.json)."""
    from safetensors.torch import load_file

    directory = Path(directory)
    config = VocoderConfig.from_dict(checkpoints.load_config(directory))
    weights = directory / checkpoints.WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointError(f"{weights} is missing")
    generator = load_generator_state(build_generator(config), load_file(str(weights)), str(weights))
    return HifiganVocoder(
        generator, config, name=name or f"hifigan:{directory.name}", version=version or checkpoints.sha256(weights)[:12], device=device
    )


class _TaggedLoader(yaml.SafeLoader):
    """Reads hyperpyyaml without running it: `!new:`/`!ref`/... tags become plain values.

    hyperpyyaml would instantiate every class the file names; a user's file is data to us.
    """


def _tagged(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return {"__tag__": tag_suffix, **loader.construct_mapping(node, deep=True)}
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    value = loader.construct_scalar(node)
    return {"__ref__": value} if tag_suffix == "ref" else value


_TaggedLoader.add_multi_constructor("!", _tagged)


def speechbrain_generator_config(hparams_path: Path) -> VocoderConfig:
    """The generator's constructor arguments from a speechbrain hyperparams.yaml.

    Arguments come from the `generator: !new:...HifiganGenerator` block, `!ref <key>` resolved
    against the file's top-level keys; files without such a block may list them at top level.
    """
    hparams = yaml.load(Path(hparams_path).read_text(), Loader=_TaggedLoader) or {}
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{hparams_path}: not a YAML mapping")
    names = {f.name for f in fields(VocoderConfig)}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict) and "__ref__" in value:
            key = str(value["__ref__"]).strip().strip("<>")
            if key not in hparams:
                raise CheckpointError(f"{hparams_path}: !ref <{key}> names no top-level key")
            return resolve(hparams[key])
        return value

    block = hparams.get("generator")
    if isinstance(block, dict) and str(block.get("__tag__", "")).endswith("HifiganGenerator"):
        values = {k: resolve(v) for k, v in block.items() if k in names}
    else:
        values = {k: resolve(v) for k, v in hparams.items() if k in names}
    if "sample_rate" in hparams and int(resolve(hparams["sample_rate"])) != SAMPLE_RATE:
        raise CheckpointError(f"{hparams_path}: a {resolve(hparams['sample_rate'])} Hz vocoder; moodmusic's mels are at {SAMPLE_RATE} Hz")
    required = {"resblock_dilation_sizes", "resblock_kernel_sizes", "upsample_kernel_sizes", "upsample_initial_channel", "upsample_factors"}
    missing = required - set(values)
    if missing:
        raise CheckpointError(f"{hparams_path}: no HifiganGenerator arguments {', '.join(sorted(missing))} found")
    return VocoderConfig.from_dict(values)


def load_speechbrain_folder(directory: Path, device: str | torch.device = "cpu") -> HifiganVocoder:
    directory = Path(directory)
    config = speechbrain_generator_config(directory / SPEECHBRAIN_HPARAMS)
    weights = directory / SPEECHBRAIN_WEIGHTS
    state = checkpoints.load_torch_weights(weights)  # weights_only=True: nothing is unpickled
    generator = load_generator_state(build_generator(config), state, str(weights))
    return HifiganVocoder(generator, config, name=f"speechbrain-hifigan:{directory.name}", version=checkpoints.sha256(weights)[:12], device=device)


def load(source: str | Path | None = None, device: str | torch.device = "cpu") -> Vocoder:
    """The shipped HiFi-GAN (None or "hifigan"), Griffin-Lim ("griffinlim", or "griffinlim-sparse" with the
    sinusoid inversion of the mel), or a folder: ours or speechbrain's.

    >>> import torch
    >>> from moodmusic.mel import log_mel
    >>> tone = torch.sin(2 * torch.pi * 220 * torch.arange(22050) / 22050)
    >>> audio = load("griffinlim").render(log_mel(tone))        # 87 frames -> 87 x 256 samples
    >>> tuple(audio.shape)
    (22272,)
    """
    if source is None or str(source).lower() == SHIPPED_HIFIGAN:
        directory = checkpoints.stage_dir(STAGE)
        if not (directory / checkpoints.WEIGHTS_FILE).exists():
            raise CheckpointError(
                f"no shipped vocoder in {directory}: train one with `moodmusic train vocoder --export`, "
                f"or load a speechbrain HiFi-GAN folder or {GRIFFIN_LIM!r} (no weights needed)"
            )
        return load_checkpoint_folder(directory, device, name="moodmusic-hifigan", version=checkpoints.version(STAGE))
    for inversion, name in GRIFFIN_LIM_INVERSIONS.items():
        if str(source).lower() == name:
            return GriffinLimVocoder(inversion=inversion, device=device)
    directory = Path(source)
    if (directory / checkpoints.WEIGHTS_FILE).exists():
        return load_checkpoint_folder(directory, device)
    if (directory / SPEECHBRAIN_HPARAMS).exists() and (directory / SPEECHBRAIN_WEIGHTS).exists():
        return load_speechbrain_folder(directory, device)
    raise CheckpointError(
        f"{source}: not a vocoder; expected {GRIFFIN_LIM!r}, {GRIFFIN_LIM_SPARSE!r}, a folder with {checkpoints.WEIGHTS_FILE} + {checkpoints.CONFIG_FILE}, "
        f"or a speechbrain folder with {SPEECHBRAIN_HPARAMS} + {SPEECHBRAIN_WEIGHTS}"
    )
