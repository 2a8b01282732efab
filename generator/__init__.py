"""The generator stage: (valence, arousal) -> log-mel, slice after slice (an autoregressive conditional GAN).

    from moodmusic import generator
    g = generator.load()                       # checkpoints/generator/ (or a folder)
    mel = g.generate("calm", seconds=10, seed=1)

Names are imported on first use, so `import generator` stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "load": "moodmusic.generator.inference",
    "MelGenerator": "moodmusic.generator.sampling",
    "Session": "moodmusic.generator.sampling",
    "GeneratorConfig": "moodmusic.generator.model",
}

if TYPE_CHECKING:
    from moodmusic.generator.inference import load
    from moodmusic.generator.model import GeneratorConfig
    from moodmusic.generator.sampling import MelGenerator, Session

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
