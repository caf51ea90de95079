"""The wizard's steps, one module per layer, in layer order.

Which steps exist comes from the layer registry (`homelab/registry.py`: each built layer
names its step), so adding a layer's step is its module plus the `step=` of its entry.
"""
from __future__ import annotations

from homelab import registry
from homelab.tui.wizard.step import WizardStep


def active_steps() -> list[WizardStep]:
    """The built layers' steps, in layer order -1 .. 7."""
    return [registry.resolve(e.step) for e in registry.by_number(registry.built()) if e.step]
