"""Layer 3, compute: adopted machines and Hetzner Cloud servers, and the base every one gets.

Adopted machines come from `compute.machines`. Cloud servers (`compute.hetzner.servers`)
become hosts once they exist: from state at the start of a run, or right after apply created
them (the engine connects to hosts added during apply). A server this apply creates gets its
base (packages, timezone, hostname) planned in the same plan, so one apply converges. So does
a server an earlier apply made that state does not record yet (still booting when this run
started): the plan waits until it is up (boot.py), then the same apply configures it.
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Iterator, Mapping

from homelab.claims import NeedsVolume
from homelab.config.hetzner import HetznerConfig
from homelab.events import Event
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.compute.boot import plan_waits, start_failures
from homelab.layers.compute.base_os import base_monitors, base_probes, diff_base, parse_facts
from homelab.layers.compute.packages import HostPackages, host_packages
from homelab.layers.compute.hetzner import (
    LAYER, STATE_KEY, apply_server_change, diff_servers, host_target, server_name,
)
from homelab.layers.compute.volumes import apply_volume_change, devices, diff_volumes
from homelab.model import Change, Health, LayerPlan, Monitor
from homelab.outputs import HostFacts
from homelab.probe import AnyProbe, ProbeResult


def operator_key_path(ctx: RunContext, explicit: str | None) -> str | None:
    """The key a machine is reached with: its own `key`, else the operator key if it exists."""
    if explicit:
        return os.path.expanduser(explicit)
    path = os.path.expanduser(ctx.config.privilege.ssh_key)
    return path if os.path.exists(path) else None


class ComputeLayer(Layer):
    name: ClassVar[str] = "compute"

    def __init__(self) -> None:
        self._api: Any = None  # one HcloudApi per run (a layer instance lives for one run)
        self._listed: list[Any] | None = None
        self._volumes: list[Any] = []  # our volumes, as the last observe listed them

    # ------------------------------------------------------------- hetzner ---
    @staticmethod
    def _hetzner(ctx: RunContext) -> HetznerConfig | None:
        hz: HetznerConfig | None = ctx.config.compute.hetzner
        return hz

    def api(self, ctx: RunContext) -> Any:
        if self._api is None:
            from homelab.providers.hcloud_api import open_api  # lazy: no hcloud without cloud servers

            hz = self._hetzner(ctx)
            assert hz is not None
            self._api = open_api(ctx.secret(ctx.config.privilege.token_source), ctx.options.api_endpoint,
                                 hz.api_endpoint)
        return self._api

    def _list_servers(self, ctx: RunContext, fresh: bool = False) -> list[Any]:
        hz = self._hetzner(ctx)
        if hz is None:
            return []
        if self._listed is None or fresh:
            self._listed = self.api(ctx).list_servers(hz.selector())
        return self._listed

    # ---------------------------------------------------------------- layer ---
    def enabled(self, ctx: RunContext) -> bool:
        return bool(ctx.config.compute.machines) or self._hetzner(ctx) is not None

    def contribute_hosts(self, ctx: RunContext) -> None:
        for m in ctx.config.machines:  # as configured; the engine applies a recorded login (LoginAs)
            ctx.add_host(HostTarget(m.name, m.address, m.port, m.user, operator_key_path(ctx, m.key), ipv6=m.ipv6))
            known = ctx.state.host(m.name)
            if known.get("os"):  # what the last run saw, until this run's probe says again
                ctx.outputs.publish(HostFacts(m.name, known["os"], known.get("arch", "")))
        hz = self._hetzner(ctx)
        if hz is None:
            return
        known = ctx.state.section(LAYER).setdefault(STATE_KEY, {})
        if any(s.name not in known for s in hz.servers):
            # a server state does not record may exist anyway (an earlier create hit its deadline,
            # or the run stopped): it is not a host yet; the plan waits until it is up (boot.py),
            # unless it will not come up by waiting (powered off ...): then its host fails now
            compute_runs = not ctx.options.layers or self.name in ctx.options.layers
            ctx.failed_hosts.update(start_failures(hz, self._list_servers(ctx), known, compute_runs))
        for want in hz.servers:
            info = known.get(want.name)
            if info and info.get("ipv4"):
                ctx.add_host(host_target(ctx, want.name, info["ipv4"], operator_key_path(ctx, None), info.get("ipv6")))

    @staticmethod
    def _packages(ctx: RunContext, host: str) -> HostPackages:
        return host_packages(ctx.config.compute.base.packages, ctx.config.claims, host)

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, AnyProbe]:
        return base_probes(self._packages(ctx, host.name), host.name)

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        for name, results in probed.items():  # facts go to state (saved only by apply)
            facts = parse_facts(results.get("compute.facts"))
            if facts is not None:
                ctx.state.update_host(name, os=f"{facts.os_id} {facts.os_version}", arch=facts.arch)
                ctx.outputs.publish(HostFacts(name, f"{facts.os_id} {facts.os_version}", facts.arch))
        hz = self._hetzner(ctx)
        if hz is None:
            return Observed(hosts=probed, api=None)
        servers = self._list_servers(ctx, fresh=True)
        volumes = self.api(ctx).list_volumes(hz.selector())
        ctx.outputs.publish(devices(volumes, {s.name: s for s in servers}))  # storage mounts them
        self._volumes = volumes
        return Observed(hosts=probed, api=servers)

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        changes: list[Change] = []
        same: list[str] = []
        warnings: list[str] = []
        blocked: list[str] = []
        unplanned: tuple[str, ...] = ()
        hz = self._hetzner(ctx)
        if hz is not None:
            known = ctx.state.section(LAYER).get(STATE_KEY, {})
            sd = diff_servers(hz, observed.api or [], known)
            vd = diff_volumes(hz, ctx.config.claims.of(NeedsVolume), self._volumes,
                              {s.name: s for s in observed.api or []})
            changes += sd.changes + vd.changes  # in this order: a volume's server exists first
            same += sd.same + vd.same
            warnings += sd.warnings + vd.warnings
            blocked += sd.blocked + vd.blocked
            # servers an earlier apply made that are not hosts of this run yet: wait for them
            waits = plan_waits(hz, observed.api or [], ctx.hosts, ctx.failed_hosts)
            changes += waits.changes
            unplanned = waits.failed
            for name in sd.creates + waits.names:  # new servers: their whole base, in this same apply
                c, _ = diff_base(name, ctx.config.compute.base, None, self._packages(ctx, name))
                changes += c
        for host in self.targets(ctx):
            c, s = diff_base(host.name, ctx.config.compute.base, observed.hosts.get(host.name),
                             self._packages(ctx, host.name))
            changes += c
            same += s
        return LayerPlan(self.name, tuple(changes), tuple(same), tuple(warnings), tuple(blocked),
                         unplanned=unplanned)

    def apply_change(self, ctx: RunContext, change: Change) -> Iterator[Event]:
        hz = self._hetzner(ctx)
        assert hz is not None, "only cloud server and volume changes are applied by the layer itself"
        if change.ops[0].name.endswith("_volume"):
            yield from apply_volume_change(ctx, self.api(ctx), hz, change)
            return
        yield from apply_server_change(ctx, self.api(ctx), hz, change, operator_key_path(ctx, None))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        out: list[Monitor] = []
        hz = self._hetzner(ctx)
        if hz is not None:
            listed = {s.name: s for s in observed.api or []}
            for want in hz.servers:
                have = listed.get(want.name)
                if have is None:
                    out.append(Monitor(LAYER, want.name, "cloud server", Health.FAIL, "does not exist (apply creates it)"))
                else:
                    ok = have.status == "running" and have.type == want.type
                    out.append(Monitor(LAYER, want.name, "cloud server", Health.OK if ok else Health.WARN,
                                       f"{have.type} in {have.location}, {have.status}, {have.ipv4}"
                                       + ("" if have.type == want.type else f", config says {want.type}")))
        for name in sorted(ctx.hosts):
            out += base_monitors(name, ctx.config.compute.base, observed.hosts.get(name),
                                 ctx.failed_hosts.get(name), self._packages(ctx, name))
        return out


__all__ = ["ComputeLayer", "operator_key_path", "server_name"]
