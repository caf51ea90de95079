"""Layer 1, mesh: a WireGuard network between every node, NAT'd home machines included.

Glue only: probes and their parsing (probes.py), addresses (allocate.py), who peers with whom
(topology.py), wg0.conf (render.py), the diff (plan.py) and the monitors (monitors.py) are
pure modules with their own tests. State section "mesh" keeps what must outlive a run:
`addresses` (stable per node), `public_keys` (public only) and `rotate` (nodes whose key
`homelab mesh rotate` asked to replace, with the key being replaced).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Mapping

from homelab.config.mesh import AUTO, MeshConfig
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.mesh.allocate import allocate_addresses
from homelab.layers.mesh.monitors import mesh_monitors
from homelab.layers.mesh.plan import MeshInputs, plan_mesh
from homelab.layers.mesh.probes import NodeFacts, mesh_probes, parse_facts, parse_psk_reads, psk_read_probe
from homelab.layers.mesh.topology import Node, resolve_nodes
from homelab.model import LayerPlan, Monitor
from homelab.outputs import MeshAddresses
from homelab.probe import AnyProbe, ProbeResult
from homelab.secrets import Secret


@dataclass(frozen=True)
class MeshView:
    """What observe found, for diff and status."""

    nodes: tuple[Node, ...]
    facts: Mapping[str, NodeFacts]  # reachable nodes only
    keys: Mapping[str, str]  # node -> public key (probed now, else last known)
    rotate: frozenset[str]
    psk_values: Mapping[tuple[str, str], Secret] = field(default_factory=dict)


def _address_hint(facts: NodeFacts) -> str | None:
    """The mesh address a node's own wg0.conf carries (used only when state lost it)."""
    for line in (facts.conf or "").splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "address":
            return value.strip().split("/")[0].split(",")[0].strip()
    return None


class MeshLayer(Layer):
    name: ClassVar[str] = "mesh"

    @staticmethod
    def _config(ctx: RunContext) -> MeshConfig:
        cfg = ctx.config.get("mesh")
        assert isinstance(cfg, MeshConfig)
        return cfg

    def contribute_hosts(self, ctx: RunContext) -> None:
        """Publish the addresses state keeps, so layers above have them even in a run that does
        not walk the mesh (`--layer apps`); observe publishes the fresh ones."""
        if ctx.config.get("mesh") is not None:
            kept = ctx.state.section(self.name).get("addresses", {})
            if kept:
                ctx.outputs.publish(MeshAddresses(dict(kept), self._config(ctx).interface))

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("mesh") is not None

    def _nodes(self, ctx: RunContext, hints: Mapping[str, str] | None = None) -> tuple[Node, ...]:
        cfg = self._config(ctx)
        members = cfg.members
        kept = ctx.state.section(self.name).get("addresses", {})
        addresses = allocate_addresses(cfg.cidr, [m.name for m in members], kept, hints)
        connect = {name: host.address for name, host in ctx.hosts.items()}
        return tuple(resolve_nodes([(m.name, m.endpoint, m.port) for m in members], addresses, connect, AUTO))

    def targets(self, ctx: RunContext) -> list[HostTarget]:
        names = {m.name for m in self._config(ctx).members}
        return [h for h in ctx.live_hosts() if h.name in names]

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, AnyProbe]:
        cfg = self._config(ctx)
        if cfg.node(host.name) is None:
            return {}
        others = [n.address for n in self._nodes(ctx) if n.name != host.name] if ctx.command == "status" else []
        return mesh_probes(cfg.interface, others)

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        cfg = self._config(ctx)
        names = [m.name for m in cfg.members]
        facts = {n: parse_facts(probed[n]) for n in names if "mesh.host" in probed.get(n, {})}
        hints = {n: h for n, f in facts.items() if (h := _address_hint(f))}
        nodes = self._nodes(ctx, hints)
        section = ctx.state.section(self.name)
        section["addresses"] = {n.name: n.address for n in nodes}
        ctx.outputs.publish(MeshAddresses({n.name: n.address for n in nodes}, cfg.interface))
        keys = {n: k for n, k in section.get("public_keys", {}).items() if n in names}
        keys.update({n: f.public_key for n, f in facts.items() if f.public_key})
        section["public_keys"] = keys
        # a rotation is done once the node shows a key other than the one it asked to replace
        rotate = {n: old for n, old in section.get("rotate", {}).items()
                  if n in names and not (n in facts and facts[n].public_key not in (None, old))}
        if rotate:
            section["rotate"] = rotate
        else:
            section.pop("rotate", None)
        psk_values: dict[tuple[str, str], Secret] = {}
        for owner in facts:
            for peer, value in parse_psk_reads(probed[owner].get("mesh.psk_read")).items():
                secret = Secret(value)
                ctx.add_secret(secret)  # redacted from every event, log line and worker output
                psk_values[(owner, peer)] = secret
        return Observed(hosts=probed, api=MeshView(nodes, facts, keys, frozenset(rotate), psk_values))

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        cfg = self._config(ctx)
        view: MeshView = observed.api
        result = plan_mesh(MeshInputs(
            interface=cfg.interface, prefixlen=cfg.network.prefixlen, nodes=view.nodes, relay=cfg.relay_node(),
            keepalive=cfg.keepalive, preshared_keys=cfg.preshared_keys, facts=view.facts, known_keys=view.keys,
            rotate=view.rotate, psk_values=view.psk_values))
        # the next pass reads the preshared keys a node made, to copy them to its peers
        followup = {owner: {"mesh.psk_read": psk_read_probe(peers)} for owner, peers in result.psk_reads.items()}
        return dataclasses.replace(result.plan, followup_probes=followup)

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        cfg = self._config(ctx)
        view: MeshView = observed.api
        return mesh_monitors(view.nodes, view.facts, view.keys, cfg.relay_node(), cfg.interface,
                             cfg.handshake_timeout, ctx.failed_hosts)
