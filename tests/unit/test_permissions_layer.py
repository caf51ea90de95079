"""The layer glue: operator key reading, login switch in state and run context, managed users."""
from __future__ import annotations

from pathlib import Path

import paramiko

from homelab.hosts import HostTarget
from homelab.layers.base import Observed, RunContext
from homelab.layers.permissions import PermissionsLayer
from homelab.effects import take_effects
from homelab.providers.keys import read_public_key
from homelab.model import LayerPlan
from homelab.state import State
from test_permissions_fixtures import BASE, HOST_KEY, OPERATOR, config


def context(tmp_path: Path, text: str = BASE) -> RunContext:
    key = tmp_path / "id_ed25519"
    (tmp_path / "id_ed25519.pub").write_text(OPERATOR + "\n")
    key.write_text("not read: the .pub is enough\n")
    cfg = config(text.replace("compute:", f"privilege:\n  ssh_key: {key}\n  use_agent: false\ncompute:"))
    state = State(tmp_path / "c.state.json")
    ctx = RunContext(cfg, state)
    for m in cfg.machines:
        ctx.add_host(HostTarget(m.name, m.address, m.port, m.user, str(key)))
        state.update_host(m.name, host_key=HOST_KEY)
    return ctx


def test_read_public_key_from_pub_or_from_the_private_key(tmp_path: Path) -> None:
    priv = tmp_path / "k"
    rsa = paramiko.RSAKey.generate(2048)
    rsa.write_private_key_file(str(priv))
    assert read_public_key(str(priv)).split()[:2] == ["ssh-rsa", rsa.get_base64()]
    (tmp_path / "k.pub").write_text(OPERATOR + "\n")
    assert read_public_key(str(priv)) == OPERATOR
    assert read_public_key(str(tmp_path / "missing")) is None


def test_diff_uses_the_operator_key_and_pinned_host_key(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = PermissionsLayer()
    observed = layer.observe(ctx, {})
    assert observed.api["operator_keys"] == {"pi-1": OPERATOR, "web-1": OPERATOR}
    plan = layer.diff(ctx, Observed(hosts={}, api=observed.api))
    sshd = next(c for c in plan.changes if c.host == "web-1" and c.summary.startswith("sshd:"))
    assert sshd.ops[1].kwargs["spec"]["host_key"] == HOST_KEY
    assert sshd.ops[1].kwargs["spec"]["fallback"] == ["alice", "admin"]


def test_login_switches_only_when_user_and_sshd_are_in_place(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = PermissionsLayer()
    plan: LayerPlan = layer.diff(ctx, layer.observe(ctx, {}))
    web = [c for c in plan.changes if c.host == "web-1"]
    pi = [c for c in plan.changes if c.host == "pi-1"]
    # pi-1: its sshd change failed (rolled back); web-1: all applied
    take_effects(ctx, "permissions", plan, web + [c for c in pi if not c.summary.startswith("sshd:")])
    assert ctx.state.host("web-1")["login_user"] == "alice" and ctx.hosts["web-1"].user == "alice"
    assert "login_user" not in ctx.state.host("pi-1") and ctx.hosts["pi-1"].user == "root"
    assert ctx.state.section("permissions")["hosts"]["web-1"]["users"] == ["alice", "bob"]


def test_a_firewall_failure_after_sshd_still_switches(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = PermissionsLayer()
    plan = layer.diff(ctx, layer.observe(ctx, {}))
    web = [c for c in plan.changes if c.host == "web-1"]
    upto_sshd = web[:next(i for i, c in enumerate(web) if c.summary.startswith("sshd:")) + 1]
    take_effects(ctx, "permissions", plan, upto_sshd)
    assert ctx.hosts["web-1"].user == "alice"  # root login is off now: never go back to the old login


def test_removed_users_leave_state_once_removed(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.state.section("permissions")["hosts"] = {"web-1": {"users": ["alice", "bob", "carol"]}}
    layer = PermissionsLayer()
    assert "permissions.keys:carol" in layer.probes(ctx, ctx.hosts["web-1"])
    plan = layer.diff(ctx, layer.observe(ctx, {}))
    removal = next(c for c in plan.changes if c.summary.startswith("user carol:"))
    take_effects(ctx, "permissions", plan, [])
    assert ctx.state.section("permissions")["hosts"]["web-1"]["users"] == ["alice", "bob", "carol"]
    take_effects(ctx, "permissions", plan, [removal])
    assert ctx.state.section("permissions")["hosts"]["web-1"]["users"] == ["alice", "bob"]


def test_layer_is_enabled_by_its_section_only(tmp_path: Path) -> None:
    assert PermissionsLayer().enabled(context(tmp_path))
    no = context(tmp_path, BASE.split("permissions:")[0])
    assert not PermissionsLayer().enabled(no)
