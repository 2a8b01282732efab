"""Render a mel that arrives in chunks, so that the pieces join without clicks.

Each render covers the frames not yet played plus `context` frames already played on the left and
everything received on the right; frames within `lookahead` of the newest one are held back until
more arrives (or `flush()`). With context and lookahead at least the generator's receptive field
(vocoder.model.receptive_field_frames, 15 frames = 0.17 s for the default), the kept samples are
the ones a one-shot rendering of the whole mel gives, so the joins are seamless by construction.

Each render also predicts `crossfade` samples past what it emits; the next render's first samples
are faded against that prediction (raised cosine). It costs nothing when renders agree, and it
turns a mismatch (a shorter lookahead than the receptive field, or Griffin-Lim, whose phases differ
between renders) into a short blend instead of a step.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from moodmusic.mel import HOP_LENGTH, N_MELS


class Renderer(Protocol):
    """What a StreamRenderer needs of a vocoder (every vocoder.model.Vocoder has it)."""

    device: torch.device
    context_frames: int
    crossfade_samples: int

    def render(self, mels: torch.Tensor) -> torch.Tensor: ...


class StreamRenderer:
    """Renders a mel pushed in chunks (`push`, then `flush` at the end) into audio that joins without clicks;
    see the module docstring. `Vocoder.stream()` makes one."""

    def __init__(self, vocoder: Renderer, lookahead_frames: int | None = None, context_frames: int | None = None):
        self.vocoder = vocoder
        self.context = vocoder.context_frames if context_frames is None else int(context_frames)
        self.lookahead = vocoder.context_frames if lookahead_frames is None else int(lookahead_frames)
        self.crossfade = vocoder.crossfade_samples
        self._reset()

    def _reset(self) -> None:
        self._mel = torch.zeros(N_MELS, 0, device=self.vocoder.device)  # frames from absolute index _offset on
        self._offset = 0
        self._emitted = 0  # frames whose audio has been returned
        self._tail: torch.Tensor | None = None  # the last render's prediction of the next samples

    @property
    def latency_frames(self) -> int:
        """Frames held back after each push."""
        return self.lookahead

    def push(self, mel_chunk: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Add (80, t) frames; returns the audio now final (possibly no samples)."""
        chunk = torch.as_tensor(mel_chunk).to(self.vocoder.device, torch.float32)
        if chunk.dim() != 2 or chunk.shape[0] != N_MELS:
            raise ValueError(f"expected a mel chunk of shape (80, t), got {tuple(chunk.shape)}")
        self._mel = torch.cat([self._mel, chunk], dim=1)
        ready = self._offset + self._mel.shape[1] - self.lookahead
        if ready <= self._emitted:
            return torch.zeros(0, device=self.vocoder.device)
        return self._emit(ready, final=False)

    def flush(self) -> torch.Tensor:
        """The audio of every frame still held back; the renderer can then start a new stream."""
        total = self._offset + self._mel.shape[1]
        audio = self._emit(total, final=True) if total > self._emitted else torch.zeros(0, device=self.vocoder.device)
        self._reset()
        return audio

    def _emit(self, upto: int, final: bool) -> torch.Tensor:
        start = max(self._emitted - self.context, self._offset)
        audio = self.vocoder.render(self._mel[:, start - self._offset :])
        begin, end = (self._emitted - start) * HOP_LENGTH, (upto - start) * HOP_LENGTH
        piece = audio[begin:end].clone()
        if self._tail is not None:
            n = min(self._tail.numel(), piece.numel())
            fade_in = 0.5 - 0.5 * torch.cos(torch.linspace(0.0, torch.pi, n + 2, device=piece.device)[1:-1])
            piece[:n] = self._tail[:n] * (1 - fade_in) + piece[:n] * fade_in
        self._tail = None if final else audio[end : end + self.crossfade].clone()
        self._emitted = upto
        keep_from = max(upto - self.context, self._offset)  # frames before this are never rendered again
        self._mel = self._mel[:, keep_from - self._offset :]
        self._offset = keep_from
        return piece


def render_in_chunks(vocoder: Vocoder, mel: torch.Tensor | np.ndarray, chunk_frames: int) -> tuple[torch.Tensor, list[int]]:
    """Stream a whole mel in chunks of `chunk_frames`; returns the joined audio and the join positions."""
    mel = torch.as_tensor(mel)
    renderer = vocoder.stream()
    pieces = [renderer.push(mel[:, i : i + chunk_frames]) for i in range(0, mel.shape[-1], chunk_frames)]
    pieces.append(renderer.flush())
    lengths = [p.numel() for p in pieces if p.numel()]
    joins = list(np.cumsum(lengths)[:-1])
    return torch.cat([p for p in pieces if p.numel()]), [int(j) for j in joins]
