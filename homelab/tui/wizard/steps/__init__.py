"""The wizard's steps, one module per layer, in layer order.

Adding the step for a later layer (storage, ingress, apps, links) is one module here plus
one line in STEPS. A step shows only when the config parser for its section is built.
"""
from __future__ import annotations

from homelab.tui.wizard.step import WizardStep
from homelab.tui.wizard.steps import billing, compute, mesh, permissions, privilege

STEPS: tuple[WizardStep, ...] = (
    billing.STEP,
    privilege.STEP,
    mesh.STEP,
    permissions.STEP,
    compute.STEP,
)


def active_steps() -> list[WizardStep]:
    """Steps whose layer exists (its section has a parser), in layer order -1 .. 7."""
    return sorted((s for s in STEPS if s.available()), key=lambda s: s.layer)
