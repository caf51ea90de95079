"""What a no-op costs on the host: checks only `status` reads are not run by plan and apply.

Measured in the lab (2 cores, 10 hosts): the mesh's pings (n*(n-1) through userspace
WireGuard) and apt's simulated upgrade were the largest shares of a no-op's remote CPU."""
from __future__ import annotations

from pathlib import Path

from homelab.config import load_config
from homelab.hosts import HostTarget
from homelab.layers.base import RunContext
from homelab.layers.mesh.layer import MeshLayer
from homelab.layers.permissions.layer import PermissionsLayer
from homelab.state import State

MESH = """\
version: 1
compute:
  machines:
    - {name: a, address: 10.0.0.1}
    - {name: b, address: 10.0.0.2}
    - {name: c, address: 10.0.0.3}
mesh:
  nodes:
    - {name: a, endpoint: auto}
    - {name: b, endpoint: auto}
    - {name: c, endpoint: auto}
"""


def _ctx(tmp_path: Path, command: str, text: str = MESH) -> RunContext:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return RunContext(load_config(path), State(tmp_path / "c.state.json"), command=command)


def test_mesh_pings_its_peers_only_for_status(tmp_path: Path) -> None:
    host = HostTarget("a", "10.0.0.1")
    status = MeshLayer().probes(_ctx(tmp_path, "status"), host)
    assert "ping -n -q -c 1" in status["mesh.ping"]
    assert status["mesh.ping"].count("10.100.0.") == 2  # the two other nodes
    for command in ("plan", "apply"):
        probes = MeshLayer().probes(_ctx(tmp_path, command), host)
        assert "mesh.ping" not in probes
        assert {"mesh.host", "mesh.conf", "mesh.wg"} <= set(probes)  # what the diff reads stays


PERMISSIONS = MESH.replace("mesh:\n", "permissions:\n  users:\n    - {name: ops, sudo: true}\nmesh:\n")


def test_pending_upgrades_are_simulated_only_for_status(tmp_path: Path) -> None:
    host = HostTarget("a", "10.0.0.1")
    status = PermissionsLayer().probes(_ctx(tmp_path, "status", PERMISSIONS), host)
    assert status["permissions.pending"].startswith("apt-get -s ")
    for command in ("plan", "apply"):
        probes = PermissionsLayer().probes(_ctx(tmp_path, command, PERMISSIONS), host)
        assert "permissions.pending" not in probes
        assert {"permissions.units", "permissions.guard", "permissions.keys:ops"} <= set(probes)


SHOW = """Id=a.timer
LoadState=loaded
UnitFileState=enabled
ActiveState=active

Id=gone.timer
LoadState=not-found
UnitFileState=
ActiveState=inactive

Id=m.timer
LoadState=masked
UnitFileState=masked
ActiveState=inactive
"""


def test_unit_states_ask_systemctl_once_and_read_like_is_enabled(tmp_path: Path) -> None:
    import os
    import subprocess

    from homelab.probe import ProbeResult, unit_states

    fake = tmp_path / "systemctl"  # a stand-in systemctl that prints what `show` prints
    (tmp_path / "show.txt").write_text(SHOW)
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path}/calls\ncat {tmp_path}/show.txt\n")
    fake.chmod(0o755)
    probe = unit_states(["a.timer", "gone.timer", "m.timer"])
    out = subprocess.run(["sh", "-c", probe.command], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert (tmp_path / "calls").read_text().count("\n") == 1  # one call for every unit
    assert probe.value(ProbeResult(0, out.stdout)) == {
        "a.timer": ("enabled", "active"), "gone.timer": ("not-found", "inactive"), "m.timer": ("masked", "inactive")}


def test_batched_questions_are_asked_once_and_each_asker_reads_its_items() -> None:
    from homelab.probe import ProbeResult, answer_batches, batch_groups, packages, parse_packages, unit_states

    groups = [{"a.pkgs": packages(["curl", "jq"]), "a.own": "echo a"},
              {"b.pkgs": packages(["jq", "nftables"], timeout=5), "b.units": unit_states(["x.timer"])},
              {"c.units": unit_states(["y.service"])}]
    batched, aliases = batch_groups(groups)
    assert batched[:1] == [{"a.own": "echo a"}]  # groups left with nothing batched are gone
    shared = batched[-1]
    assert set(shared) == {"host.packages", "host.units"}
    assert shared["host.packages"].command.count("dpkg-query") == 1  # type: ignore[union-attr]
    assert "curl jq nftables" in shared["host.packages"].command  # type: ignore[union-attr]
    assert "x.timer y.service" in shared["host.units"].command  # type: ignore[union-attr]
    assert aliases == {"a.pkgs": "host.packages", "b.pkgs": "host.packages", "b.units": "host.units",
                       "c.units": "host.units"}
    answer = ProbeResult(0, "curl ii  8.14\njq ii  1.7\nnftables un  \n")
    got = answer_batches({"host.packages": answer, "a.own": ProbeResult(0, "a")}, aliases)
    assert got["a.pkgs"] is answer and got["b.pkgs"] is answer and "b.units" not in got
    assert parse_packages(got["b.pkgs"], ["jq", "nftables"])["nftables"] is None


def test_docker_questions_run_side_by_side_and_beside_the_quick_reads() -> None:
    """Each batched question that may hang is a group of its own (groups run at the same time):
    on an app host, images then containers in one group were the no-op's longest path."""
    from homelab.probe import batch_groups, docker_containers, docker_images, packages

    groups = [{"apps.images": docker_images(["postgres:17"]), "apps.containers": docker_containers(["l"]),
               "apps.pkgs": packages(["docker.io"])},
              {"ingress.images": docker_images(["anubis:1"]), "ingress.containers": docker_containers(["l"])}]
    batched, aliases = batch_groups(groups)
    assert [sorted(g) for g in batched] == [["host.packages"], ["host.images"], ["host.containers"]]
    images = batched[1]["host.images"].command  # type: ignore[union-attr]
    assert "postgres:17" in images and "anubis:1" in images
    assert aliases["ingress.containers"] == aliases["apps.containers"] == "host.containers"


def test_a_host_of_the_lower_layers_asks_dpkg_and_systemctl_once(tmp_path: Path) -> None:
    """compute, the mesh and permissions each read packages and units: one dpkg-query and one
    systemctl show in the host's one script."""
    from homelab.layers.compute.layer import ComputeLayer
    from homelab.probe import batch_groups, render_probe_script

    ctx = _ctx(tmp_path, "apply", PERMISSIONS)
    host = HostTarget("a", "10.0.0.1")
    groups = [dict(layer.probes(ctx, host)) for layer in (ComputeLayer(), MeshLayer(), PermissionsLayer())]
    script, _ = render_probe_script(batch_groups(groups)[0])
    assert script.count("dpkg-query -W") == 1 and script.count("systemctl show") == 1
    assert "openssh-server" in script and "wireguard-tools" in script and "wg-quick@wg0" in script
