"""The mesh pane: one monitor per node (is WireGuard up, kernel or userspace) and one per
directed pair ("h1->h2": latest handshake age and ping RTT over the mesh). Pure.

A pair is FAIL when its handshake is older than `handshake_timeout` (default 180 s, the age
at which WireGuard itself drops a session) or when the ping over the mesh gets no reply.
The status probe pings before reading handshakes, so an idle but healthy link has just
renewed its handshake when it is read. A relayed pair (NAT'd to NAT'd) is judged by the
sender's handshake with the relay and the end-to-end ping.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from homelab.layers.mesh.probes import NodeFacts, unit_name
from homelab.layers.mesh.topology import Node, route_of
from homelab.model import Health, Monitor

LAYER = "mesh"


def node_monitor(node: Node, facts: NodeFacts | None, interface: str, unreachable: str | None) -> Monitor:
    n = node.name
    if facts is None:
        return Monitor(LAYER, n, "wireguard", Health.FAIL, f"not checked: {unreachable or 'not reachable'}")
    if "wireguard-tools" not in facts.packages:
        return Monitor(LAYER, n, "wireguard", Health.FAIL, "wireguard-tools is not installed (apply installs it)")
    if facts.running is None:
        return Monitor(LAYER, n, "wireguard", Health.FAIL,
                       f"{interface} is down ({unit_name(interface)} {'active' if facts.unit_active else 'inactive'})")
    boot = "starts at boot" if facts.unit_enabled else "NOT started at boot"
    health = Health.OK if facts.unit_enabled else Health.WARN
    return Monitor(LAYER, n, "wireguard", health, f"{interface} {node.address}, {facts.backend}, {boot}")


def pair_monitor(src: Node, dst: Node, facts: NodeFacts | None, keys: Mapping[str, str], relay: str | None,
                 timeout: int, unreachable: str | None) -> Monitor:
    subject = f"{src.name}->{dst.name}"
    via = route_of(src, dst, relay)
    hop = "" if via == dst.name else f" via {via}"
    if facts is None:
        return Monitor(LAYER, subject, "link", Health.UNKNOWN, f"not checked: {src.name} {unreachable or 'not reachable'}")
    run = facts.running
    if run is None:
        return Monitor(LAYER, subject, "link", Health.FAIL, f"{src.name} -> {dst.name}: {src.name}'s WireGuard is down")
    if via is None:
        return Monitor(LAYER, subject, "link", Health.FAIL, f"{src.name} -> {dst.name}: no relay between NAT'd nodes")
    key = keys.get(via)
    if key is None or key not in run.handshakes:
        return Monitor(LAYER, subject, "link", Health.FAIL,
                       f"{src.name} -> {dst.name}: {src.name} has no peer {via} (apply needed)")
    ts = run.handshakes[key]
    age = (run.now - ts) if ts else None
    rtt = facts.pings.get(dst.address)
    if age is None or age > timeout:
        since = "ever" if age is None else f"for {age} s"
        return Monitor(LAYER, subject, "link", Health.FAIL,
                       f"no handshake between {src.name} and {via} {since} (limit {timeout} s){hop}")
    if rtt is None:
        return Monitor(LAYER, subject, "link", Health.FAIL,
                       f"{src.name} gets no ping reply from {dst.name} ({dst.address}){hop}; handshake {age} s ago")
    return Monitor(LAYER, subject, "link", Health.OK, f"handshake {age} s ago, ping {rtt:.2f} ms{hop}")


def mesh_monitors(nodes: Sequence[Node], facts: Mapping[str, NodeFacts], keys: Mapping[str, str],
                  relay: str | None, interface: str, timeout: int, unreachable: Mapping[str, str]) -> list[Monitor]:
    out = [node_monitor(n, facts.get(n.name), interface, unreachable.get(n.name)) for n in nodes]
    for src in nodes:
        for dst in nodes:
            if src.name != dst.name:
                out.append(pair_monitor(src, dst, facts.get(src.name), keys, relay, timeout,
                                        unreachable.get(src.name)))
    return out
