"""shipped_recipes_dir(): the frozen bundle first, then an installed wheel, then a checkout."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab import recipes_dir
from homelab.errors import HomelabError

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_finds_the_top_level_recipes() -> None:
    found = recipes_dir.shipped_recipes_dir()
    assert found == ROOT / "recipes"
    assert (found / "README.md").is_file()


def test_lookup_order_is_bundle_then_wheel_then_checkout(tmp_path: Path) -> None:
    package = tmp_path / "site" / "homelab"
    assert recipes_dir.candidate_dirs(package, "/tmp/_MEI1") == [
        Path("/tmp/_MEI1/homelab/recipes"), package / "recipes", tmp_path / "site" / "recipes"]
    assert recipes_dir.candidate_dirs(package, None) == [package / "recipes", tmp_path / "site" / "recipes"]


def test_the_frozen_bundle_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "homelab" / "recipes").mkdir(parents=True)
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert recipes_dir.shipped_recipes_dir() == tmp_path / "homelab" / "recipes"


def test_missing_recipes_name_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recipes_dir, "_PACKAGE", tmp_path / "site" / "homelab")
    with pytest.raises(HomelabError, match="recipes are missing") as err:
        recipes_dir.shipped_recipes_dir()
    assert str(tmp_path / "site" / "homelab" / "recipes") in err.value.message
    assert str(tmp_path / "site" / "recipes") in err.value.message
