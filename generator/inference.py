"""Loading the generator from its checkpoint folder (docs/conventions.md).

A generator folder may hold `guidance.json`, which turns on critic-guided sampling
(`generator.sampling.Guidance`) with a mode critic from a stage folder beside it:

    {"candidates": 8, "chunk_slices": 4, "critic": "critic"}
    (optional: "accept": 0.7, "valence_scale": 1.5, "neutral": "ambiguous"; see Guidance)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from moodmusic import checkpoints

from moodmusic.generator.model import GeneratorConfig, MelSliceGenerator
from moodmusic.generator.sampling import Guidance, MelGenerator

STAGE = "generator"
GUIDANCE_FILE = "guidance.json"


def build_model(config: GeneratorConfig) -> MelSliceGenerator:
    return MelSliceGenerator(**asdict(config))


def load_guidance(directory: Path, device: str = "cpu"):
    """(critic, Guidance) from the folder's guidance.json, or (None, plain sampling) without one."""
    path = directory / GUIDANCE_FILE
    if not path.exists():
        return None, Guidance()
    from moodmusic.generator.critic import load as load_critic

    try:
        spec = json.loads(path.read_text())
        critic_dir = directory.parent / spec["critic"]
        accept = spec.get("accept")
        guidance = Guidance(int(spec["candidates"]), int(spec["chunk_slices"]), None if accept is None else float(accept),
                            float(spec.get("valence_scale", 1.0)), str(spec.get("neutral", "any")))  # fmt: skip
    except (ValueError, KeyError, TypeError) as error:
        raise checkpoints.CheckpointError(f"{path} must be like {{\"candidates\": 8, \"chunk_slices\": 4, \"critic\": \"critic\"}}: {error}") from error
    if not (critic_dir / checkpoints.WEIGHTS_FILE).exists():
        raise checkpoints.CheckpointError(f"{path} names the critic {critic_dir}, which holds no weights: "
                                          "train one with `moodmusic train critic --export` or delete the file")  # fmt: skip
    critic = load_critic(critic_dir).to(device)
    critic.version = checkpoints.sha256(critic_dir / checkpoints.WEIGHTS_FILE)[:8]
    return critic, guidance


def load(directory: str | Path | None = None, device: str = "cpu") -> MelGenerator:
    """The generator in `directory` (default: the shipped checkpoints/generator), guided as its guidance.json says.

    >>> generator = load()
    >>> mel = generator.generate("calm", seconds=2.0, seed=1)   # a (80, frames) log-mel, 86.13 frames a second
    >>> tuple(mel.shape)
    (80, 172)
    >>> bool((generator.generate("calm", seconds=2.0, seed=1) == mel).all())   # the same seed, the same music
    True
    """
    directory = Path(directory) if directory else checkpoints.stage_dir(STAGE)
    if not (directory / checkpoints.WEIGHTS_FILE).exists():
        raise checkpoints.CheckpointError(f"no generator weights in {directory}: train them with `moodmusic train generator --export`")
    config = GeneratorConfig(**checkpoints.load_config(directory))
    model = checkpoints.load_weights(build_model(config), directory, device)
    version = checkpoints.sha256(directory / checkpoints.WEIGHTS_FILE)[:12]
    critic, guidance = load_guidance(directory, device)
    return MelGenerator(model.to(device), config, version, critic=critic, guidance=guidance)
