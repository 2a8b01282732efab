"""The installed layout: one top-level name. pyproject.toml maps the stage folders at the repository root into
`moodmusic` (`moodmusic.generator` is generator/, ...), and a checkout resolves the same names without installing.
Cheap: reads pyproject.toml and the folders, builds nothing."""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import moodmusic

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
NOT_INSTALLED = {"moodmusic", "tests", "scripts", "research", "docs", "build"}
# data folders that install inside the package, and the name they install as
DATA = {"checkpoints": "moodmusic.shipped_checkpoints", "server/static": "moodmusic.server.static", "games/godot": "moodmusic.games.godot"}


def _stage_folders() -> set[str]:
    """The first-party Python packages at the repository root, moodmusic/ aside."""
    return {p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name not in NOT_INSTALLED}


def _files(folder: Path) -> list[Path]:
    """Its files, but caches and dotfiles (games/godot/.gitignore keeps Godot's cache out of git)."""
    return [p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc" and not p.name.startswith(".")]


def test_only_moodmusic_is_installed_at_the_top():
    packages = SETUPTOOLS["packages"]
    assert {name.split(".")[0] for name in packages} == {"moodmusic"}
    assert all(name.split(".")[0] == "moodmusic" for name in SETUPTOOLS["package-dir"])
    assert "" not in SETUPTOOLS["package-dir"]  # no remapping of the top level
    assert PYPROJECT["project"]["scripts"] == {"moodmusic": "moodmusic.cli:main"}


def test_every_stage_folder_is_mapped_under_moodmusic():
    stages = _stage_folders()
    assert {"corpus", "generator", "vocoder", "classifier", "narrator", "evaluation", "server", "games"} <= stages
    mapped = {name: folder for name, folder in SETUPTOOLS["package-dir"].items()}
    for stage in stages:
        assert mapped.get(f"moodmusic.{stage}") == stage, stage
    assert set(moodmusic.SUBPACKAGES) == stages  # the checkout finder resolves exactly these
    expected = {"moodmusic"} | {f"moodmusic.{stage}" for stage in stages} | set(DATA.values())
    # every folder holding modules (a subpackage) is listed too, or setuptools would leave it out
    for stage in stages:
        for init in (ROOT / stage).rglob("__init__.py"):
            expected.add("moodmusic." + ".".join(init.parent.relative_to(ROOT).parts))
    assert set(SETUPTOOLS["packages"]) == expected
    assert all(mapped[name] == folder for folder, name in DATA.items())


def test_package_data_covers_every_data_file():
    for folder, name in DATA.items():
        patterns = SETUPTOOLS["package-data"][name]
        files = [p.relative_to(ROOT / folder).as_posix() for p in _files(ROOT / folder)]
        assert files, folder
        missed = [f for f in files if not any(fnmatch.fnmatch(f, pattern) and f.count("/") == pattern.count("/") for pattern in patterns)]
        assert not missed, f"{folder}: not installed by package-data {patterns}: {missed}"


def test_a_checkout_imports_the_stages_by_their_installed_names():
    for stage in moodmusic.SUBPACKAGES:
        module = importlib.import_module(f"moodmusic.{stage}")
        assert Path(module.__file__).resolve() == ROOT / stage / "__init__.py"
    assert Path(importlib.import_module("moodmusic.server.app").__file__).resolve() == ROOT / "server" / "app.py"
    # only the mapped names: nothing else at the root becomes part of the package
    for other in ("tests", "scripts", "research", "docs"):
        assert importlib.util.find_spec(f"moodmusic.{other}") is None, other


def test_the_cli_runs_modules_of_the_package():
    from moodmusic.cli import COMMANDS
    from moodmusic.evaluation import bench

    assert all(module.startswith("moodmusic.") for _, module, _ in COMMANDS)
    for module in (bench.LOAD_TEST_MODULE, bench.STREAM_TEST_MODULE):
        assert module.startswith("moodmusic.") and importlib.util.find_spec(module) is not None


def test_the_single_machine_server_needs_neither_ray_nor_psycopg():
    # `moodmusic serve` with its default store builds its app without importing the scale-out's packages.
    code = (
        "import sys, tempfile\n"
        "from moodmusic.server import cli, app, services\n"
        "from moodmusic.server.stores import open_store\n"
        "store = open_store(tempfile.mkdtemp(), 10**6); store.close()\n"
        "app.create_app()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'psycopg')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
