"""A real wheel (not the editable install) carries recipes/ as `homelab.recipes`, and an
install of it finds them with shipped_recipes_dir(). ~5 s (pip builds in an isolated env: it
needs setuptools>=77 from the package index or its cache)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, src = tmp_path_factory.mktemp("wheel"), tmp_path_factory.mktemp("src")
    # from a copy: setuptools writes build/lib and *.egg-info beside the sources
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("homelab", "recipes"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
                   check=True, timeout=300)
    (found,) = out.glob("homelab-*.whl")
    return found


def shipped_files() -> list[str]:
    """What recipes/ holds: README.md today, the app recipes (*.yaml) as they are added."""
    names = sorted(p.name for p in (ROOT / "recipes").iterdir() if p.suffix in (".yaml", ".md"))
    assert "README.md" in names
    return names


def test_the_wheel_carries_every_recipe(wheel: Path) -> None:
    inside = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in shipped_files() if f"homelab/recipes/{n}" not in inside]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert "homelab/recipes_dir.py" in inside and "homelab/tui/app.tcss" in inside


def test_an_installed_wheel_finds_its_recipes(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    # away from the checkout, with only the installed copy importable
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(site)}
    probe = "from homelab.recipes_dir import shipped_recipes_dir as d; import homelab; print(d()); print(homelab.__file__)"
    out = subprocess.run([sys.executable, "-c", probe],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=True)
    recipes, package = out.stdout.split()
    assert Path(package).is_relative_to(site) and Path(recipes) == site / "homelab" / "recipes"
    assert sorted(p.name for p in Path(recipes).iterdir()) == shipped_files()
