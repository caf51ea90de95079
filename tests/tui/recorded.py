"""Recorded engine event streams for TUI tests: 3 hosts, the five built layers.

Shaped like the engine's real output (same event types, order and wording as a run on lab
hosts), with fixed timestamps so snapshots never depend on the clock.
"""
from __future__ import annotations

from homelab import registry
from homelab.events import (
    ChangeApplied, ChangeFailed, HostConnected, HostFailed, HostOutput, HostSummary, LayerFinished,
    LayerPlanned, LayerStarted, LayerStatus, Progress, RunFinished, RunStarted,
)
from homelab.model import Change, Health, LayerPlan, Monitor, Op
from homelab.tui.view_state import LayerInfo

T = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC: every monitor was "checked" then
HOSTS = ("h1", "h2", "h3")
RECORDED = {"billing", "privilege", "compute", "mesh", "permissions"}  # the layers these streams show
# run order and numbers come from the layer registry, as in a real run
RUN_ORDER = tuple(e.id for e in registry.entries() if e.id in RECORDED)
LAYERS = tuple(LayerInfo(e.id, e.number, e.title) for e in registry.by_number() if e.id in RECORDED)
NUMBERS = {info.name: info.number for info in LAYERS}
TITLES = {info.name: info.title for info in LAYERS}


def _connect() -> list[object]:
    return [HostConnected(h, f"admin@10.44.0.{i + 2}:22, 0.0{i + 4} s") for i, h in enumerate(HOSTS)]


def _start(layer: str) -> LayerStarted:
    return LayerStarted(layer, NUMBERS[layer], TITLES[layer])


def _m(layer: str, subject: str, name: str, health: Health, reason: str, dt: float = 0.0) -> Monitor:
    return Monitor(layer, subject, name, health, reason, T + dt)


# ------------------------------------------------------------------ status --
MONITORS: dict[str, tuple[Monitor, ...]] = {
    "billing": (_m("billing", "project", "monthly cost", Health.OK, "€0.00 of €20.00 budget (no cloud servers)"),),
    "privilege": (
        _m("privilege", "operator", "ssh key", Health.OK, "ed25519 key at ~/.ssh/id_ed25519"),
        _m("privilege", "operator", "hcloud token", Health.UNKNOWN, "not checked: no cloud servers configured"),
    ),
    "compute": tuple(m for h in HOSTS for m in (
        _m("compute", h, "reachable", Health.OK, "debian 13 amd64"),
        _m("compute", h, "hostname", Health.OK, f"is {h}"),
    )) + (_m("compute", "h3", "packages", Health.WARN, "2 security upgrades pending"),),
    "mesh": (
        _m("mesh", "h1<->h2", "handshake", Health.OK, "12 s ago, rtt 0.4 ms", 1),
        _m("mesh", "h1<->h3", "handshake", Health.FAIL, "no handshake for 312 s (h1, h3)", 1),
        _m("mesh", "h2<->h3", "handshake", Health.OK, "20 s ago, rtt 0.5 ms", 1),
    ),
    "permissions": tuple(m for h in HOSTS for m in (
        _m("permissions", h, "admin login", Health.OK, "admin logs in with its key"),
        _m("permissions", h, "root login", Health.OK, "refused"),
        _m("permissions", h, "firewall", Health.OK, "nftables active, 3 rules"),
    )),
}


def status_events(monitors: dict[str, tuple[Monitor, ...]] | None = None) -> list[object]:
    monitors = MONITORS if monitors is None else monitors
    out: list[object] = [RunStarted("status", RUN_ORDER, HOSTS), *_connect()]
    for layer in RUN_ORDER:
        out += [_start(layer), LayerPlanned(layer, LayerPlan(layer)), LayerStatus(layer, monitors.get(layer, ())),
                LayerFinished(layer, 0, 0)]
    out.append(RunFinished("status", True, 0, tuple(HostSummary(h, "ok") for h in HOSTS)))
    return out


def all_ok_monitors() -> dict[str, tuple[Monitor, ...]]:
    """The same monitors, everything healthy and checked 60 s later (a live refresh)."""
    import dataclasses

    return {layer: tuple(dataclasses.replace(m, health=Health.OK, reason="fine now", checked_at=m.checked_at + 60)
                         for m in ms) for layer, ms in MONITORS.items()}


# -------------------------------------------------------------------- plan --
HOSTNAME = tuple(Change("compute", h, "update", f"set hostname {h}", (Op("server.hostname", {"hostname": h}),), h,
                        detail=(f"old: debian", f"new: {h}")) for h in HOSTS)
PACKAGES = (Change("compute", "h3", "update", "install packages: jq, rsync", (Op("apt.packages", {}),), "h3"),)
MESH = tuple(Change("mesh", h, "create", f"WireGuard wg0 at 10.100.0.{i + 1}", (Op("files.put", {}),), h)
             for i, h in enumerate(HOSTS))
PERMS = tuple(Change("permissions", h, "update", "sshd: no root login, no passwords", (Op("files.put", {}),), h)
              for h in HOSTS)

PLANS = {
    "billing": LayerPlan("billing", unchanged=("no cloud servers: €0.00/month",)),
    "privilege": LayerPlan("privilege", unchanged=("operator key ~/.ssh/id_ed25519 exists",)),
    "compute": LayerPlan("compute", HOSTNAME + PACKAGES, unchanged=tuple(f"{h}: timezone is UTC" for h in HOSTS)),
    "mesh": LayerPlan("mesh", MESH),
    "permissions": LayerPlan("permissions", PERMS, warnings=("h2: password login is on now; it will be off",)),
}


def plan_events(plans: dict[str, LayerPlan] | None = None) -> list[object]:
    plans = PLANS if plans is None else plans
    out: list[object] = [RunStarted("plan", RUN_ORDER, HOSTS), *_connect()]
    for layer in RUN_ORDER:
        out += [_start(layer), LayerPlanned(layer, plans[layer]), LayerFinished(layer, 0, 0)]
    total = sum(len(p.changes) for p in plans.values())
    out.append(RunFinished("plan", True, total, tuple(HostSummary(h, "ok") for h in HOSTS)))
    return out


NOTHING_PLANNED = {layer: LayerPlan(layer, unchanged=("as configured",)) for layer in RUN_ORDER}


# ------------------------------------------------------------------- apply --
def apply_events(fail_h3: bool = True) -> list[object]:
    """Everything applies on h1 and h2; on h3 the mesh fails (with a hint) when `fail_h3`."""
    out: list[object] = [RunStarted("apply", RUN_ORDER, HOSTS), *_connect()]
    for layer in ("billing", "privilege"):
        out += [_start(layer), LayerPlanned(layer, PLANS[layer]), LayerFinished(layer, 0, 0)]
    out += [_start("compute"), LayerPlanned("compute", PLANS["compute"])]
    for c in HOSTNAME:
        out += [HostOutput(c.target, "compute", f"hostname {c.target}"), ChangeApplied(c)]
    out += [HostOutput("h3", "compute", "Reading package lists..."),
            HostOutput("h3", "compute", "Setting up jq (1.7.1-3) ..."), ChangeApplied(PACKAGES[0]),
            LayerFinished("compute", 4, 0)]
    out += [_start("mesh"), LayerPlanned("mesh", PLANS["mesh"]),
            Progress("mesh", "exchanging public keys between 3 nodes")]
    for c in MESH[:2]:
        out += [HostOutput(c.target, "mesh", "wg-quick up wg0"), ChangeApplied(c)]
    if fail_h3:
        out += [HostOutput("h3", "mesh", "RTNETLINK answers: Operation not supported"),
                HostFailed("h3", "mesh", "wg-quick@wg0 failed to start", "see the output above and the run log"),
                ChangeFailed(MESH[2], "wg-quick@wg0 failed to start", "see the run log; the next apply retries it"),
                LayerFinished("mesh", 2, 1)]
    else:
        out += [HostOutput("h3", "mesh", "wg-quick up wg0"), ChangeApplied(MESH[2]), LayerFinished("mesh", 3, 0)]
    out += [_start("permissions"), LayerPlanned("permissions", PLANS["permissions"])]
    for c in PERMS[:2]:
        out += [ChangeApplied(c)]
    if fail_h3:
        out += [ChangeFailed(PERMS[2], "h3 failed earlier: wg-quick@wg0 failed to start", "fix that host and apply again"),
                LayerFinished("permissions", 2, 1)]
        summary = (HostSummary("h1", "changed", 3), HostSummary("h2", "changed", 3),
                   HostSummary("h3", "failed", 2, "wg-quick@wg0 failed to start"))
        out.append(RunFinished("apply", False, 8, summary, message="some hosts or changes failed"))
    else:
        out += [ChangeApplied(PERMS[2]), LayerFinished("permissions", 3, 0)]
        out.append(RunFinished("apply", True, 10, tuple(HostSummary(h, "changed", 3 + (h == "h3")) for h in HOSTS)))
    return out


def output_flood(lines: int) -> list[object]:
    """An apply that prints a lot (apt on a slow mirror): the TUI must coalesce it."""
    out: list[object] = [RunStarted("apply", ("compute",), ("h1",)), HostConnected("h1", "root@10.44.0.2:22, 0.04 s"),
                         _start("compute"), LayerPlanned("compute", LayerPlan("compute", PACKAGES))]
    out += [HostOutput("h1", "compute", f"line {i}") for i in range(lines)]
    out += [LayerFinished("compute", 1, 0), RunFinished("apply", True, 1, (HostSummary("h1", "changed", 1),))]
    return out


def unreachable(events: list[object], host: str, error: str, hint: str) -> list[object]:
    """The same run with `host` failing to connect (as the engine reports it)."""
    import dataclasses

    out: list[object] = []
    for e in events:
        if isinstance(e, HostConnected) and e.host == host:
            e = HostFailed(host, "connect", error, hint)
        elif isinstance(e, RunFinished):
            e = dataclasses.replace(e, ok=False, hosts=tuple(
                HostSummary(h.host, "unreachable", 0, error) if h.host == host else h for h in e.hosts))
        out.append(e)
    return out
