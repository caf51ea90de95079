"""Step for layer 1 (mesh): the WireGuard network between all machines."""
from __future__ import annotations

from homelab.tui.wizard.fields import Answers, Field, ListField
from homelab.tui.wizard.step import WizardStep
from homelab.tui.wizard.steps.compute import machine_choices
from homelab.tui.wizard.yaml_text import Entry

ENABLED = Field("enabled", "Join all machines in a WireGuard mesh", kind="bool", default=True, wizard_only=True)


class MeshStep(WizardStep):
    section = "mesh"
    title = "mesh"
    intro = ("A private WireGuard network joins every machine, at home or in the cloud. Machines at a "
             "public address or DNS name are dialled there; private addresses count as behind NAT. "
             "List nodes only to say otherwise (endpoint: auto = the address homelab uses).")
    comment = "the WireGuard mesh between every machine"
    fields = (
        ENABLED,
        Field("cidr", "Mesh address range (CIDR)", default="10.100.0.0/24",
              comment="Private range the mesh addresses come from; each machine keeps its address."),
        Field("port", "WireGuard UDP port", kind="int", default="51820",
              comment="UDP port every node listens on (opened in the firewall where peers connect in)."),
        ListField(
            "nodes", "Nodes (optional; default: every machine)",
            (
                Field("name", "machine name", placeholder="pi-1", width=16, pick_from=machine_choices,
                      pick_one=True, pick_title="Pick the machine of this node (one)"),
                Field("endpoint", "endpoint (auto, address; empty: NAT)", placeholder="auto", width=40),
            ),
            comment="Which machines others can dial (endpoint), and which sit behind NAT (no endpoint).",
            add_label="add a node",
        ),
    )

    def entries(self, answers: Answers) -> tuple[Entry, ...]:
        if not answers.get("enabled", True):
            return ()
        return super().entries(answers)


STEP = MeshStep()
