"""HiFi-GAN's discriminators, narrowed to fit a CPU budget.

The layout is speechbrain's (DiscriminatorP / DiscriminatorS in speechbrain.lobes.models.HifiGAN):
five period discriminators (2, 3, 5, 7, 11) and three scale discriminators (raw, x2 and x4
average-pooled), leaky ReLU 0.1, weight norm (spectral norm on the first scale), and the same
(scores, features) output, so speechbrain's MSEGLoss / MSEDLoss / MelganFeatureLoss apply as they
are. speechbrain's classes have their widths fixed (32..1024 channels: MPD 41 M + MSD 30 M
parameters, about 5.5 s a step here, docs/conventions.md), so the widths are arguments here: the period
stacks default to 8, 16, 32, 64, 64 channels (speechbrain's 32, 128, 512, 1024, 1024) and the scale
stacks to 4, 8, 16, 32, 32, 32, 32 (speechbrain's 128, 128, 256, 512, 1024, 1024, 1024), with the
same kernels and strides, groups capped at a quarter of the input channels: 0.25 M parameters in
all. The scale stacks cost most (kernel-41 convolutions at the full sample rate); measured on one
busy core at batch 16 x 8192, one adversarial step adds about half a generator step at these
widths, 80 % at twice the scale width, and more than twice a generator step at 4x both widths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

LRELU_SLOPE = 0.1


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The periods, scales and channel widths of the vocoder's discriminators (`Discriminator`); part of its TrainConfig."""

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    period_channels: tuple[int, ...] = (8, 16, 32, 64, 64)
    scales: int = 3
    scale_channels: tuple[int, ...] = (4, 8, 16, 32, 32, 32, 32)


class PeriodDiscriminator(nn.Module):
    """The waveform folded into (time / period, period) columns, 2-D convs along time only."""

    def __init__(self, period: int, channels: tuple[int, ...], kernel_size: int = 5, stride: int = 3):
        super().__init__()
        self.period = period
        sizes = (1, *channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(sizes[i], sizes[i + 1], (kernel_size, 1), (stride if i < len(channels) - 1 else 1, 1), padding=(kernel_size // 2, 0)))
            for i in range(len(channels))
        )
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        batch, chans, length = x.shape
        if length % self.period:
            x = F.pad(x, (0, self.period - length % self.period), "reflect")
        x = x.view(batch, chans, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return torch.flatten(x, 1, -1), features


class ScaleDiscriminator(nn.Module):
    """MelGAN-style strided grouped 1-D convs over the (pooled) waveform."""

    def __init__(self, channels: tuple[int, ...], use_spectral_norm: bool = False):
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        # (kernel, stride, groups) of speechbrain's DiscriminatorS; groups shrink with the width.
        layout = [(15, 1, 1), (41, 2, 4), (41, 2, 16), (41, 4, 16), (41, 4, 16), (41, 1, 16), (5, 1, 1)]
        sizes = (1, *channels)
        convs = []
        for i, (kernel, stride, groups) in enumerate(layout[: len(channels)]):
            groups = max(1, min(groups, sizes[i] // 4)) if i else 1
            convs.append(norm(nn.Conv1d(sizes[i], sizes[i + 1], kernel, stride, groups=groups, padding=kernel // 2)))
        self.convs = nn.ModuleList(convs)
        self.conv_post = norm(nn.Conv1d(channels[-1], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            features.append(x)
        x = self.conv_post(x)
        features.append(x)
        return torch.flatten(x, 1, -1), features


class Discriminator(nn.Module):
    """MPD + MSD: (B, 1, samples) -> (scores, features), one entry per sub-discriminator."""

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig()):
        super().__init__()
        self.periods = nn.ModuleList(PeriodDiscriminator(p, config.period_channels) for p in config.periods)
        self.scales = nn.ModuleList(ScaleDiscriminator(config.scale_channels, use_spectral_norm=(i == 0)) for i in range(config.scales))
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        scores, features = [], []
        for disc in self.periods:
            score, feats = disc(x)
            scores.append(score)
            features.append(feats)
        for i, disc in enumerate(self.scales):
            if i:
                x = self.pool(x)
            score, feats = disc(x)
            scores.append(score)
            features.append(feats)
        return scores, features
