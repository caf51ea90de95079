"""Layer 2, permissions: the glue between the engine and the pure diff (plan.py).

I/O here is small: reading the operator's public key (observe) and recording in state who
homelab logs in as (after_apply). Everything on hosts happens through the operations the
diff returns; the guarded ones confirm themselves through a new login (confirm.py).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping

from homelab.config.permissions import PermissionsConfig, check_public_key
from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.permissions.monitors import host_monitors
from homelab.layers.permissions.plan import HostInputs, HostPlan, plan_host
from homelab.layers.permissions.probes import parse_host, permission_probes
from homelab.model import Change, LayerPlan, Monitor
from homelab.probe import ProbeResult

log = logging.getLogger("homelab")


def read_public_key(private_key_path: str) -> str | None:
    """The operator's public key line: the .pub beside the key, else derived from the key."""
    path = Path(os.path.expanduser(private_key_path))
    pub = path.with_name(path.name + ".pub")
    try:
        line = " ".join(pub.read_text().split())
        if check_public_key(line) is None:
            return line
    except OSError:
        pass
    try:
        from homelab.ssh import load_private_key

        key = load_private_key(str(path))
    except HomelabError:
        return None
    return f"{key.get_name()} {key.get_base64()} homelab-operator"


def _applied(change: Change, applied: list[Change]) -> bool:
    return any(c is change for c in applied)


class PermissionsLayer(Layer):
    name: ClassVar[str] = "permissions"

    def __init__(self) -> None:
        self._plans: dict[str, HostPlan] = {}  # per host, from the last diff (after_apply reads it)

    def config(self, ctx: RunContext) -> PermissionsConfig:
        return ctx.config.get("permissions") or PermissionsConfig()

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("permissions") is not None

    def contribute_hosts(self, ctx: RunContext) -> None:
        """Log in the way this layer left each host (even if the section is gone now: the
        hosts still refuse root)."""
        known = ctx.state.data.get("hosts", {})
        for name, target in list(ctx.hosts.items()):
            info = known.get(name, {})
            user, port = info.get("login_user"), info.get("login_port")
            if user or port:
                ctx.hosts[name] = dataclasses.replace(target, user=user or target.user, port=port or target.port)

    def _managed(self, ctx: RunContext, host: str) -> list[str]:
        hosts = ctx.state.section(self.name).get("hosts", {})
        return list(hosts.get(host, {}).get("users", []))

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, str]:
        cfg = self.config(ctx)
        names = [u.name for u in cfg.users] + self._managed(ctx, host.name) + ["root"]
        return permission_probes(names)

    def _key_path(self, ctx: RunContext, target: HostTarget) -> str | None:
        if target.key_path:
            return target.key_path
        path = os.path.expanduser(ctx.config.privilege.ssh_key)
        return path if os.path.exists(path) else None

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        keys: dict[str, str | None] = {}
        for target in self.targets(ctx):
            path = self._key_path(ctx, target)
            keys[target.name] = read_public_key(path) if path else None
        return Observed(hosts=probed, api={"operator_keys": keys})

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        cfg = self.config(ctx)
        keys: dict[str, Any] = (observed.api or {}).get("operator_keys", {})
        changes: list[Change] = []
        same: list[str] = []
        warnings: list[str] = []
        self._plans.clear()
        for target in self.targets(ctx):
            inp = HostInputs(
                host=target.name, address=target.address, port=target.port, user=target.user,
                key_path=self._key_path(ctx, target), use_agent=ctx.config.privilege.use_agent,
                host_key=ctx.state.data.get("hosts", {}).get(target.name, {}).get("host_key", ""),
                operator_key=keys.get(target.name), managed=tuple(self._managed(ctx, target.name)),
                claims=ctx.config.claims,
            )
            hp = plan_host(cfg, inp, parse_host(observed.hosts.get(target.name)))
            self._plans[target.name] = hp
            changes += hp.changes
            same += hp.unchanged
            warnings += hp.warnings
        return LayerPlan(self.name, tuple(changes), tuple(same), tuple(warnings))

    def after_apply(self, ctx: RunContext, plan: LayerPlan, applied: list[Change]) -> None:
        hosts_state = ctx.state.section(self.name).setdefault("hosts", {})
        for host, hp in self._plans.items():
            removed = {name for name, change in hp.removals if _applied(change, applied)}
            hosts_state.setdefault(host, {})["users"] = sorted(set(hp.managed) - removed)
            # switch only once the operator user and the sshd drop-in are in place
            if hp.login is None or not all(_applied(c, applied) for c in hp.switch_after) or host not in ctx.hosts:
                continue
            target = ctx.hosts[host]
            ctx.state.update_host(host, login_user=hp.login.user, login_port=hp.login.port)
            ctx.hosts[host] = dataclasses.replace(target, user=hp.login.user, port=hp.login.port,
                                                  key_path=hp.login.key_path or target.key_path)
            if (target.user, target.port) != (hp.login.user, hp.login.port):
                log.info("%s: homelab logs in as %s (port %d) from now on", host, hp.login.user, hp.login.port)

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        cfg = self.config(ctx)
        out: list[Monitor] = []
        for name in sorted(ctx.hosts):
            out += host_monitors(name, cfg, parse_host(observed.hosts.get(name)), ctx.hosts[name].user,
                                 ctx.failed_hosts.get(name))
        return out
