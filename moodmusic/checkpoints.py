"""Checkpoint I/O (CONVENTIONS section 3): one format for every stage.

`checkpoints/<stage>/` holds `model.safetensors` (the weights) and `config.json` (the model's
constructor arguments, so the model can be rebuilt before loading). `checkpoints/MANIFEST.json`
records for each stage its file, sha256, parameter count, training command, data, held-out
metrics and date. Weights never come from pickles: safetensors only; a user's speechbrain
`.ckpt` goes through `load_torch_weights`, which refuses anything but tensors.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[1]
# An installed copy ships the repository's checkpoints/ inside the package (pyproject.toml maps it to
# moodmusic.shipped_checkpoints); a source checkout reads checkpoints/ at the repository root.
INSTALLED_CHECKPOINTS = Path(__file__).resolve().parent / "shipped_checkpoints"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
MANIFEST_FILE = "MANIFEST.json"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or does not match its model."""


def checkpoints_dir() -> Path:
    """Where shipped weights live: MOODMUSIC_CHECKPOINTS when set, else the installed package's copy
    (moodmusic/shipped_checkpoints/), else the repository's checkpoints/ folder."""
    if os.environ.get("MOODMUSIC_CHECKPOINTS"):
        return Path(os.environ["MOODMUSIC_CHECKPOINTS"])
    if (INSTALLED_CHECKPOINTS / MANIFEST_FILE).is_file():
        return INSTALLED_CHECKPOINTS
    return REPO_ROOT / "checkpoints"


def stage_dir(stage: str, root: Path | None = None) -> Path:
    return Path(root or checkpoints_dir()) / stage


def save(model: torch.nn.Module, config: Any, directory: Path) -> Path:
    """Write weights and constructor arguments; returns the weights' path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config_dict = asdict(config) if is_dataclass(config) else dict(config)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = directory / WEIGHTS_FILE
    tmp = weights.with_suffix(".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, weights)
    (directory / CONFIG_FILE).write_text(json.dumps(config_dict, indent=2) + "\n")
    return weights


def load_config(directory: Path) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{path} is missing: a checkpoint folder needs {CONFIG_FILE} beside {WEIGHTS_FILE}")
    return json.loads(path.read_text())


def load_weights(model: torch.nn.Module, directory: Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load safetensors weights strictly: a missing or extra tensor is an error, not a warning."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"{path} is missing")
    state = load_file(str(path), device=str(device))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not match the model built from its config.json: {error}") from error
    return model


def load_torch_weights(path: Path) -> dict[str, torch.Tensor]:
    """A user-supplied `.ckpt`/`.pt` state dict, read with weights_only=True (no arbitrary unpickling)."""
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a state dict")
    return state


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def read_manifest(root: Path | None = None) -> dict:
    path = Path(root or checkpoints_dir()) / MANIFEST_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def record(
    stage: str,
    *,
    model: torch.nn.Module,
    command: str,
    data: str,
    metrics: dict,
    root: Path | None = None,
    extra: dict | None = None,
) -> dict:
    """Add or replace a stage's entry in MANIFEST.json from the weights now on disk."""
    root = Path(root or checkpoints_dir())
    weights = stage_dir(stage, root) / WEIGHTS_FILE
    entry = {
        "file": str(weights.relative_to(root.parent)) if root.parent in weights.parents else str(weights),
        "sha256": sha256(weights),
        "bytes": weights.stat().st_size,
        "parameters": parameter_count(model),
        "command": command,
        "data": data,
        "metrics": metrics,
        "date": _dt.date.today().isoformat(),
        **(extra or {}),
    }
    manifest = read_manifest(root)
    manifest[stage] = entry
    path = root / MANIFEST_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return entry


def version(stage: str, root: Path | None = None) -> str:
    """A short model version for responses and cache keys: the first 12 hex digits of the weights' sha256."""
    entry = read_manifest(root).get(stage)
    if entry:
        return entry["sha256"][:12]
    weights = stage_dir(stage, root) / WEIGHTS_FILE
    return sha256(weights)[:12] if weights.exists() else "untrained"
