"""A host the engine works on: where it is, how to log in, what we know about it."""
from __future__ import annotations

from dataclasses import dataclass

LOCAL = "local"  # the address that means "the machine homelab runs on" (no SSH; homelab/local.py)
# how long apply keeps trying a machine it met before that does not answer (RunOptions.wait_for_hosts):
# a Raspberry Pi reboots in about a minute, a cloud server in less
WAIT_FOR_HOSTS_S = 120.0


@dataclass(frozen=True)
class HostTarget:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_path: str | None = None  # private key file; None: ssh-agent keys only
    kind: str = "machine"  # machine (adopted) | server (hetzner)
    ipv6: str | None = None  # a public IPv6 address besides `address` (config `ipv6:`): AAAA records

    @property
    def sudo(self) -> bool:
        return self.user != "root"

    @property
    def local(self) -> bool:
        return self.address == LOCAL

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"
