"""The packages are layered, and no import goes upward or round in a circle.

Layers, lowest first; a module may import from its own layer or lower ones:

- L0 the leaf ``moodmusic`` (every module of moodmusic/ but the chain and the top ones below):
  mood space, mel, audio, mastering, checkpoints, tonality, tempo, loops, shared types.
- L1 the stages: ``moodmusic.corpus``, ``moodmusic.generator``, ``moodmusic.vocoder``,
  ``moodmusic.classifier``, ``moodmusic.narrator`` (folders at the repository root that pyproject.toml
  maps into the package: ``moodmusic.generator`` is generator/).
- L2 the chain: ``moodmusic.pipeline``, its live form ``moodmusic.livestream``, its form spread over a Ray
  cluster ``moodmusic.cluster`` and its command ``moodmusic.generate`` (`moodmusic generate`).
- L3 ``moodmusic.evaluation``.
- L4 the top: ``moodmusic.server``, ``moodmusic.games``, ``moodmusic.cli``, ``moodmusic.client``, and
  the load drivers ``moodmusic.evaluation.load_test`` and ``moodmusic.evaluation.stream_load``.

Every ``import`` and ``from ... import`` counts, function-local ones included (an import hidden in
a function is still a dependency). On top of the layer order there must be no cycle between
packages (stages importing each other in a circle) nor between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Modules of the moodmusic package that are not in the leaf layer.
SPECIAL = {
    "moodmusic.pipeline": 2,
    "moodmusic.livestream": 2,
    "moodmusic.generate": 2,
    "moodmusic.cluster": 2,
    "moodmusic.cli": 4,
    "moodmusic.client": 4,
    # the load drivers: clients of a running server (moodmusic.client, server.background), run as processes
    "moodmusic.evaluation.load_test": 4,
    "moodmusic.evaluation.stream_load": 4,
}
PACKAGES = {
    "moodmusic": 0,
    "moodmusic.corpus": 1,
    "moodmusic.generator": 1,
    "moodmusic.vocoder": 1,
    "moodmusic.classifier": 1,
    "moodmusic.narrator": 1,
    "moodmusic.evaluation": 3,
    "moodmusic.server": 4,
    "moodmusic.games": 4,
}
LAYER_NAMES = {0: "L0 leaf", 1: "L1 stages", 2: "L2 chain", 3: "L3 evaluation", 4: "L4 top"}


def _folder(package: str) -> Path:
    """The folder of a package: moodmusic/ itself, or a stage's folder at the repository root that
    pyproject.toml maps to ``moodmusic.<stage>`` (``moodmusic.generator`` is generator/)."""
    return ROOT / package.split(".")[-1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] != "moodmusic":
        parts.insert(0, "moodmusic")
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted(_folder(package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _package(module: str) -> str:
    """The package of PACKAGES a module belongs to: its stage (``moodmusic.server``) or ``moodmusic``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in PACKAGES else parts[0]


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module that ``name`` means (a module, or a package's __init__); None if outside."""
    if name.split(".")[0] != "moodmusic":
        return None
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported project module, line) for every import in the file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    out.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod when there is one.
                full = f"{stem}.{alias.name}"
                target = _resolve(full if full in modules else stem, modules)
                if target:
                    out.append((target, node.lineno))
    return out


def _unit(module: str) -> str:
    """The package a module counts in: its top-level package, but the chain and top modules of
    moodmusic count on their own (they sit in other layers than the leaf)."""
    return module if module in SPECIAL else _package(module)


def _layer(module: str) -> int:
    return SPECIAL.get(module, PACKAGES[_package(module)])


def _graph():
    modules = _modules()
    edges: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        for target, line in _imports(module, path, modules):
            if target != module:
                edges[module].setdefault(target, line)
    return modules, edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _cycle_report(cycles: list[list[str]], edges: dict[str, dict[str, int]], unit=lambda m: m) -> str:
    lines = []
    for component in cycles:
        members = set(component)
        lines.append("cycle: " + " <-> ".join(component))
        for module in sorted(edges):
            for target, line in sorted(edges[module].items()):
                if unit(module) in members and unit(target) in members and unit(module) != unit(target):
                    lines.append(f"    {module}:{line} imports {target}")
    return "\n".join(lines)


def test_the_walk_sees_the_packages():
    modules, edges = _graph()
    for package in PACKAGES:
        assert package in modules, package
    for module in SPECIAL:
        assert module in modules, module
    assert sum(len(targets) for targets in edges.values()) > 100


def test_no_import_goes_up_a_layer():
    _, edges = _graph()
    upward = []
    for module, targets in sorted(edges.items()):
        for target, line in sorted(targets.items()):
            if _layer(target) > _layer(module):
                upward.append(
                    f"{module}:{line} ({LAYER_NAMES[_layer(module)]}) imports {target} "
                    f"({LAYER_NAMES[_layer(target)]})"
                )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_cycle_between_packages():
    _, edges = _graph()
    graph: dict[str, set[str]] = {}
    for module, targets in edges.items():
        for target in targets:
            if _unit(module) != _unit(target):
                graph.setdefault(_unit(module), set()).add(_unit(target))
    cycles = _cycles(graph)
    assert not cycles, "package cycles:\n" + _cycle_report(cycles, edges, _unit)


def test_no_cycle_between_modules():
    _, edges = _graph()
    cycles = _cycles({module: set(targets) for module, targets in edges.items()})
    assert not cycles, "module cycles:\n" + _cycle_report(cycles, edges)


def test_the_checks_catch_what_they_should(tmp_path):
    """The walk itself: a function-local import and a relative one are seen, and a cycle is found."""
    modules = {"moodmusic.corpus": tmp_path / "corpus" / "__init__.py", "moodmusic.corpus.a": tmp_path / "a.py", "moodmusic.corpus.b": tmp_path / "b.py"}
    modules["moodmusic.corpus.a"].write_text("def f():\n    from moodmusic.corpus.b import g\n")
    modules["moodmusic.corpus.b"].write_text("from .a import f\n")
    assert _imports("moodmusic.corpus.a", modules["moodmusic.corpus.a"], modules) == [("moodmusic.corpus.b", 2)]
    assert _imports("moodmusic.corpus.b", modules["moodmusic.corpus.b"], modules) == [("moodmusic.corpus.a", 1)]
    assert _cycles({"moodmusic.corpus.a": {"moodmusic.corpus.b"}, "moodmusic.corpus.b": {"moodmusic.corpus.a"}}) == [["moodmusic.corpus.a", "moodmusic.corpus.b"]]
    assert _cycles({"moodmusic.corpus.a": {"moodmusic.corpus.b"}, "moodmusic.corpus.b": set()}) == []
    assert _layer("moodmusic.mood") == 0 and _layer("moodmusic.pipeline") == 2 and _layer("moodmusic.cli") == 4
    assert _layer("moodmusic.server.app") == 4 and _layer("moodmusic.generator.model") == 1 and _layer("moodmusic.evaluation") == 3
    assert _unit("moodmusic.server.app") == "moodmusic.server" and _unit("moodmusic.mel") == "moodmusic"
    # an upward import through the package's name is seen, in each spelling
    leaf = tmp_path / "leaf.py"
    leaf.write_text("from moodmusic import server\nimport moodmusic.generator.model as m\nfrom moodmusic.server.app import x\n")
    known = {"moodmusic.mel": leaf, "moodmusic.server": leaf, "moodmusic.server.app": leaf, "moodmusic.generator": leaf, "moodmusic.generator.model": leaf}
    assert _imports("moodmusic.mel", leaf, known) == [("moodmusic.server", 1), ("moodmusic.generator.model", 2), ("moodmusic.server.app", 3)]
