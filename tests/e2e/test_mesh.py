"""Issue 4 proof on real Debian hosts: the WireGuard mesh, one node behind a real NAT.

h1 and h2 sit on the lab bridge with endpoints; h3 is moved behind the lab's masquerading
router (`lab.move_behind_nat`), so nothing on the bridge can open a connection to it, as
with a Pi at home. The whole journey runs through the CLI like a person would: apply, apply
again, status, a node's WireGuard stopped, `homelab mesh rotate`, a reboot, and a search for every
private and preshared key of every node in the state file, the run logs and the output.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.demo import write_lab_config
from tests.e2e.util import homelab, state_of

pytestmark = pytest.mark.lab

NODES = ("h1", "h2", "h3")
PAIRS = [(a, b) for a in NODES for b in NODES if a != b]


class Journey:
    """The config, every CLI output and every secret seen on the nodes, across the tests."""

    def __init__(self, lab: Any, tmp: Path) -> None:
        self.lab = lab
        self.tmp = tmp
        self.env = {"XDG_STATE_HOME": str(tmp / "xdg")}  # run logs of this journey only
        self.outputs: list[str] = []
        self.secrets: set[str] = set()
        self.config = write_lab_config(tmp / "mesh.yaml", lab.inventory(), hosts=list(NODES))
        with self.config.open("a") as f:
            f.write("mesh:\n"
                    "  preshared_keys: true\n"
                    "  nodes:\n"
                    f"    - {{name: h1, endpoint: {lab.hosts['h1']}}}\n"
                    f"    - {{name: h2, endpoint: {lab.hosts['h2']}}}\n"
                    "    - {name: h3}\n")

    def cli(self, *args: str) -> Any:
        result = homelab(*args, env=self.env)
        self.outputs.append(result.stdout + result.stderr)
        return result

    def status(self) -> dict[str, tuple[str, str]]:
        result = self.cli("status", str(self.config), "--layer", "mesh", "--json")
        doc = json.loads(result.stdout)
        return {m["subject"]: (m["health"], m["reason"]) for m in doc["layers"]["mesh"]}

    def wait_all_ok(self, seconds: float = 40) -> float:
        start = time.monotonic()
        while True:
            bad = {s: v for s, v in self.status().items() if v[0] != "OK"}
            if not bad:
                return time.monotonic() - start
            assert time.monotonic() - start < seconds, f"not all OK after {seconds} s: {bad}"
            time.sleep(1)

    def addresses(self) -> dict[str, str]:
        return state_of(self.config)["sections"]["mesh"]["addresses"]

    def collect_secrets(self) -> None:
        """Every private and preshared key on the nodes now (read over the lab's own ssh)."""
        for name in NODES:
            out = self.lab.run(name, "cat /etc/wireguard/private.key /etc/wireguard/psk/*.psk", check=True).stdout
            self.secrets |= {line.strip() for line in out.splitlines() if line.strip()}

    def ping_all_pairs(self, seconds: float = 15) -> None:
        addresses = self.addresses()
        for a, b in PAIRS:
            deadline = time.monotonic() + seconds
            while self.lab.run(a, f"ping -n -c 1 -W 1 {addresses[b]}").returncode != 0:
                assert time.monotonic() < deadline, f"{a} cannot ping {b} ({addresses[b]}) over the mesh"


@pytest.fixture(scope="module")
def journey(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    lab.reset(*NODES)
    lab.move_behind_nat("h3")
    try:
        yield Journey(lab, tmp_path_factory.mktemp("mesh"))
    finally:
        lab.move_to_bridge("h3")
        lab.reset(*NODES)  # the next tests get pristine hosts, as they expect


def test_h3_is_truly_behind_nat(journey: Journey) -> None:
    lab = journey.lab
    assert lab.hosts["h3"] != str(lab.config.host_address("h3"))
    assert lab.run("h1", f"ping -n -c 1 -W 1 {lab.hosts['h3']}").returncode != 0
    assert lab.run("h1", f"ip route add {lab.config.nat_network} via {lab.config.router_wan.ip} && "
                         f"ping -n -c 1 -W 1 {lab.hosts['h3']}; rc=$?; ip route del {lab.config.nat_network}; "
                         "exit $rc").returncode != 0  # even a route through the router gets nobody in
    assert lab.run("h3", f"ping -n -c 1 -W 1 {lab.hosts['h1']}").returncode == 0  # out it goes


def test_apply_meshes_all_six_pairs(journey: Journey) -> None:
    t0 = time.monotonic()
    first = journey.cli("apply", str(journey.config), "--yes", "--accept-new-host-keys")
    assert first.returncode == 0, first.stdout + first.stderr
    print(f"first apply: {time.monotonic() - t0:.1f} s")
    assert "generate a WireGuard key (on h3, never copied off)" in first.stdout
    journey.collect_secrets()
    journey.ping_all_pairs()
    for name in NODES:
        out = journey.lab.run(name, "stat -c '%a %U' /etc/wireguard/private.key; "
                                    "systemctl is-enabled wg-quick@wg0; systemctl is-active wg-quick@wg0",
                              check=True).stdout.split()
        assert out == ["600", "root", "enabled", "active"], (name, out)
    # h1 knows h3 only by the router's address, learnt from h3's own handshakes
    endpoints = journey.lab.run("h1", "wg show wg0 endpoints", check=True).stdout
    assert f"{journey.lab.config.router_wan.ip}:" in endpoints


def test_second_apply_changes_nothing(journey: Journey) -> None:
    second = journey.cli("apply", str(journey.config), "--yes")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "apply ok: 0 change(s)" in second.stderr
    assert "done" not in second.stdout
    plan = journey.cli("plan", str(journey.config))
    assert plan.returncode == 0 and "layer 1 mesh: no changes" in plan.stdout


def test_status_shows_the_matrix_and_a_stopped_node_fails_exactly_its_pairs(journey: Journey) -> None:
    status = journey.status()
    assert {s for s in status if "->" in s} == {f"{a}->{b}" for a, b in PAIRS}
    assert all(health == "OK" for health, _ in status.values()), status
    assert "wireguard-go (userspace)" in status["h3"][1]  # no kernel module in the lab's containers
    journey.lab.run("h2", "systemctl stop wg-quick@wg0", check=True)
    t0 = time.monotonic()
    status = journey.status()  # one poll
    print(f"status with h2 stopped: {time.monotonic() - t0:.1f} s")
    failed = {s for s, (health, _) in status.items() if health == "FAIL"}
    assert failed == {"h2", "h1->h2", "h2->h1", "h2->h3", "h3->h2"}, status
    assert all(health == "OK" for s, (health, _) in status.items() if s not in failed)
    for pair in failed - {"h2"}:  # each failing link's reason names both of its ends
        a, b = pair.split("->")
        assert a in status[pair][1] and b in status[pair][1], status[pair]
    again = journey.cli("apply", str(journey.config), "--yes")
    assert again.returncode == 0 and "start wg-quick@wg0" in again.stdout
    print(f"all links OK {journey.wait_all_ok():.1f} s after the restart")


def test_rotate_one_node_and_every_pair_pings_again(journey: Journey) -> None:
    before = state_of(journey.config)["sections"]["mesh"]["public_keys"]
    t0 = time.monotonic()
    rotated = journey.cli("mesh", "rotate", str(journey.config), "h3")
    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    print(f"mesh rotate h3: {time.monotonic() - t0:.1f} s; {rotated.stderr.strip().splitlines()[-1]}")
    assert "all 6 links up again" in rotated.stderr
    after = state_of(journey.config)["sections"]["mesh"]["public_keys"]
    assert after["h3"] != before["h3"] and after["h1"] == before["h1"] and after["h2"] == before["h2"]
    assert "rotate" not in state_of(journey.config)["sections"]["mesh"]
    journey.collect_secrets()  # h3's new key joins the old ones in the search below
    journey.ping_all_pairs(seconds=5)
    for name in ("h1", "h2"):
        peers = journey.lab.run(name, "wg show wg0 peers", check=True).stdout.split()
        assert after["h3"] in peers and before["h3"] not in peers
    assert "apply ok: 0 change(s)" in journey.cli("apply", str(journey.config), "--yes").stderr


def test_the_mesh_comes_back_after_a_reboot(journey: Journey) -> None:
    journey.lab.stop_host("h3")  # power off, disk kept: wg-quick@wg0 must start on boot
    journey.lab.start_host("h3")
    print(f"all links OK {journey.wait_all_ok():.1f} s after h3 booted")
    journey.ping_all_pairs(seconds=5)


def test_no_private_or_preshared_key_in_state_logs_or_output(journey: Journey) -> None:
    assert len(journey.secrets) == 3 + 1 + 3  # 3 private keys, h3 rotated, one psk per pair (on both ends)
    logs = sorted((journey.tmp / "xdg" / "homelab" / "logs").glob("*.log"))
    assert logs, "the CLI wrote no run log"
    places = {"state": journey.config.with_name("mesh.state.json").read_text(),
              "output": "\n".join(journey.outputs)}
    places.update({f"log {p.name}": p.read_text() for p in logs})
    leaks = [(where, secret[:6]) for secret in journey.secrets for where, text in places.items() if secret in text]
    assert not leaks, leaks
    assert any("[REDACTED]" in text for text in places.values())  # the PSK copies were there, masked
