"""All built layers together on real hosts: billing, privilege, compute, mesh, permissions.

The layers are each proven on their own elsewhere; this proves they compose: one apply
converges three machines (Debian 13 and 12) with one apt transaction per host, a second
changes nothing, every monitor is OK (or a WARN the lab explains), the mesh carries traffic
through the firewall, and homelab logs in as the operator user afterwards (root login is off).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from homelab.lab.demo import render_lab_config
from tests.e2e.util import homelab, state_of

pytestmark = pytest.mark.lab

HOSTS = ["h1", "h2", "h4"]  # h4 is Debian 12 in the default session lab


APT_RUNS = "grep -c '^Start-Date' /var/log/apt/history.log 2>/dev/null || true"  # one entry per install


def apt_runs(lab) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {h: int(lab.run(h, APT_RUNS, check=True).stdout.strip() or 0) for h in HOSTS}


@pytest.fixture(scope="module")
def apt_before(lab) -> dict[str, int]:  # type: ignore[no-untyped-def]
    lab.reset(*HOSTS)
    return apt_runs(lab)


@pytest.fixture(scope="module")
def applied(lab, apt_before: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("full")
    cfg = tmp / "full.yaml"
    cfg.write_text(render_lab_config(lab.inventory(), hosts=HOSTS) + """\
billing:
  budget: 20
mesh:
  nodes:
    - {name: h1, endpoint: auto}
    - {name: h2, endpoint: auto}
    - {name: h4}
permissions:
  users:
    - name: ops
      sudo: true
  revert_after: 30
""")
    out = homelab("apply", str(cfg), "--yes", "--accept-new-host-keys",
                  env={"XDG_STATE_HOME": str(tmp / "xdg")})
    assert out.returncode == 0, out.stdout + out.stderr
    return cfg


def test_a_cold_converge_runs_apt_once_per_host(applied: Path, apt_before: dict[str, int], lab) -> None:  # type: ignore[no-untyped-def]
    """Every layer's packages (compute's base, the mesh's, the permissions') are package claims,
    installed by ONE apt transaction per host: apt's own history on each host says so."""
    after = apt_runs(lab)
    assert {h: after[h] - apt_before[h] for h in HOSTS} == {h: 1 for h in HOSTS}, (apt_before, after)


def test_second_apply_and_plan_change_nothing(applied: Path) -> None:
    again = homelab("apply", str(applied), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "apply ok: 0 change(s)" in again.stderr and "done " not in again.stdout
    for host in HOSTS:
        assert f"connected {host} (ops@" in again.stderr  # root login is off: homelab is ops now
    assert homelab("plan", str(applied)).returncode == 0


def test_every_monitor_is_ok(applied: Path) -> None:
    out = homelab("status", str(applied), "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["layers"]) == {"billing", "privilege", "compute", "mesh", "permissions"}
    bad = [m for ms in doc["layers"].values() for m in ms if m["health"] not in ("OK", "WARN")]
    assert not bad, bad
    warns = [m for ms in doc["layers"].values() for m in ms if m["health"] == "WARN"]
    # the lab masks apt's timers (so no background apt run grabs the dpkg lock mid-test);
    # that is the only thing allowed to warn here
    assert all("apt-daily" in m["reason"] for m in warns), warns
    pairs = [m for m in doc["layers"]["mesh"] if "->" in m["subject"]]
    assert len(pairs) == 6 and all(m["health"] == "OK" for m in pairs)


def test_mesh_traffic_passes_the_firewall(applied: Path, lab) -> None:  # type: ignore[no-untyped-def]
    addresses = state_of(applied)["sections"]["mesh"]["addresses"]
    for src in HOSTS:
        for dst in HOSTS:
            if src != dst:
                # root and the lab's admin are refused now: only the people the config names
                argv = [a.replace("root@", "ops@") for a in lab.ssh_argv(src)]
                ping = subprocess.run([*argv, f"sudo -n ping -c3 -i0.3 -W2 {addresses[dst]}"], capture_output=True,
                                      text=True, timeout=60, stdin=subprocess.DEVNULL)
                assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}{ping.stderr}"
    assert lab.run("h1", "true", user="admin").returncode != 0
    # root's ssh login is refused too (lab.run itself would enter the host's namespaces instead)
    root = subprocess.run([*lab.ssh_argv("h1"), "true"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert root.returncode == 255, root.stderr


def test_noop_apply_of_the_whole_stack_is_one_connection_and_one_command_per_host(applied: Path) -> None:
    """The no-op budget (issue 13): one SSH connection and at most two remote commands per host
    for every built layer together. Counted, not timed (times are bench/noop_apply.py's)."""
    from homelab.config import load_config
    from homelab.engine import Engine
    from homelab.events import HostConnected, LayerPlanned, RunFinished
    from homelab.layers.base import RunOptions
    from homelab.transport import SshTransport

    class Counting(SshTransport):  # the engine's injected seam: count what it opens
        def __init__(self) -> None:
            self.connects: list[str] = []
            self.sessions: dict[str, object] = {}

        def connect(self, target, pinned, accept_new, use_agent):  # type: ignore[no-untyped-def]
            self.connects.append(target.name)
            session, key = super().connect(target, pinned, accept_new, use_agent)
            self.sessions[target.name] = session
            return session, key

        def run_ops(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise AssertionError("a no-op apply runs no operations")

    transport = Counting()
    engine = Engine(load_config(applied), RunOptions(yes=True), transport=transport)
    events = list(engine.apply())
    done = [e for e in events if isinstance(e, RunFinished)][-1]
    assert done.ok and done.changes == 0, done
    assert all(e.plan.empty for e in events if isinstance(e, LayerPlanned))
    assert sorted(transport.connects) == sorted(HOSTS)  # one connection per host, no second login
    assert len([e for e in events if isinstance(e, HostConnected)]) == len(HOSTS)
    per_host = {name: s.commands for name, s in transport.sessions.items()}  # type: ignore[attr-defined]
    assert all(n <= 2 for n in per_host.values()), per_host
    assert per_host == {name: 1 for name in HOSTS}  # today: exactly one batched probe script per host
    assert engine.remote_commands == len(HOSTS)
