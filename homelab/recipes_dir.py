"""Where the app recipes that ship with homelab are (recipes/*.yaml).

The checkout keeps them at the top level (`recipes/`, the agreed layout); a wheel carries them
as the data package `homelab.recipes` (pyproject's package-dir mapping); the one-file
executable unpacks them to `<sys._MEIPASS>/homelab/recipes` (build/homelab.spec).
"""
from __future__ import annotations

import sys
from pathlib import Path

from homelab.errors import HomelabError

_PACKAGE = Path(__file__).resolve().parent  # .../homelab


def candidate_dirs(package: Path | None = None, frozen_root: str | None = None) -> list[Path]:
    """Where to look, in order: the frozen bundle, an installed wheel, a checkout."""
    package = package or _PACKAGE
    found = [Path(frozen_root) / "homelab" / "recipes"] if frozen_root else []
    return [*found, package / "recipes", package.parent / "recipes"]


def shipped_recipes_dir() -> Path:
    """The directory of shipped recipes; raises HomelabError when the install lost it."""
    tried = candidate_dirs(frozen_root=getattr(sys, "_MEIPASS", None))
    for path in tried:
        if path.is_dir():
            return path
    raise HomelabError("the shipped app recipes are missing (looked in " + ", ".join(map(str, tried)) + ")",
                       "reinstall homelab: the wheel and the executable carry recipes/")
