"""wg0.conf and the live-update script, as pure text (golden-tested per topology case).

No secret is ever rendered. The private key stays in /etc/wireguard/private.key on the node
and preshared keys in /etc/wireguard/psk/<peer>.psk; wg-quick loads them with `PostUp = wg
set ...` (the idiom of wg-quick(8)). So the file can be shipped, diffed and shown in a plan.

Peer changes on a running interface go through `wg syncconf`, which keeps the sessions of
unchanged peers. syncconf treats a missing PrivateKey as "set to zero", so the script adds it
back from the key file inside a pipe on the node; it never reaches an argument or the wire.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Mapping, Sequence

from homelab.layers.mesh.keys import PRIVATE_KEY, psk_path
from homelab.layers.mesh.topology import Node, Peer

HEADER = "# Managed by homelab (layer 1, mesh): the next apply overwrites changes made here."


@dataclass(frozen=True)
class Interface:
    """Everything that goes into one node's wg0.conf."""

    name: str  # wg0
    node: Node
    prefixlen: int  # of the mesh CIDR: the connected route covers every mesh address
    peers: tuple[Peer, ...]
    public_keys: Mapping[str, str]  # peer name -> public key
    preshared_keys: bool
    forward: bool  # this node relays NAT'd <-> NAT'd traffic


def _describe(peer: Peer) -> str:
    where = f"dialled at {peer.endpoint}" if peer.endpoint else "dials us (behind NAT)"
    via = f", relay for {', '.join(peer.relays)}" if peer.relays else ""
    return f"# {peer.name}: {where}{via}"


def render_wg_conf(iface: Interface) -> str:
    node = iface.node
    role = "public" if node.public else "behind NAT"
    lines = [
        HEADER,
        f"# {node.name} ({role}), mesh address {node.address}. Its private key never leaves this node:",
        f"# wg-quick loads it from {PRIVATE_KEY} once the interface exists.",
        "[Interface]",
        f"Address = {node.address}/{iface.prefixlen}",
        f"ListenPort = {node.port}",
        f"PostUp = wg set %i private-key {PRIVATE_KEY}",
    ]
    if iface.preshared_keys:
        lines += [f"PostUp = wg set %i peer {iface.public_keys[p.name]} preshared-key {psk_path(p.name)}"
                  for p in iface.peers]
    if iface.forward:
        lines.append("PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1")
    for peer in iface.peers:
        lines += ["", _describe(peer), "[Peer]", f"PublicKey = {iface.public_keys[peer.name]}"]
        if peer.endpoint:
            lines.append(f"Endpoint = {peer.endpoint}")
        lines.append(f"AllowedIPs = {', '.join(peer.allowed_ips)}")
        if peer.keepalive:
            lines.append(f"PersistentKeepalive = {peer.keepalive}")
    return "\n".join(lines) + "\n"


def render_sync_script(interface: str, peer_keys: Sequence[str], preshared_keys: bool,
                       psk_files: Mapping[str, str], forward: bool) -> str:
    """Apply wg0.conf to the running interface without dropping unchanged tunnels.

    `peer_keys`: public keys of the peers; `psk_files`: public key -> psk file (when enabled).
    """
    i = shlex.quote(interface)
    lines = [
        "set -e",
        f"stripped=$(wg-quick strip {i})",
        # the private key joins the config in a pipe, read by awk from its file
        f"printf '%s\\n' \"$stripped\" | awk -v keyfile={shlex.quote(PRIVATE_KEY)} "
        "'{ print } $0 == \"[Interface]\" { if ((getline key < keyfile) > 0) print \"PrivateKey = \" key }' "
        f"| wg syncconf {i} /dev/stdin",
    ]
    for pub in peer_keys:
        # syncconf leaves a peer's preshared key alone unless the config names one: set it
        # from its file, or clear it (/dev/null) when preshared keys are off
        src = psk_files[pub] if preshared_keys else "/dev/null"
        lines.append(f"wg set {i} peer {shlex.quote(pub)} preshared-key {shlex.quote(src)}")
    if forward:
        lines.append(f"sysctl -q -w net.ipv4.conf.{interface}.forwarding=1")
    return "\n".join(lines) + "\n"
