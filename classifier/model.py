"""The mood CRNN: convolution blocks on the log-mel, a bidirectional GRU over time, attentive pooling.

In the spirit of seed 001's audio branch, sized for fast CPU inference: four conv blocks shrink
80 mel bins x T frames to 5 x T/16, a BiGRU reads the sequence, attention pooling gives one
embedding per window, and two heads read it: (valence, arousal) in [-1, 1] and quadrant logits.

A small second branch reads the chroma (classifier/features.py) for the mode: convolutions that
wrap around the 12 pitch classes, then a maximum over the 12 rotations, so what it finds (a
major or a minor third above a strong pitch, say) does not depend on the key. Its features join
the mel branch's at each GRU step.

The input is NOT normalised per clip: loudness is an arousal cue, so the model sees absolute
log-mel levels, shifted and scaled by dataset constants stored in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from moodmusic.mel import N_MELS


@dataclass
class ClassifierConfig:
    n_mels: int = N_MELS
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    gru_hidden: int = 64
    embedding_dim: int = 128
    dropout: float = 0.2
    mel_mean: float = -6.0  # dataset statistics of the log-mel, set by training
    mel_std: float = 3.0
    window_frames: int = 256  # 2.97 s: the training crop and the analysis window
    chroma_channels: int = 16
    key_profiles: int = 16


class ConvBlock(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )


class KeyInvariantChroma(nn.Module):
    """(B, 12, T) chroma -> (B, channels, T): circular convolutions over pitch, max over rotations."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=(12, 3), padding=(0, 1)),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=(1, 3), padding=(0, 1)),
            nn.ReLU(inplace=True),
        )

    def forward(self, chroma: torch.Tensor) -> torch.Tensor:
        # Wrap 11 pitch classes around so a 12-tall kernel sees every rotation: output (B, C, 12, T).
        wrapped = torch.cat([chroma, chroma[:, :11]], dim=1).unsqueeze(1)
        return self.layers(wrapped).amax(dim=2)


class KeyProfiles(nn.Module):
    """(B, 12, T) chroma -> (B, profiles): best correlation of the mean chroma with each profile over 12 keys."""

    def __init__(self, profiles: int):
        super().__init__()
        from moodmusic.tonality import MAJOR_PROFILE, MINOR_PROFILE

        initial = torch.randn(profiles, 12) * 0.5
        initial[0] = torch.as_tensor(MAJOR_PROFILE, dtype=torch.float32)
        if profiles > 1:
            initial[1] = torch.as_tensor(MINOR_PROFILE, dtype=torch.float32)
        self.profiles = nn.Parameter(initial)
        self.scale = nn.Parameter(torch.tensor(4.0))
        # All 12 rotations of a pitch-class vector, as an index table: rotations[k, i] = (i - k) mod 12.
        self.register_buffer("rotations", (torch.arange(12)[None, :] - torch.arange(12)[:, None]) % 12, persistent=False)

    @staticmethod
    def _standardise(x: torch.Tensor) -> torch.Tensor:
        x = x - x.mean(dim=-1, keepdim=True)
        return x / (x.norm(dim=-1, keepdim=True) + 1e-6)

    def forward(self, chroma: torch.Tensor) -> torch.Tensor:
        profile = self._standardise(chroma.mean(dim=2))  # (B, 12)
        keys = self._standardise(self.profiles)[:, self.rotations]  # (P, 12 keys, 12 pitch classes)
        correlations = torch.einsum("bi,pki->bpk", profile, keys)  # Pearson r per profile and key
        return self.scale * correlations.amax(dim=2)


class MoodCRNN(nn.Module):
    def __init__(
        self,
        n_mels: int = N_MELS,
        channels: list[int] | tuple[int, ...] = (8, 16, 32, 64),
        gru_hidden: int = 64,
        embedding_dim: int = 128,
        dropout: float = 0.2,
        mel_mean: float = -6.0,
        mel_std: float = 3.0,
        window_frames: int = 256,
        chroma_channels: int = 16,
        key_profiles: int = 16,
    ):
        super().__init__()
        self.register_buffer("mel_mean", torch.tensor(float(mel_mean)))
        self.register_buffer("mel_std", torch.tensor(float(mel_std)))
        blocks, previous = [], 1
        for width in channels:
            blocks.append(ConvBlock(previous, width))
            previous = width
        self.conv = nn.Sequential(*blocks)
        self.time_reduction = 2 ** len(channels)
        conv_features = previous * (n_mels // self.time_reduction)
        self.chroma = KeyInvariantChroma(chroma_channels) if chroma_channels else None
        self.gru = nn.GRU(conv_features + chroma_channels, gru_hidden, batch_first=True, bidirectional=True)
        self.key_profiles = KeyProfiles(key_profiles) if key_profiles else None
        self.attention = nn.Linear(2 * gru_hidden, 1)
        self.embed = nn.Sequential(nn.Linear(4 * gru_hidden + key_profiles, embedding_dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.valence_arousal = nn.Linear(embedding_dim, 2)
        self.quadrant_logits = nn.Linear(embedding_dim, 4)

    def forward(self, log_mel: torch.Tensor, chroma: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """log_mel (B, 80, T), chroma (B, 12, T), T >= 16 -> valence_arousal (B, 2), quadrant_logits (B, 4), embedding (B, D)."""
        x = ((log_mel - self.mel_mean) / self.mel_std).unsqueeze(1)
        x = self.conv(x)  # (B, C, F', T')
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T', C * F')
        if self.chroma is not None:
            if chroma is None:
                raise ValueError("this classifier reads the chroma too: pass chroma (B, 12, T) beside the log-mel")
            tonal = self.chroma(chroma)  # (B, C, T)
            tonal = nn.functional.avg_pool1d(tonal, self.time_reduction)[..., : x.shape[1]]
            x = torch.cat([x, tonal.transpose(1, 2)], dim=2)
        sequence, _ = self.gru(x)
        weights = torch.softmax(self.attention(sequence), dim=1)
        attended = (weights * sequence).sum(dim=1)
        pooled = [attended, sequence.amax(dim=1)]
        if self.key_profiles is not None:
            pooled.append(self.key_profiles(chroma))
        pooled = torch.cat(pooled, dim=1)
        embedding = self.embed(pooled)
        return {
            "valence_arousal": torch.tanh(self.valence_arousal(embedding)),
            "quadrant_logits": self.quadrant_logits(embedding),
            "embedding": embedding,
        }
