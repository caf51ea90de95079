"""The layers of a run, made from the registry (`homelab/registry.py`), in run order."""
from __future__ import annotations

from homelab import registry
from homelab.layers.base import Layer


def all_layers() -> list[Layer]:
    """A fresh instance of every built layer, in run order, whose number and title are its entry's."""
    out: list[Layer] = []
    for entry in registry.built():
        assert entry.layer is not None
        layer = registry.resolve(entry.layer)()
        assert layer.name == entry.id, f"{entry.layer}.name should be {entry.id!r}"
        out.append(layer)
    return out


def display_order(layers: list[Layer]) -> list[Layer]:
    return sorted(layers, key=lambda layer: layer.number)
