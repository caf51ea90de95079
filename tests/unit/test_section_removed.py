"""Taking a whole layer's section out of the config stops homelab managing that layer: nothing
it made is undone (taking `permissions:` out must never reopen root login; taking `storage:`
out leaves disks mounted and backups running). Apps are the one exception: with `apps:` gone,
the apps state records are still removed like apps deleted from the list (stopped, data kept)."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config import load_config
from homelab.layers.apps.layer import AppsLayer
from homelab.layers.base import Layer, RunContext
from homelab.layers.ingress.layer import IngressLayer
from homelab.layers.mesh.layer import MeshLayer
from homelab.layers.permissions.layer import PermissionsLayer
from homelab.layers.storage.layer import StorageLayer
from homelab.state import State

MACHINES_ONLY = """\
version: 1
compute:
  machines:
    - {name: a, address: 10.0.0.1}
"""


def _ctx(tmp_path: Path, state: State | None = None) -> RunContext:
    path = tmp_path / "c.yaml"
    path.write_text(MACHINES_ONLY)
    return RunContext(load_config(path), state or State(tmp_path / "c.state.json"), command="plan")


@pytest.mark.parametrize("layer", [MeshLayer(), PermissionsLayer(), StorageLayer(), IngressLayer()],
                         ids=lambda layer: layer.name)
def test_a_layer_whose_section_is_gone_is_left_alone(tmp_path: Path, layer: Layer) -> None:
    state = State(tmp_path / "c.state.json")
    state.section(layer.name)["hosts"] = {"a": ["something it made"]}  # what it made before
    assert not layer.enabled(_ctx(tmp_path, state))  # skipped: no probe, no change, nothing undone


def test_apps_are_removed_when_their_section_is_gone(tmp_path: Path) -> None:
    state = State(tmp_path / "c.state.json")
    assert not AppsLayer().enabled(_ctx(tmp_path, state))
    state.section("apps")["hosts"] = {"a": ["cal"]}  # an apply deployed app cal on a
    ctx = _ctx(tmp_path, state)
    assert AppsLayer().enabled(ctx)
    assert AppsLayer()._on(ctx, "a") == ([], ["cal"])  # no app wanted there; cal is to be removed
