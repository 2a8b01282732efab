"""Loading the generator from its checkpoint folder (CONVENTIONS 3)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from moodmusic import checkpoints

from generator.model import GeneratorConfig, MelSliceGenerator
from generator.sampling import MelGenerator

STAGE = "generator"


def build_model(config: GeneratorConfig) -> MelSliceGenerator:
    return MelSliceGenerator(**asdict(config))


def load(directory: str | Path | None = None, device: str = "cpu") -> MelGenerator:
    """The generator in `directory` (default: the shipped checkpoints/generator)."""
    directory = Path(directory) if directory else checkpoints.stage_dir(STAGE)
    if not (directory / checkpoints.WEIGHTS_FILE).exists():
        raise checkpoints.CheckpointError(f"no generator weights in {directory}: train them with `moodmusic train generator --export`")
    config = GeneratorConfig(**checkpoints.load_config(directory))
    model = checkpoints.load_weights(build_model(config), directory, device)
    version = checkpoints.sha256(directory / checkpoints.WEIGHTS_FILE)[:12]
    return MelGenerator(model.to(device), config, version)
