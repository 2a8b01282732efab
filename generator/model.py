"""The mood-conditioned autoregressive GAN: networks and their configuration.

The generator writes the next `slice_frames` log-mel frames (docs/conventions.md) of a clip from
  - the previous `context_frames` frames (real ones, its own earlier output, or silence at the start),
  - the mood (valence, arousal), and
  - noise: one latent per slice (phrase-level variation) and a few channels per frame (texture).
It is a stack of dilated 1-D convolutions over time (context and slice together, the slice's frames
marked by a mask channel), with the mood and latent entering every residual block through FiLM on
a parameter-free group norm. There are no dense layers over the whole spectrogram: the Generating Mood Music project's
350 M-parameter dense layer is replaced by ~2 M convolution weights that see 80 frames at once.

The discriminator judges the join: the last `judge_context` frames of the context followed by
the slice, so a slice that does not continue its context (the Generating Mood Music project's disjointed transitions) is
fake even when each frame is plausible. Spectral norm in every layer, a projection term for the
mood (Miyato & Koyama 2018) and an auxiliary head that reads the mood back (trained on real data
only; the generator is asked to make it read the mood it was given).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from moodmusic.mel import LOG_FLOOR, N_MELS


@dataclass
class GeneratorConfig:
    """The shape of a `MelSliceGenerator` and the mel statistics it normalises with; saved as a checkpoint's config.json."""

    n_mels: int = N_MELS
    slice_frames: int = 32  # 0.37 s written per step
    context_frames: int = 64  # 0.74 s read per step
    channels: int = 192
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 1, 2, 4, 8, 1])
    latent_dim: int = 32  # one latent vector per slice
    frame_noise_channels: int = 8
    condition_dim: int = 128
    mel_mean: float = -6.0  # dataset statistics of the log-mel, set by training
    mel_std: float = 3.0


@dataclass
class DiscriminatorConfig:
    """The shape of a `SliceDiscriminator` in the generator's training, and the mel statistics it normalises with."""

    n_mels: int = N_MELS
    judge_context: int = 32  # context frames shown beside the slice
    channels: list[int] = field(default_factory=lambda: [128, 192, 256, 256])
    mel_mean: float = -6.0
    mel_std: float = 3.0


class FiLMBlock(nn.Module):
    """Residual block: norm -> FiLM(condition) -> LeakyReLU -> dilated conv -> conv, added back."""

    def __init__(self, channels: int, condition_dim: int, dilation: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, channels, affine=False)
        self.film = nn.Linear(condition_dim, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.dilated = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(condition).unsqueeze(-1).chunk(2, dim=1)
        h = self.norm(x) * (1 + scale) + shift
        h = self.dilated(nn.functional.leaky_relu(h, 0.2))
        return x + self.mix(nn.functional.leaky_relu(h, 0.2))


class MelSliceGenerator(nn.Module):
    """The generator network: the next `slice_frames` log-mel frames from the previous `context_frames`, the
    mood (valence, arousal), a latent that drifts from slice to slice, and per-frame noise.

    >>> import torch
    >>> net = MelSliceGenerator(channels=32, dilations=(1, 2), latent_dim=8, condition_dim=16)
    >>> context = torch.full((2, 80, 64), -11.5)                   # two clips starting from silence
    >>> mood = torch.tensor([[0.6, -0.6], [-0.5, 0.6]])            # calm, tense
    >>> piece = net(context, mood, torch.randn(2, 8), torch.randn(2, 8, 64 + 32))
    >>> tuple(piece.shape)
    (2, 80, 32)
    """

    def __init__(
        self,
        n_mels: int = N_MELS,
        slice_frames: int = 32,
        context_frames: int = 64,
        channels: int = 192,
        dilations: list[int] | tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 1),
        latent_dim: int = 32,
        frame_noise_channels: int = 8,
        condition_dim: int = 128,
        mel_mean: float = -6.0,
        mel_std: float = 3.0,
    ):
        super().__init__()
        self.n_mels, self.slice_frames, self.context_frames = n_mels, slice_frames, context_frames
        self.latent_dim, self.frame_noise_channels = latent_dim, frame_noise_channels
        self.register_buffer("mel_mean", torch.tensor(float(mel_mean)))
        self.register_buffer("mel_std", torch.tensor(float(mel_std)))
        self.condition = nn.Sequential(
            nn.Linear(2 + latent_dim, condition_dim), nn.LeakyReLU(0.2), nn.Linear(condition_dim, condition_dim), nn.LeakyReLU(0.2)
        )
        self.inp = nn.Conv1d(n_mels + 1 + frame_noise_channels, channels, 3, padding=1)
        self.blocks = nn.ModuleList(FiLMBlock(channels, condition_dim, d) for d in dilations)
        self.out = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(channels, n_mels, 3, padding=1))

    def normalise(self, mel: torch.Tensor) -> torch.Tensor:
        return (mel - self.mel_mean) / self.mel_std

    def forward(self, context: torch.Tensor, valence_arousal: torch.Tensor, latent: torch.Tensor, frame_noise: torch.Tensor) -> torch.Tensor:
        """context (B, 80, C) log-mel, valence_arousal (B, 2), latent (B, L), frame_noise (B, K, C + S) -> slice (B, 80, S) log-mel."""
        batch, _, context_frames = context.shape
        slice_frames = self.slice_frames
        mel = torch.cat([self.normalise(context), context.new_zeros(batch, self.n_mels, slice_frames)], dim=2)
        mask = torch.cat([context.new_zeros(batch, 1, context_frames), context.new_ones(batch, 1, slice_frames)], dim=2)
        x = self.inp(torch.cat([mel, mask, frame_noise], dim=1))
        condition = self.condition(torch.cat([valence_arousal, latent], dim=1))
        for block in self.blocks:
            x = block(x, condition)
        out = self.mel_mean + self.mel_std * self.out(x[..., context_frames:])
        # Nothing below the log floor (log of 1e-5, docs/conventions.md). A soft floor, not a clamp: a clamp has
        # no gradient below the floor, and a first run lost 23% of its mel bins there for good.
        return LOG_FLOOR + nn.functional.softplus(out - LOG_FLOOR)

    def noise(self, batch: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """A latent (B, L) and frame noise (B, K, C + S) for one slice."""
        latent = torch.randn(batch, self.latent_dim, generator=generator, device=device)
        frames = torch.randn(batch, self.frame_noise_channels, self.context_frames + self.slice_frames, generator=generator, device=device)
        return latent, frames


class SliceDiscriminator(nn.Module):
    """The discriminator of the generator's training: real or fake for the last `judge_context` frames of the
    context followed by a slice, with a projection term for the mood and a head that reads the mood back."""

    def __init__(
        self, n_mels: int = N_MELS, judge_context: int = 32, channels: list[int] | tuple[int, ...] = (128, 192, 256, 256),
        mel_mean: float = -6.0, mel_std: float = 3.0,
    ):  # fmt: skip
        super().__init__()
        self.judge_context = judge_context
        self.register_buffer("mel_mean", torch.tensor(float(mel_mean)))
        self.register_buffer("mel_std", torch.tensor(float(mel_std)))
        layers, previous = [], n_mels + 1
        for i, width in enumerate(channels):
            stride = 1 if i == 0 else 2
            layers.append(spectral_norm(nn.Conv1d(previous, width, 5 if i == 0 else 4, stride=stride, padding=2 if i == 0 else 1)))
            previous = width
        self.layers = nn.ModuleList(layers)
        self.patch = spectral_norm(nn.Conv1d(previous, 1, 3, padding=1))
        self.mood_embedding = spectral_norm(nn.Linear(2, previous))
        self.mood_reader = nn.Linear(previous, 2)

    def forward(self, context: torch.Tensor, slice_: torch.Tensor, valence_arousal: torch.Tensor) -> dict:
        """-> logits (B,), mood (B, 2) read back, features (list of maps, for feature matching)."""
        shown = torch.cat([context[..., -self.judge_context :], slice_], dim=2)
        mask = torch.zeros_like(shown[:, :1])
        mask[..., -slice_.shape[-1] :] = 1
        x = torch.cat([(shown - self.mel_mean) / self.mel_std, mask], dim=1)
        features = []
        for layer in self.layers:
            x = nn.functional.leaky_relu(layer(x), 0.2)
            features.append(x)
        pooled = x.mean(dim=2)
        logits = self.patch(x).mean(dim=(1, 2)) + (self.mood_embedding(valence_arousal) * pooled).sum(dim=1) / pooled.shape[1] ** 0.5
        return {"logits": logits, "mood": torch.tanh(self.mood_reader(pooled)), "features": features}
