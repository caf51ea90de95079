"""The firewall: one nftables table of our own, rendered as text (pure).

Inbound is denied by default; allowed are established traffic, loopback, ICMP, DHCPv6
replies, sshd, and whatever the layers claimed for this host (`homelab/claims.py`): the
WireGuard port on nodes that take inbound mesh peers, everything arriving on the mesh
interface, 80/443 on ingress hosts, the config's extra `allow` rules.

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
from dataclasses import dataclass

from homelab.claims import Claims, OpenPort, TrustInterface
from homelab.provision.guard import NFT_LIVE

TABLE = "inet homelab"
LIVE_FILE = NFT_LIVE
DOCKER_BRIDGES = ("docker0", "br-*")  # default bridge and compose networks


@dataclass(frozen=True)
class FirewallSpec:
    """Everything the rule set of one host depends on."""

    host: str
    ssh_ports: tuple[int, ...]
    open_ports: tuple[OpenPort, ...] = ()  # every layer's port claims for this host, in run order
    trusted: tuple[str, ...] = ()  # interfaces whose traffic is accepted (the mesh's)


def firewall_spec(host: str, ssh_ports: tuple[int, ...], claims: Claims) -> FirewallSpec:
    """The rule set of `host` from the claims: no layer's config is read here, only what each
    layer declared it needs (validated where it was declared)."""
    trusted = tuple(dict.fromkeys(c.interface for c in claims.of(TrustInterface, host)))
    return FirewallSpec(host=host, ssh_ports=tuple(sorted(set(ssh_ports))),
                        open_ports=tuple(claims.of(OpenPort, host)), trusted=trusted)


def _ports(ports: list[str]) -> str:
    return ports[0] if len(ports) == 1 else "{ " + ", ".join(ports) + " }"


def _source(source: str | None) -> str:
    if source is None:
        return ""
    family = "ip6" if ipaddress.ip_network(source).version == 6 else "ip"
    return f"{family} saddr {source} "


def _grouped(claims: tuple[OpenPort, ...]) -> list[tuple[OpenPort, list[str]]]:
    """Neighbouring claims that differ only in the port share one rule (`tcp dport { 80, 443 }`)."""
    out: list[tuple[OpenPort, list[str]]] = []
    for c in claims:
        if out and (out[-1][0].proto, out[-1][0].source, out[-1][0].why, out[-1][0].forwarded) == \
                (c.proto, c.source, c.why, c.forwarded):
            out[-1][1].append(c.ports)
        else:
            out.append((c, [c.ports]))
    return out


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
    for claim, ports in _grouped(spec.open_ports):
        note = f'comment "{claim.why or claim.owner}"'
        input_rules.append(f"{_source(claim.source)}{claim.proto} dport {_ports(ports)} accept {note}")
        if claim.forwarded:
            published.append(f"{_source(claim.source)}meta l4proto {claim.proto} ct original proto-dst "
                             f"{_ports(ports)} accept {note}")
    for iface in spec.trusted:
        input_rules.append(f'iifname "{iface}" accept comment "mesh"')
    published.append("drop")
    trusted = ['"lo"', *(f'"{b}"' for b in DOCKER_BRIDGES)]
    trusted += [f'"{iface}"' for iface in spec.trusted]
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
