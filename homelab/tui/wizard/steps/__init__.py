"""The wizard's steps, one module per layer, in run order.

Which steps exist comes from the layer registry (`homelab/registry.py`: each built layer
names its step), so adding a layer's step is its module plus the `step=` of its entry.
"""
from __future__ import annotations

from homelab import registry
from homelab.tui.wizard.step import WizardStep


def active_steps() -> list[WizardStep]:
    """The built layers' steps in run order: machines (compute, 3) come before the mesh (1) and
    permissions (2) that name them, as the engine walks them, so no step asks about a machine
    the person has not given yet."""
    return [registry.resolve(e.step) for e in registry.built() if e.step]
