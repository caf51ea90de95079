"""Stable mesh addresses: pure, so the promise "adding a node never renumbers others" is testable.

An address, once given, is kept (in state) for as long as its node stays in the mesh and
inside the CIDR. New nodes take the lowest free host address, in config order. A node that
state forgot but whose wg0.conf still carries a free in-range address keeps that one, so a
lost state file does not renumber a running mesh.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Mapping, Sequence


def _valid(raw: str | None, net: IPv4Network) -> IPv4Address | None:
    if not raw:
        return None
    try:
        ip = IPv4Address(raw)
    except ValueError:
        return None
    if ip not in net or ip in (net.network_address, net.broadcast_address):
        return None
    return ip


def allocate_addresses(cidr: str, nodes: Sequence[str], kept: Mapping[str, str],
                       hints: Mapping[str, str] | None = None) -> dict[str, str]:
    """node -> address for every node. `kept`: what state recorded; `hints`: addresses seen on
    the nodes themselves (used only for nodes state does not know). Nodes not listed lose theirs."""
    net = IPv4Network(cidr)
    taken: dict[IPv4Address, str] = {}
    out: dict[str, str] = {}
    for source in (kept, hints or {}):
        for name in nodes:
            if name in out:
                continue
            ip = _valid(source.get(name), net)
            if ip is not None and ip not in taken:
                taken[ip] = name
                out[name] = str(ip)
    free = (ip for ip in net.hosts() if ip not in taken)
    for name in nodes:
        if name not in out:
            ip = next(free, None)
            if ip is None:
                raise ValueError(f"{cidr} has no free address left for {name}")
            taken[ip] = name
            out[name] = str(ip)
    return {name: out[name] for name in nodes}
