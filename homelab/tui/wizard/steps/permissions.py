"""Step for layer 2 (permissions): the people who may log in, with their SSH keys."""
from __future__ import annotations

from homelab.tui.wizard.fields import Field, ListField
from homelab.tui.wizard.step import WizardStep


class PermissionsStep(WizardStep):
    section = "permissions"
    title = "users"
    intro = ("People who log in to every machine: a name, an SSH public key, sudo or not. Root and "
             "password logins are switched off; homelab logs in as the first user with sudo, with its "
             "own key (privilege), which it adds to that user by itself.")
    comment = "who may log in"
    fields = (
        ListField(
            "users", "Operator users",
            (
                Field("name", "name", placeholder="alice", width=12),
                Field("key", "ssh public key (optional for you)", path="keys",
                      one_item_list=True, placeholder="ssh-ed25519 AAAA… alice@laptop", width=44),
                Field("sudo", "sudo", kind="bool", default=True, width=10),
            ),
            comment="People who may log in to every machine.",
            add_label="add a user",
        ),
    )


STEP = PermissionsStep()
