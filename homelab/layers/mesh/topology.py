"""Who peers with whom, and which addresses each peer carries: pure, the heart of the mesh.

* Nodes with a public endpoint form a full mesh: each dials the others' endpoints.
* A node behind NAT cannot be dialled. It peers with every public node, dials them, and
  sends a keepalive every `keepalive` seconds so its router keeps the UDP mapping open.
  The public side has no endpoint for it and learns the current one from each handshake.
* Two NAT'd nodes can never reach each other directly. Their traffic goes through one
  public node, the relay: on a NAT'd node, the relay's AllowedIPs also carry the other NAT'd
  nodes' addresses, and the relay forwards wg0 -> wg0 (the only node that forwards).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Node:
    """A mesh member as the run sees it: endpoint resolved, address allocated."""

    name: str
    address: str  # mesh address, e.g. 10.100.0.1
    endpoint: str | None  # what others dial (IP or DNS name); None: behind NAT, or not known yet
    port: int
    public: bool  # others can dial it (a cloud server not created yet is public, endpoint unknown)

    def dial(self) -> str | None:
        """WireGuard's Endpoint value: host:port, IPv6 in brackets."""
        if self.endpoint is None:
            return None
        try:
            if ipaddress.ip_address(self.endpoint).version == 6:
                return f"[{self.endpoint}]:{self.port}"
        except ValueError:
            pass
        return f"{self.endpoint}:{self.port}"


@dataclass(frozen=True)
class Peer:
    """One [Peer] of a node's wg0.conf (public key filled in by the renderer's caller)."""

    name: str
    endpoint: str | None  # host:port to dial, None: wait for it to dial us
    allowed_ips: tuple[str, ...]
    keepalive: int | None
    relays: tuple[str, ...] = ()  # NAT'd nodes reached through this peer


def peers_of(me: Node, nodes: Sequence[Node], keepalive: int, relay: str | None) -> list[Peer]:
    """The peers of `me`, in the order of `nodes`."""
    natted = [n for n in nodes if not n.public and n.name != me.name]
    peers: list[Peer] = []
    for other in nodes:
        if other.name == me.name:
            continue
        if me.public:
            # public <-> public: both dial; public -> NAT'd: no endpoint, it dials us
            peers.append(Peer(other.name, other.dial(), (f"{other.address}/32",), None))
        elif other.public:
            via = tuple(n.name for n in natted) if other.name == relay else ()
            ips = (f"{other.address}/32", *(f"{n.address}/32" for n in natted if n.name in via))
            peers.append(Peer(other.name, other.dial(), ips, keepalive, via))
        # NAT'd -> NAT'd: no peer; the relay's AllowedIPs cover it
    return peers


def route_of(src: Node, dst: Node, relay: str | None) -> str | None:
    """The peer `src` uses to reach `dst`: dst itself, or the relay (None: unreachable)."""
    if src.public or dst.public:
        return dst.name
    return relay


def resolve_nodes(members: Sequence[tuple[str, str | None, int]], addresses: Mapping[str, str],
                  connect_addresses: Mapping[str, str], auto: str) -> list[Node]:
    """(name, endpoint-as-configured, port) -> Nodes; `auto` endpoints become the SSH address."""
    out: list[Node] = []
    for name, endpoint, port in members:
        public = endpoint is not None
        if endpoint == auto:
            endpoint = connect_addresses.get(name)  # a server not created yet: nobody dials it yet
        out.append(Node(name, addresses[name], endpoint, port, public))
    return out
