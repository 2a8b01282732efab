"""The mood CRNN: convolution blocks on the log-mel, a bidirectional GRU over time, attentive pooling.

In the spirit of the multimodal CRNN paper's audio branch, sized for fast CPU inference: four conv blocks shrink
80 mel bins x T frames to 5 x T/16, a BiGRU reads the sequence, attention pooling gives one
embedding per window, and two heads read it: (valence, arousal) in [-1, 1] and quadrant logits.

A small second branch reads the chroma (classifier/features.py) for the mode: convolutions that
wrap around the 12 pitch classes, then a maximum over the 12 rotations, so what it finds (a
major or a minor third above a strong pitch, say) does not depend on the key. Its features join
the mel branch's at each GRU step. A mode head (`ModeHead`) reads the mean chroma of the window
and its surroundings (mode is a property of a longer stretch than 3 s) and gives a major-vs-minor
logit, trained against the sign of valence and passed on to the embedding.

A third branch, optional (`pitch_channels`), reads the semitone levels C2..B7 unfolded
(`classifier.features.semitone_levels`): convolutions over pitch and time whose kernels span an
octave and a semitone, then a maximum over pitch, so it finds an interval pattern (a melody doubled
a third above with nothing over it, two notes a semitone apart in the bass) at whatever pitch it
sits. The chroma cannot show these: it folds the octaves and keeps one of two neighbouring peaks.

A cue head, optional (`cue_tracks`), reads each GRU step and says whether a note of each graded
valence cue sounds there (a melody note doubled a third above, a semitone added over the bass). It
is trained on the corpus builder's own record of those notes (`corpus.render.cue_tracks`); the mean of
its probabilities over the window, i.e. how much of the window each cue fills, joins the pooled
features, so the valence head can read the size of valence from counted events rather than from
whatever in the texture happens to correlate with it.

The input is NOT normalised per clip: loudness is an arousal cue, so the model sees absolute
log-mel levels, shifted and scaled by dataset constants stored in the config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from moodmusic.classifier.features import N_CHROMA, N_SEMITONES
from moodmusic.mel import N_MELS


@dataclass
class ClassifierConfig:
    """The shape of a `MoodCRNN`, its input statistics and windows; saved as a checkpoint's config.json."""

    n_mels: int = N_MELS
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    gru_hidden: int = 64
    embedding_dim: int = 128
    dropout: float = 0.2
    mel_mean: float = -6.0  # dataset statistics of the log-mel, set by training
    mel_std: float = 3.0
    window_frames: int = 256  # 2.97 s: the training crop and the analysis window
    chroma_channels: int = 16
    mode_hidden: int = 16
    context_frames: int = 258  # 3 s each side of a window feed the mode head
    pitch_channels: int = 0  # the semitone branch; 0 (no branch) in classifiers trained before it
    cue_tracks: int = 0  # outputs of the cue head (corpus.cues.CUE_TRACKS); 0 (no head) in classifiers trained before it
    # The front end: every input is brought to this BS.1770 loudness (LUFS) before its features, so the
    # model cannot read the mood off the playback level (None: inputs as they come, classifiers before it).
    input_lufs: float | None = None


class ConvBlock(nn.Sequential):
    """One conv block of the CRNN's front: 3x3 conv -> batch norm -> ReLU -> 2x2 max pool (halves mels and frames)."""

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


class PitchIntervals(nn.Module):
    """(B, 72, T) semitone levels -> (B, channels, T // 2): convolutions over pitch and time, max over pitch.

    The first kernel spans 13 semitones, so it sees a note, whatever lies up to an octave around
    it, and whether anything sounds above; the time stride of 2 halves the cost (notes last longer
    than two 11.6 ms frames)."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=(13, 3), stride=(1, 2), padding=(6, 1)),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, kernel_size=(3, 3), padding=(1, 1)),
            nn.ReLU(inplace=True),
        )

    def forward(self, levels: torch.Tensor) -> torch.Tensor:
        return self.layers(levels.unsqueeze(1)).amax(dim=2)


class ModeHead(nn.Module):
    """(B, 12) pitch-class profile -> (B, 2) major and minor scores, the same in every key.

    Each of the 12 pitch classes is tried as the tonic: the profile is rotated so that it sits
    first, and one small network scores "major in this key" and "minor in this key" (the learned
    counterpart of the Krumhansl key profiles). A mode's score is the log-sum-exp over tonics, so
    the head need not name the key to hear the mode, and transposing the music changes nothing.
    """

    def __init__(self, hidden: int):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(12, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))
        # rotations[k, j] = (j + k) mod 12: the profile read with pitch class k as degree 0.
        self.register_buffer("rotations", (torch.arange(12)[None, :] + torch.arange(12)[:, None]) % 12, persistent=False)

    def forward(self, profile: torch.Tensor) -> torch.Tensor:
        profile = 12 * profile / (profile.sum(dim=1, keepdim=True) + 1e-6)  # shares of the pitch classes, mean 1
        per_key = self.score(profile[:, self.rotations])  # (B, 12 tonics, 2 modes)
        return torch.logsumexp(per_key, dim=1)


class MoodCRNN(nn.Module):
    """The mood classifier: conv blocks over the log-mel, a tonal branch over the chroma (and semitone levels),
    a GRU over time, and heads for (valence, arousal), the four quadrants and the mode.

    >>> import torch
    >>> net = MoodCRNN(channels=(4, 4, 4, 4), gru_hidden=8, embedding_dim=16, chroma_channels=4, mode_hidden=4)
    >>> out = net(torch.randn(3, 80, 258), torch.rand(3, net.tonal_rows, 258))    # three 3 s windows
    >>> tuple(out["valence_arousal"].shape), tuple(out["quadrant_logits"].shape), tuple(out["embedding"].shape)
    ((3, 2), (3, 4), (3, 16))
    """

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
        mode_hidden: int = 16,
        context_frames: int = 258,
        pitch_channels: int = 0,
        cue_tracks: int = 0,
        input_lufs: float | None = None,
    ):
        super().__init__()
        self.input_lufs = input_lufs  # read by the front end (classifier.inference, classifier.data), not by forward
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
        self.pitch = PitchIntervals(pitch_channels) if pitch_channels else None
        self.gru = nn.GRU(conv_features + chroma_channels + pitch_channels, gru_hidden, batch_first=True, bidirectional=True)
        self.mode = ModeHead(mode_hidden) if mode_hidden else None
        self.context_frames = context_frames  # used by the callers that cut windows (classifier.inference)
        self.attention = nn.Linear(2 * gru_hidden, 1)
        self.cue = nn.Linear(2 * gru_hidden, cue_tracks) if cue_tracks else None
        pooled_features = 4 * gru_hidden + (2 if mode_hidden else 0) + cue_tracks
        self.embed = nn.Sequential(nn.Linear(pooled_features, embedding_dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.valence_arousal = nn.Linear(embedding_dim, 2)
        self.quadrant_logits = nn.Linear(embedding_dim, 4)

    @property
    def reads_semitones(self) -> bool:
        """Whether the tonal input holds the semitone levels under the chroma (a model with a pitch branch)."""
        return self.pitch is not None

    @property
    def tonal_rows(self) -> int:
        """Rows of the tonal input: the chroma (12), and the semitone levels (72) under it for a pitch branch."""
        return N_CHROMA + (N_SEMITONES if self.reads_semitones else 0)

    def forward(self, log_mel: torch.Tensor, tonal: torch.Tensor | None = None, context: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """log_mel (B, 80, T), tonal (B, tonal_rows, T) from `classifier.features.tonal_features`, T >= 16,
        context (B, 12) the mean chroma around the window (default: the window's own) -> valence_arousal
        (B, 2), quadrant_logits (B, 4), mode_logit (B,) (> 0: major; 0 without a mode head), embedding (B, D),
        and with a cue head cue_logits (B, T // 16, cue_tracks): per GRU step, does each cue sound there."""
        x = ((log_mel - self.mel_mean) / self.mel_std).unsqueeze(1)
        x = self.conv(x)  # (B, C, F', T')
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T', C * F')
        chroma = None
        if self.chroma is not None or self.pitch is not None:
            if tonal is None or tonal.shape[1] != self.tonal_rows:
                raise ValueError(f"this classifier reads tonal features too: pass tonal (B, {self.tonal_rows}, T) beside the log-mel")
            chroma = tonal[:, :N_CHROMA]
        branches = []
        if self.chroma is not None:
            branches.append(nn.functional.avg_pool1d(self.chroma(chroma), self.time_reduction))
        if self.pitch is not None:
            branches.append(nn.functional.avg_pool1d(self.pitch(tonal[:, N_CHROMA:]), self.time_reduction // 2))
        for branch in branches:  # (B, C, ~T'): align with the mel branch's steps
            x = torch.cat([x, branch[..., : x.shape[1]].transpose(1, 2)], dim=2)
        sequence, _ = self.gru(x)
        weights = torch.softmax(self.attention(sequence), dim=1)
        attended = (weights * sequence).sum(dim=1)
        pooled = [attended, sequence.amax(dim=1)]
        mode_logit = torch.zeros(x.shape[0], device=x.device)
        if self.mode is not None:
            modes = self.mode(context if context is not None else chroma.mean(dim=2))
            mode_logit = modes[:, 0] - modes[:, 1]
            pooled.append(modes)
        outputs = {}
        if self.cue is not None:
            outputs["cue_logits"] = self.cue(sequence)
            pooled.append(torch.sigmoid(outputs["cue_logits"]).mean(dim=1))  # the share of the window each cue fills
        pooled = torch.cat(pooled, dim=1)
        embedding = self.embed(pooled)
        return {
            "valence_arousal": torch.tanh(self.valence_arousal(embedding)),
            "quadrant_logits": self.quadrant_logits(embedding),
            "mode_logit": mode_logit,
            "embedding": embedding,
            **outputs,
        }
