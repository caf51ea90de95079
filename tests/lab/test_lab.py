"""The lab's own tests, on real hosts: ssh, systemd, apt, docker, isolation, host lifecycle.

Tests marked `lab` need root and the lab tools (skipped otherwise); the few at the top are
pure and run anywhere. Host roles with the default layout (h1-h3 Debian 13, h4 Debian 12):
h1 docker, h2 reset, h3 stop/start and rekey, h3+h4 apt.
"""
from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

from homelab.errors import UsageError
from homelab.lab import LAB_PACKAGES, Lab, LabConfig, deps_command, packages_for, parse_hosts_spec
from homelab.lab.cgroups import find_group_dirs
from homelab.lab.network import fixed_mac, render_guard
from homelab.lab.system import mounts_under, pid_alive

APT_INSTALL = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"


def sh(lab: Lab, name: str, cmd: str, user: str = "root", timeout: float = 300) -> str:
    r = lab.run(name, cmd, user=user, timeout=timeout)
    assert r.returncode == 0, f"[{name} as {user}] {cmd!r} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r.stdout.strip()


def each_host(lab: Lab, fn: Callable[[str], None], names: list[str] | None = None) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fn, names or baseline(lab)))


def baseline(lab: Lab) -> list[str]:
    """The session's own hosts (other test modules may have added, stopped or renamed more)."""
    return list(getattr(lab, "baseline_hosts", lab.host_names()))


@pytest.fixture(scope="module")
def lab(lab: Lab) -> Lab:
    """The session lab with its hosts made pristine: earlier test modules changed them
    (hostnames, packages, firewall, sshd)."""
    lab.reset(*baseline(lab))
    return lab


def of_suite(lab: Lab, suite: str) -> list[str]:
    names = [n for n in baseline(lab) if lab.suite(n) == suite]
    if not names:
        pytest.skip(f"no {suite} host in this lab (LAB_HOSTS)")
    return names


# ------------------------------------------------------------- pure (no root) ----

def test_every_name_follows_the_instance_number() -> None:
    c = LabConfig.from_env({"HOMELAB_LAB_INSTANCE": "3"})
    assert (c.bridge, str(c.bridge_if), c.repo_port, c.nft_table, c.cgroup_name) == (
        "hlbr3", "10.80.0.1/24", 8083, "homelab_lab3", "homelab-lab3")
    assert (str(c.dir), str(c.cache)) == ("/var/lib/homelab-lab/3", "/var/lib/homelab-lab/cache")
    assert str(c.host_address("h4")) == "10.80.0.14" and c.host_ns("h200") == "hl3-h200"
    assert len(LabConfig.from_env({"HOMELAB_LAB_INSTANCE": "99"}).host_ns("h200")) <= 15  # IFNAMSIZ
    assert c.repo_url("bookworm") == "http://10.80.0.1:8083/bookworm"
    with pytest.raises(UsageError):
        LabConfig.from_env({"HOMELAB_LAB_INSTANCE": "x"})


def test_hosts_spec_and_package_lists() -> None:
    assert parse_hosts_spec("2") == {"trixie": 2}
    assert list(parse_hosts_spec("trixie:3,bookworm:1").items()) == [("trixie", 3), ("bookworm", 1)]
    for bad in ("sid:1", "0", "trixie:x"):
        with pytest.raises(UsageError):
            parse_hosts_spec(bad)
    assert "wireguard" not in packages_for("trixie")  # its Recommends pull a kernel image
    assert {"restic-rest-server", "docker-compose"} <= set(packages_for("trixie"))
    assert "docker-compose" not in packages_for("bookworm")
    assert set(LAB_PACKAGES["all"]) <= set(packages_for("bookworm"))
    assert deps_command() == ("apt-get install -y debootstrap systemd-container apt-utils iproute2 nftables "
                              "openssh-client util-linux dpkg-dev")


def test_guard_drops_forwarding_off_each_bridge_and_macs_are_fixed() -> None:
    rules = render_guard("homelab_lab0", ["hlbr0", "hlnat0"])
    assert "type filter hook forward priority -10; policy accept;" in rules
    assert 'iifname "hlbr0" oifname != "hlbr0" drop' in rules
    assert 'iifname "hlnat0" oifname != "hlnat0" drop' in rules
    assert fixed_mac(LabConfig.from_env({}).host_address("h1")) == "02:4c:0a:4d:00:0b"


@pytest.mark.lab
def test_root_and_admin_answer_ssh_and_admin_has_sudo(lab: Lab) -> None:
    def check(name: str) -> None:
        assert sh(lab, name, "id -un; hostname").split() == ["root", name]
        assert sh(lab, name, "id -un; sudo -n id -un", user="admin").split() == ["admin", "root"]

    each_host(lab, check)


@pytest.mark.lab
def test_systemd_is_running_on_the_asked_debian(lab: Lab) -> None:
    versions = {"trixie": "13", "bookworm": "12"}

    def check(name: str) -> None:
        state = lab.run(name, "systemctl is-system-running --wait", timeout=120).stdout.strip()
        failed = sh(lab, name, "systemctl --failed --no-legend --plain") if state != "running" else ""
        assert state == "running", f"{name}: {state}; failed units: {failed}"
        assert sh(lab, name, ". /etc/os-release; echo $VERSION_ID") == versions[lab.suite(name)]
        assert sh(lab, name, "ps -p 1 -o comm=") == "systemd"

    each_host(lab, check)


@pytest.mark.lab
def test_apt_installs_from_the_local_repo_on_both_suites(lab: Lab) -> None:
    targets = [of_suite(lab, "trixie")[-1], of_suite(lab, "bookworm")[0]]
    inv = {h["name"]: h for h in lab.inventory()["hosts"]}

    def check(name: str) -> None:
        assert sh(lab, name, "cat /etc/apt/sources.list") == inv[name]["apt_source"]
        sh(lab, name, f"{APT_INSTALL} jq")
        assert sh(lab, name, "echo '{\"a\": [1, 2]}' | jq -c .a") == "[1,2]"
        assert inv[name]["apt_repo"] in sh(lab, name, "apt-cache policy jq")

    each_host(lab, check, targets)


@pytest.mark.lab
def test_docker_runs_the_python_image(lab: Lab) -> None:
    name = of_suite(lab, "trixie")[0]
    host = next(h for h in lab.inventory()["hosts"] if h["name"] == name)
    tag = f"lab/python:{host['python_version']}"
    sh(lab, name, f"{APT_INSTALL} docker.io", timeout=600)
    sh(lab, name, f"curl -sf {host['images']['python']} | docker import - {tag}")
    out = sh(lab, name, f"docker run --rm {tag} python3 -c 'import sys; print(\"hello from\", sys.version.split()[0])'")
    assert out.startswith(f"hello from {host['python_version']}.")  # e.g. 3.13.5


@pytest.mark.lab
def test_hosts_reach_each_other_but_nothing_outside(lab: Lab) -> None:
    name, other = baseline(lab)[:2]
    assert "default" not in sh(lab, name, "ip route; ip -6 route")
    sh(lab, name, f"ping -c1 -W2 {other}")
    r = lab.run(name, "ping -c1 -W1 9.9.9.9")
    assert r.returncode != 0 and "unreachable" in (r.stdout + r.stderr).lower()
    c = lab.config
    ruleset = subprocess.run(["nft", "list", "table", "inet", c.nft_table], capture_output=True, text=True).stdout
    assert f'iifname "{c.bridge}" oifname != "{c.bridge}" drop' in ruleset


@pytest.mark.lab
def test_stopped_host_comes_back_with_the_same_host_key(lab: Lab) -> None:
    name = baseline(lab)[2 if len(baseline(lab)) > 2 else 0]
    key = lab.host_key(name)
    lab.stop_host(name)
    assert lab.run(name, "true", timeout=30).returncode == 255  # ssh itself fails: host is down
    assert not next(h for h in lab.inventory()["hosts"] if h["name"] == name)["running"]
    lab.start_host(name)
    assert lab.host_key(name) == key
    assert sh(lab, name, "hostname") == name  # strict host key checking passed


@pytest.mark.lab
def test_rekey_changes_the_host_key(lab: Lab, tmp_path: Path) -> None:
    name = baseline(lab)[2 if len(baseline(lab)) > 2 else 0]
    old_known = tmp_path / "known_hosts"
    old_known.write_text(lab.known_hosts.read_text())
    old = lab.host_key(name)
    new = lab.rekey_host(name)
    assert new.startswith("ssh-ed25519 ") and new != old and lab.host_key(name) == new
    assert sh(lab, name, "hostname") == name  # the lab's known_hosts follows
    argv = [a.replace(str(lab.known_hosts), str(old_known)) for a in lab.ssh_argv(name)]
    r = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 255 and "host key" in r.stderr.lower(), r.stderr


@pytest.mark.lab
def test_reset_gives_a_pristine_host(lab: Lab) -> None:
    name = baseline(lab)[1 if len(baseline(lab)) > 1 else 0]
    sh(lab, name, "touch /root/marker")
    old = lab.host_key(name)
    lab.reset(name)
    sh(lab, name, "test ! -e /root/marker")
    assert lab.host_key(name) != old
    assert lab.run(name, "systemctl is-system-running --wait", timeout=120).stdout.strip() == "running"


@pytest.mark.lab
def test_down_leaves_nothing_behind(lab: Lab) -> None:
    """Last: takes the lab down, checks, and brings the same layout back for later tests."""
    layout: dict[str, int] = {}
    for n in baseline(lab):
        layout[lab.suite(n)] = layout.get(lab.suite(n), 0) + 1
    pids = [int(p.read_text()) for p in lab.hosts_dir.glob("h*/nspawn.pid")]
    c = lab.config
    lab.down()
    assert subprocess.run(["ip", "link", "show", c.bridge], capture_output=True).returncode != 0
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout)
    assert not [link["ifname"] for link in links if link["ifname"].startswith(c.ns_prefix)]
    assert not list(Path("/run/netns").glob(f"{c.ns_prefix}*"))
    assert subprocess.run(["nft", "list", "table", "inet", c.nft_table], capture_output=True).returncode != 0
    assert mounts_under(c.dir) == []
    assert find_group_dirs(c.cgroup_name) == []
    assert not [pid for pid in pids if pid_alive(pid)]
    assert lab.status().repo_pid is None and lab.status().registry_pid is None
    assert not lab.inventory_path.exists() and lab.host_names() == []
    lab.down()  # idempotent
    items = list(layout.items())
    lab.up(items[0][1], items[0][0], also=dict(items[1:]))
