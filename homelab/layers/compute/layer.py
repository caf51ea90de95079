"""Layer 3, compute: adopted machines (and, with compute.hetzner, cloud servers) + their base."""
from __future__ import annotations

import os
from typing import ClassVar, Mapping

from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.compute.base_os import base_monitors, base_probes, diff_base, parse_facts
from homelab.model import Change, LayerPlan, Monitor
from homelab.probe import ProbeResult


def operator_key_path(ctx: RunContext, explicit: str | None) -> str | None:
    """The key a machine is reached with: its own `key`, else the operator key if it exists."""
    if explicit:
        return os.path.expanduser(explicit)
    path = os.path.expanduser(ctx.config.privilege.ssh_key)
    return path if os.path.exists(path) else None


class ComputeLayer(Layer):
    number: ClassVar[int] = 3
    name: ClassVar[str] = "compute"
    title: ClassVar[str] = "compute"

    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.config.compute.machines) or ctx.config.compute.hetzner is not None

    def contribute_hosts(self, ctx: RunContext) -> None:
        for m in ctx.config.machines:
            ctx.add_host(HostTarget(m.name, m.address, m.port, m.user, operator_key_path(ctx, m.key)))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, str]:
        return base_probes(ctx.config.compute.base.packages)

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        for name, results in probed.items():  # facts go to state (saved only by apply)
            facts = parse_facts(results.get("compute.facts"))
            if facts is not None:
                ctx.state.update_host(name, os=f"{facts.os_id} {facts.os_version}", arch=facts.arch)
        return Observed(hosts=probed)

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        changes: list[Change] = []
        same: list[str] = []
        for host in self.targets(ctx):
            c, s = diff_base(host.name, ctx.config.compute.base, observed.hosts.get(host.name))
            changes += c
            same += s
        return LayerPlan(self.name, tuple(changes), tuple(same))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        out: list[Monitor] = []
        for name in sorted(ctx.hosts):
            out += base_monitors(name, ctx.config.compute.base, observed.hosts.get(name),
                                 ctx.failed_hosts.get(name))
        return out
