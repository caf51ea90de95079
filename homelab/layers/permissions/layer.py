"""Layer 2, permissions: the glue between the engine and the pure diff (plan.py).

I/O here is small: the operator's public key (an output of layer 0, or a machine's own key
file). Everything on hosts happens through the operations the diff returns; the guarded ones
confirm themselves through a new login. What must hold after an apply travels with the plan:
the users this layer manages (state writes) and how homelab logs in from then on (a `LoginAs`
output on the change that makes it true, applied by the engine) — the layer object keeps
nothing between phases.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, ClassVar, Mapping

from homelab.config.permissions import PermissionsConfig
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.permissions.monitors import host_monitors
from homelab.layers.permissions.plan import HostInputs, HostPlan, plan_host
from homelab.layers.permissions.probes import parse_host, permission_probes
from homelab.model import Change, LayerPlan, Monitor, StateWrite
from homelab.outputs import LoginAs, LoginCandidate, OperatorKey
from homelab.probe import AnyProbe, ProbeResult
from homelab.providers.keys import read_public_key

log = logging.getLogger("homelab")


def plan_effects(host: str, hp: HostPlan, key_path: str | None) -> tuple[list[Change], list[StateWrite], list[Any]]:
    """Pure: the host's changes with what each makes true attached, plus what holds anyway.

    - the users list in state is what the plan manages; a removal, once applied, drops its user;
    - homelab switches its login once the operator user and the sshd drop-in are in place: the
      `LoginAs` rides on the last of those changes (a host's changes run in order and stop at
      the first failure), or holds at once when neither needs changing.
    """
    removal_of = {id(change): name for name, change in hp.removals}
    login = None
    if hp.login is not None:
        login = LoginAs(host, hp.login.user, hp.login.port, hp.login.key_path or key_path)
    last_switch = id(hp.switch_after[-1]) if hp.switch_after else None
    changes: list[Change] = []
    for change in hp.changes:
        if id(change) in removal_of:
            change = dataclasses.replace(change, writes=change.writes + (
                StateWrite(("hosts", host, "users"), removal_of[id(change)], discard=True),))
        if login is not None and id(change) == last_switch:
            change = dataclasses.replace(change, outputs=change.outputs + (login,))
        changes.append(change)
    writes = [StateWrite(("hosts", host, "users"), sorted(hp.managed))]
    outputs = [login] if login is not None and last_switch is None else []
    return changes, writes, outputs


class PermissionsLayer(Layer):
    name: ClassVar[str] = "permissions"

    def config(self, ctx: RunContext) -> PermissionsConfig:
        return ctx.config.get("permissions") or PermissionsConfig()

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("permissions") is not None

    def contribute_hosts(self, ctx: RunContext) -> None:
        """The login this layer makes on every host, for the engine to try when the recorded one
        and the configured one are refused (it hardened sshd, then the run died before saying so)."""
        cfg = ctx.config.get("permissions")
        operator = cfg.operator if cfg is not None else None
        if operator is not None:
            for name in ctx.hosts:
                ctx.outputs.publish(LoginCandidate(name, operator.name, cfg.sshd.port))

    def _managed(self, ctx: RunContext, host: str) -> list[str]:
        hosts = ctx.state.section(self.name).get("hosts", {})
        return list(hosts.get(host, {}).get("users", []))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, AnyProbe]:
        cfg = self.config(ctx)
        names = [u.name for u in cfg.users] + self._managed(ctx, host.name) + ["root"]
        return permission_probes(names, pending=ctx.command == "status")

    def _key_path(self, ctx: RunContext, target: HostTarget) -> str | None:
        if target.key_path:
            return target.key_path
        path = os.path.expanduser(ctx.config.privilege.ssh_key)
        return path if os.path.exists(path) else None

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        operator = ctx.outputs.get(OperatorKey)
        default = os.path.expanduser(ctx.config.privilege.ssh_key)
        keys: dict[str, str | None] = {}
        for target in self.targets(ctx):
            path = self._key_path(ctx, target)
            if operator is not None and path == operator.private_path:
                keys[target.name] = operator.public
            else:  # a machine with a key of its own (`compute.machines[].key`)
                keys[target.name] = read_public_key(path) if path else None
            if path == default and keys[target.name] is None and operator is not None:
                keys[target.name] = operator.public
        return Observed(hosts=probed, api={"operator_keys": keys})

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        cfg = self.config(ctx)
        keys: dict[str, Any] = (observed.api or {}).get("operator_keys", {})
        changes: list[Change] = []
        same: list[str] = []
        warnings: list[str] = []
        notes: list[str] = []
        writes: list[StateWrite] = []
        outputs: list[Any] = []
        for target in self.targets(ctx):
            inp = HostInputs(
                host=target.name, address=target.address, port=target.port, user=target.user,
                key_path=self._key_path(ctx, target), use_agent=ctx.config.privilege.use_agent,
                host_key=ctx.state.data.get("hosts", {}).get(target.name, {}).get("host_key", ""),
                operator_key=keys.get(target.name), managed=tuple(self._managed(ctx, target.name)),
                claims=ctx.config.claims,
            )
            hp = plan_host(cfg, inp, parse_host(observed.hosts.get(target.name)))
            c, w, o = plan_effects(target.name, hp, target.key_path)
            changes += c
            writes += w
            outputs += o
            same += hp.unchanged
            warnings += hp.warnings
            notes += hp.notes
        return LayerPlan(self.name, tuple(changes), tuple(same), tuple(warnings), notes=tuple(notes),
                         writes=tuple(writes), outputs=tuple(outputs))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        cfg = self.config(ctx)
        out: list[Monitor] = []
        for name in sorted(ctx.hosts):
            out += host_monitors(name, cfg, parse_host(observed.hosts.get(name)), ctx.hosts[name].user,
                                 ctx.failed_hosts.get(name))
        return out
