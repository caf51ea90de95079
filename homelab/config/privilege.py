"""`privilege:` (layer 0): the operator's SSH key and where the cloud API token comes from."""
from __future__ import annotations

from dataclasses import dataclass

from homelab.config.reader import PATH, Section
from homelab.secrets import SecretRef

DEFAULT_KEY = "~/.ssh/id_ed25519"


@dataclass(frozen=True)
class PrivilegeConfig:
    ssh_key: str = DEFAULT_KEY  # operator private key (ed25519, OpenSSH format)
    generate_key: bool = False  # create ssh_key if it does not exist
    use_agent: bool = True  # also offer keys from ssh-agent
    hcloud_token: SecretRef | None = None  # None: env HCLOUD_TOKEN

    @property
    def token_source(self) -> SecretRef:
        """Where the Hetzner API token comes from (never the config file itself)."""
        return self.hcloud_token or SecretRef(env="HCLOUD_TOKEN")


def parse_privilege(sec: Section) -> PrivilegeConfig:
    key = sec.text("ssh_key", DEFAULT_KEY, pattern=PATH, hint="a path like ~/.ssh/id_ed25519")
    gen = sec.flag("generate_key", False)
    agent = sec.flag("use_agent", True)
    token = sec.secret_ref("hcloud_token")
    sec.done(["ssh_key", "generate_key", "use_agent", "hcloud_token"])
    return PrivilegeConfig(ssh_key=key or DEFAULT_KEY, generate_key=gen, use_agent=agent, hcloud_token=token)
