import json
from dataclasses import dataclass

import pytest
import torch

from moodmusic import checkpoints


@dataclass
class TinyConfig:
    width: int = 4


class Tiny(torch.nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.linear = torch.nn.Linear(width, 2)


def test_save_and_load_round_trip(tmp_path):
    model = Tiny(4)
    checkpoints.save(model, TinyConfig(4), tmp_path / "tiny")
    config = checkpoints.load_config(tmp_path / "tiny")
    assert config == {"width": 4}
    restored = checkpoints.load_weights(Tiny(**config), tmp_path / "tiny")
    assert torch.equal(restored.linear.weight, model.linear.weight)


def test_loading_into_a_different_model_is_an_error_not_a_warning(tmp_path):
    checkpoints.save(Tiny(4), TinyConfig(4), tmp_path / "tiny")
    with pytest.raises(checkpoints.CheckpointError, match="does not match"):
        checkpoints.load_weights(Tiny(5), tmp_path / "tiny")


def test_missing_checkpoint_says_what_is_missing(tmp_path):
    with pytest.raises(checkpoints.CheckpointError, match="config.json"):
        checkpoints.load_config(tmp_path)


def test_manifest_records_hash_parameters_and_command(tmp_path):
    root = tmp_path / "checkpoints"
    model = Tiny(4)
    checkpoints.save(model, TinyConfig(4), root / "tiny")
    entry = checkpoints.record("tiny", model=model, command="moodmusic train tiny", data="none", metrics={"mae": 0.1}, root=root)
    manifest = json.loads((root / "MANIFEST.json").read_text())
    assert manifest["tiny"]["sha256"] == checkpoints.sha256(root / "tiny" / "model.safetensors") == entry["sha256"]
    assert manifest["tiny"]["parameters"] == 4 * 2 + 2
    assert manifest["tiny"]["file"] == "checkpoints/tiny/model.safetensors"
    assert checkpoints.version("tiny", root) == entry["sha256"][:12]


class NotATensor:
    pass


def test_torch_checkpoints_are_read_without_unpickling_objects(tmp_path):
    safe = tmp_path / "safe.ckpt"
    torch.save({"w": torch.ones(2)}, safe)
    assert torch.equal(checkpoints.load_torch_weights(safe)["w"], torch.ones(2))
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"w": NotATensor()}, unsafe)
    with pytest.raises(Exception):
        checkpoints.load_torch_weights(unsafe)
