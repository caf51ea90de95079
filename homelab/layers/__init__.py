"""The layers, and the order a run walks them in.

Numbers are the model's (-1 billing ... 7 integration) and plan/status show layers in that
order. The *run* order differs in one place, on purpose: compute (3) runs right after
privilege (0), because the mesh (1) and permissions (2) configure machines that compute
must first create. Walking 1 and 2 before their hosts exist would need a second apply to
converge, which we promise never to need.
"""
from __future__ import annotations

import importlib

from homelab.layers.base import Layer

# (module, class) per layer; a missing module means the layer is not built yet.
_LAYER_CLASSES = [
    ("homelab.layers.billing", "BillingLayer"),
    ("homelab.layers.privilege", "PrivilegeLayer"),
    ("homelab.layers.compute", "ComputeLayer"),
    ("homelab.layers.mesh", "MeshLayer"),
    ("homelab.layers.permissions", "PermissionsLayer"),
]

RUN_ORDER = ["billing", "privilege", "compute", "mesh", "permissions", "storage", "ingress", "apps", "links"]


def all_layers() -> list[Layer]:
    """Instances of every built layer, in run order."""
    layers: list[Layer] = []
    for modname, clsname in _LAYER_CLASSES:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        layers.append(getattr(mod, clsname)())
    return sorted(layers, key=lambda layer: RUN_ORDER.index(layer.name))


def display_order(layers: list[Layer]) -> list[Layer]:
    return sorted(layers, key=lambda layer: layer.number)
