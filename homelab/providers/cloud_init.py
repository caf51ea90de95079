"""cloud-init user data for a new server: pre-seeded SSH host key. Pure.

cloud-init's cc_ssh module writes `ssh_keys` as the host keys before sshd first starts, so
the host key homelab generated (and pinned) is the one the server offers on the very first
connection: no trust-on-first-use. `ssh_genkeytypes: []` stops cloud-init from making
other key types next to it; `ssh_deletekeys` removes keys baked into the image.
The result holds a private key: it is sent to the API once and never logged or stored.
"""
from __future__ import annotations

from homelab.secrets import Secret


def render_user_data(host_private: Secret, host_public: str) -> Secret:
    private = host_private.reveal().strip("\n")
    indented = "\n".join("    " + line for line in private.splitlines())
    public = " ".join(host_public.split()[:2])
    text = ("#cloud-config\n"
            "ssh_deletekeys: true\n"
            "ssh_genkeytypes: []\n"
            "ssh_keys:\n"
            "  ed25519_private: |\n"
            f"{indented}\n"
            f"  ed25519_public: {public}\n")
    return Secret(text)
