"""Shared builders for the mesh unit tests (fake keys, nodes, converged node facts), and their own checks."""
from __future__ import annotations

import base64
from typing import Sequence

from homelab.layers.mesh.keys import is_key
from homelab.layers.mesh.probes import NodeFacts, Running
from homelab.layers.mesh.render import Interface, render_wg_conf
from homelab.layers.mesh.topology import Node, peers_of


def fake_key(i: int) -> str:
    """A well-formed (not secret, not real) WireGuard key: 32 bytes of `i`."""
    return base64.b64encode(bytes([i]) * 32).decode()


KEYS = {name: fake_key(i + 1) for i, name in enumerate(
    ["h1", "h2", "h3", "h4", "web-1", "web-2", "pi-1", "nas", "a", "b", "c"])}


def node(name: str, address: str, endpoint: str | None, port: int = 51820, public: bool | None = None) -> Node:
    return Node(name, address, endpoint, port, endpoint is not None if public is None else public)


def interface_for(me: Node, nodes: Sequence[Node], relay: str | None, psk: bool = False,
                  keepalive: int = 25) -> Interface:
    peers = tuple(peers_of(me, nodes, keepalive, relay))
    return Interface("wg0", me, 24, peers, {p.name: KEYS[p.name] for p in peers}, psk, relay == me.name)


def converged(me: Node, nodes: Sequence[Node], relay: str | None, psk: bool = False, now: int = 1_000_000,
              handshake_age: int = 5, rtt: float | None = 0.5, kernel: str = "none") -> NodeFacts:
    """Facts of a node that runs exactly what the planner wants."""
    iface = interface_for(me, nodes, relay, psk)
    psk_hash = {p.name: f"h-{min(me.name, p.name)}-{max(me.name, p.name)}" for p in iface.peers} if psk else {}
    running = Running(
        now=now, public_key=KEYS[me.name], listen_port=me.port, forwarding=iface.forward,
        implementation="kernel" if kernel != "none" else "userspace",
        handshakes={KEYS[p.name]: now - handshake_age for p in iface.peers},
        allowed_ips={KEYS[p.name]: tuple(sorted(p.allowed_ips)) for p in iface.peers},
        psk_hashes={KEYS[p.name]: (psk_hash[p.name] if psk else "-") for p in iface.peers})
    pkgs = {"wireguard-tools", "iputils-ping"} | ({"wireguard-go"} if kernel == "none" else set())
    return NodeFacts(packages=frozenset(pkgs), kernel=kernel, key_mode="600", public_key=KEYS[me.name],
                     unit_enabled=True, unit_active=True, conf=render_wg_conf(iface), psk_hashes=psk_hash,
                     pings={n.address: rtt for n in nodes if n.name != me.name}, running=running, now=now)


def test_fake_keys_are_well_formed() -> None:
    assert all(is_key(k) for k in KEYS.values())
    assert not is_key("not a key") and not is_key(KEYS["h1"][:-1] + "x")
