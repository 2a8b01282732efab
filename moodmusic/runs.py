"""One run folder for every trainer (generator, classifier, vocoder): resume, log, and the commands that trained it.

A run folder holds the trainer's state (which it resumes from), `log.jsonl` (one JSON line per log step) and
`commands.jsonl` (each command that trained the run, with the step it started from), so the manifest entry of an
export can say exactly how the weights were made, across resumes. The export itself goes through
`moodmusic.checkpoints` (save + record), the same for every stage.

    run = RunFolder("runs/generator")
    state = run.load_state()                    # None, or the dict `save_state` wrote (read with weights_only=True)
    step = int(state["step"]) if state else 0
    run.resume(step, command)                   # drops log lines past `step`, records `command` from there
    run.log({"step": step, "loss": 0.5})
    run.save_state({"model": model.state_dict(), "step": step})
    run.provenance()                            # "moodmusic train ..." (or each command, from the step it resumed at)

>>> import tempfile
>>> run = RunFolder(tempfile.mkdtemp())
>>> run.load_state() is None
True
>>> run.resume(0, "moodmusic train generator --steps 10")
>>> run.log({"step": 5, "loss": 1.0}); run.log({"step": 10, "loss": 0.5})
>>> run.resume(5, "moodmusic train generator --steps 20")   # resumed from a state saved at step 5
>>> [entry["step"] for entry in run.entries()], run.provenance()
([5], 'from step 0: moodmusic train generator --steps 10 ; then from step 5: moodmusic train generator --steps 20')
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from moodmusic.commandline import typed_command

STATE_FILE, LOG_FILE, COMMANDS_FILE = "state.pt", "log.jsonl", "commands.jsonl"


def invocation(config) -> str:
    """The command that runs this training: `moodmusic ...` as typed, or (called from Python) the config as JSON."""
    if Path(sys.argv[0]).name == "moodmusic":
        return typed_command()
    return json.dumps(dataclasses.asdict(config), default=str) if dataclasses.is_dataclass(config) else str(config)


class RunFolder:
    """A trainer's run folder (made if missing); see the module docstring."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def load_state(self) -> dict | None:
        """The saved state (tensors, numbers, strings: never unpickled objects), or None for a new run."""
        import torch

        return torch.load(self.state_path, map_location="cpu", weights_only=True) if self.state_path.exists() else None

    def save_state(self, state: dict) -> None:
        """Write the state atomically (a temporary file, then a rename): an interrupted save keeps the last one."""
        import torch

        tmp = self.state_path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.state_path)

    def log(self, entry: dict) -> None:
        with open(self.path / LOG_FILE, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def entries(self) -> list[dict]:
        path = self.path / LOG_FILE
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

    def resume(self, done: int, command: str, unit: str = "step") -> None:
        """Start, or resume after `done` steps (or epochs: `unit`, the log's key): log lines past `done` are dropped
        (that work is done, and logged, again) and `command` is recorded as training the run from there (unless it
        is the command already training it)."""
        kept = [entry for entry in self.entries() if entry.get(unit, 0) <= done]
        (self.path / LOG_FILE).write_text("".join(json.dumps(entry) + "\n" for entry in kept))
        history = self.commands()
        if not history or history[-1]["command"] != command:
            with open(self.path / COMMANDS_FILE, "a") as f:
                f.write(json.dumps({"from": int(done), "unit": unit, "command": command}) + "\n")

    def commands(self) -> list[dict]:
        """The commands that trained the run, oldest first: [{"from_step", "command"}, ...]."""
        path = self.path / COMMANDS_FILE
        return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []

    def provenance(self) -> str:
        """How the run's weights were made, for the manifest: its one command, or each from the step it started at."""
        history = self.commands()
        if len(history) == 1:
            return history[0]["command"]
        return " ; then ".join(f"from {h['unit']} {h['from']}: {h['command']}" for h in history)
