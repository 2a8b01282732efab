"""moodmusic: compose short music clips for a mood, check them, and tell what they sound like."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

# The stages live in folders at the repository root (generator/, server/, ...), but they are installed,
# and always imported, as subpackages of this one: `moodmusic.generator`, `moodmusic.server`, ...
# pyproject.toml maps them with `[tool.setuptools] package-dir`, so an installed copy (`pip install .`)
# holds them inside site-packages/moodmusic/ and Python finds them on this package's __path__.
#
# A source checkout (pytest, `python scripts/x.py` from the repository, no install) has no such
# folders inside moodmusic/. For it, the finder below resolves exactly the mapped names
# `moodmusic.<stage>` to `<repository root>/<stage>/`; their own submodules then import through the
# package's __path__ as usual. Nothing else at the root (tests/, scripts/, docs/) becomes importable
# under moodmusic. It is only installed when moodmusic/ sits beside the mapped folders and a
# pyproject.toml, i.e. in a checkout; an installed copy never has it.
# Keep SUBPACKAGES in step with pyproject.toml's package-dir (tests/test_packaging.py checks both).
SUBPACKAGES = ("corpus", "generator", "vocoder", "classifier", "narrator", "evaluation", "server", "games")

_HERE = Path(__file__).resolve().parent
_CHECKOUT = _HERE.parent


class _CheckoutFinder(importlib.abc.MetaPathFinder):
    """`moodmusic.<stage>` -> `<checkout>/<stage>/__init__.py`, for the stages of SUBPACKAGES only."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, fullname, path=None, target=None):
        package, _, stage = fullname.partition(".")
        if package != __name__ or stage not in SUBPACKAGES:
            return None
        init = self.root / stage / "__init__.py"
        if not init.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[str(init.parent)])


def _in_checkout() -> bool:
    return (_CHECKOUT / "pyproject.toml").is_file() and not (_HERE / "generator").is_dir() and all(
        (_CHECKOUT / stage / "__init__.py").is_file() for stage in SUBPACKAGES
    )


if _in_checkout() and not any(isinstance(f, _CheckoutFinder) and f.root == _CHECKOUT for f in sys.meta_path):
    sys.meta_path.insert(0, _CheckoutFinder(_CHECKOUT))
