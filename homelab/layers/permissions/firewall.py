"""The firewall: one nftables table of our own, rendered as text (pure).

Inbound is denied by default; allowed are established traffic, loopback, ICMP, DHCPv6
replies, sshd, the WireGuard port on nodes that take inbound mesh peers, everything arriving
on the mesh interface, 80/443 on ingress hosts and the config's extra `allow` rules.

Loading is atomic: the file creates our table (a no-op if it exists), deletes it and defines
it again, and `nft -f` runs all of that as ONE kernel transaction, so there is never a moment
without rules or with half of them. We never `flush ruleset`: Docker's and anyone else's
tables stay untouched.

Docker: published container ports are DNAT-ed in Docker's prerouting and then *forwarded*,
so they never pass an input chain; that is how Docker bypasses ufw. Docker's answer is the
iptables DOCKER-USER chain. We get the same effect without touching Docker's tables: our
table has its own `forward` chain, and netfilter runs every base chain on a hook, so a drop
here is final even if Docker's chains accept. The chain looks only at NEW connections that
were DNAT-ed (`ct status dnat`, i.e. published ports) coming in from outside (not from
loopback, Docker's bridges or the mesh) and lets through just the ports this host allows,
matched on the port the client asked for (`ct original proto-dst`), before Docker rewrote it.
Everything else Docker does (outbound traffic, container to container) is untouched, and so is
mesh traffic a relay node forwards (wg0 -> wg0: not DNAT-ed). To publish an app, allow its
port here (or put it behind ingress) — exactly as for a host port.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from homelab.config.permissions import AllowRule, PermissionsConfig

TABLE = "inet homelab"
LIVE_FILE = "/etc/homelab/firewall.nft"
INTERFACE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")  # a Linux interface name (IFNAMSIZ - 1)
DOCKER_BRIDGES = ("docker0", "br-*")  # default bridge and compose networks


@dataclass(frozen=True)
class FirewallSpec:
    """Everything the rule set of one host depends on."""

    host: str
    ssh_ports: tuple[int, ...]
    wireguard_port: int | None = None
    mesh_interface: str | None = None
    ingress: bool = False
    allow: tuple[AllowRule, ...] = ()


def mesh_view(mesh: Any, host: str) -> tuple[int | None, str | None, list[str]]:
    """(WireGuard port to open, mesh interface to trust, warnings) from the mesh config.

    The mesh section belongs to layer 1; we only read `port`/`port_of(host)`, `interface`,
    `node(host)` (membership) and `accepts_inbound(host)`, defensively, and refuse values that
    could not be a port or an interface name (they go into the nft file).
    """
    if mesh is None:
        return None, None, []
    node = getattr(mesh, "node", None)
    if callable(node) and node(host) is None:
        return None, None, []  # not a mesh member: no wg interface, nothing to open
    warnings: list[str] = []
    port_of = getattr(mesh, "port_of", None)
    port = port_of(host) if callable(port_of) else getattr(mesh, "port", None)
    if not (isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535):
        if port is not None:
            warnings.append(f"{host}: mesh port {port!r} is not a port; not opened in the firewall")
        port = None
    iface = getattr(mesh, "interface", None)
    if not (isinstance(iface, str) and INTERFACE.match(iface)):
        if iface is not None:
            warnings.append(f"{host}: mesh interface {iface!r} is not an interface name; not trusted")
        iface = None
    accepts = getattr(mesh, "accepts_inbound", None)
    inbound = bool(accepts(host)) if callable(accepts) else True
    return (port if inbound else None), iface, warnings


def firewall_spec(host: str, cfg: PermissionsConfig, ssh_ports: tuple[int, ...], mesh: Any = None
                  ) -> tuple[FirewallSpec, list[str]]:
    port, iface, warnings = mesh_view(mesh, host)
    spec = FirewallSpec(host=host, ssh_ports=tuple(sorted(set(ssh_ports))), wireguard_port=port, mesh_interface=iface,
                        ingress=host in cfg.firewall.ingress_hosts, allow=cfg.firewall.allow)
    return spec, warnings


def _ports(ports: list[str]) -> str:
    return ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"


def _source(rule: AllowRule) -> str:
    if rule.source is None:
        return ""
    family = "ip6" if ipaddress.ip_network(rule.source).version == 6 else "ip"
    return f"{family} saddr {rule.source} "


def render_nft_ruleset(spec: FirewallSpec) -> str:
    """The whole file loaded with `nft -f` (after `nft -c -f`)."""
    ssh = [str(p) for p in spec.ssh_ports]
    input_rules = [
        "ct state established,related accept",
        "ct state invalid drop",
        'iifname "lo" accept',
        "meta l4proto icmp accept",
        "meta l4proto ipv6-icmp accept",
        'ip6 saddr fe80::/10 udp dport 546 accept comment "DHCPv6 client"',
        f'tcp dport {_ports(ssh)} accept comment "sshd"',
    ]
    published: list[str] = []  # the same allowances for Docker-published ports
    if spec.wireguard_port:
        input_rules.append(f'udp dport {spec.wireguard_port} accept comment "WireGuard mesh"')
    if spec.mesh_interface:
        input_rules.append(f'iifname "{spec.mesh_interface}" accept comment "mesh"')
    if spec.ingress:
        input_rules.append('tcp dport { 80, 443 } accept comment "ingress"')
        input_rules.append('udp dport 443 accept comment "ingress HTTP/3"')
        published.append('meta l4proto tcp ct original proto-dst { 80, 443 } accept comment "ingress"')
        published.append('meta l4proto udp ct original proto-dst 443 accept comment "ingress HTTP/3"')
    for i, rule in enumerate(spec.allow):
        note = f'comment "allow[{i}]"'
        input_rules.append(f"{_source(rule)}{rule.proto} dport {rule.ports} accept {note}")
        published.append(f"{_source(rule)}meta l4proto {rule.proto} ct original proto-dst {rule.ports} accept {note}")
    published.append("drop")
    trusted = ['"lo"', *(f'"{b}"' for b in DOCKER_BRIDGES)]
    if spec.mesh_interface:
        trusted.append(f'"{spec.mesh_interface}"')
    lines = [
        "#!/usr/sbin/nft -f",
        f"# Firewall of {spec.host}. Managed by homelab (layer 2, permissions): edits are overwritten.",
        "# Loaded as one transaction: create (if missing), delete and define our table again.",
        "# Other tables (Docker's) are left alone.",
        f"table {TABLE} {{}}",
        f"delete table {TABLE}",
        f"table {TABLE} {{",
        "\tchain input {",
        "\t\ttype filter hook input priority filter; policy drop;",
        *(f"\t\t{r}" for r in input_rules),
        "\t}",
        "",
        "\t# Docker-published ports are forwarded, not input: new DNAT-ed connections from",
        "\t# outside must match an allowance below (by the port the client asked for).",
        "\tchain forward {",
        "\t\ttype filter hook forward priority filter; policy accept;",
        f"\t\tct state new ct status dnat iifname != {{ {', '.join(trusted)} }} jump published",
        "\t}",
        "",
        "\tchain published {",
        *(f"\t\t{r}" for r in published),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"
