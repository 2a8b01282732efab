"""The vocoder stage: log-mel (docs/conventions.md) -> waveform at 22,050 Hz.

    from moodmusic import vocoder
    voc = vocoder.load()                  # the shipped HiFi-GAN (checkpoints/vocoder/)
    voc = vocoder.load("griffinlim")      # no weights needed
    voc = vocoder.load("path/to/folder")  # ours (model.safetensors + config.json) or speechbrain's
                                          # (hyperparams.yaml + generator.ckpt)
    audio = voc.render(mel)               # (80, T) -> (T * 256,); (B, 80, T) -> (B, T * 256)
    stream = voc.stream()                 # stream.push(chunk) -> audio so far; stream.flush() -> the rest

The names are imported on first use, so `import vocoder` (and `moodmusic --help`) stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "load": "moodmusic.vocoder.model",
    "Vocoder": "moodmusic.vocoder.model",
    "VocoderConfig": "moodmusic.vocoder.model",
    "HifiganVocoder": "moodmusic.vocoder.model",
    "GriffinLimVocoder": "moodmusic.vocoder.model",
    "StreamRenderer": "moodmusic.vocoder.streaming",
}

if TYPE_CHECKING:
    from moodmusic.vocoder.model import GriffinLimVocoder, HifiganVocoder, Vocoder, VocoderConfig, load
    from moodmusic.vocoder.streaming import StreamRenderer

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
