"""Issue 2 proof on real Debian hosts: adopt, converge, idempotent, failures contained.

Uses the session lab (3 Debian 13 hosts + 1 Debian 12). Hosts are reset first so the test
starts from machines homelab has never seen.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from homelab.lab.demo import write_lab_config
from tests.e2e.util import count_ssh_connections, homelab, homelab_on_terminal, state_of

pytestmark = pytest.mark.lab

NAMES = {"h1": "web-1", "h2": "web-2", "h3": "db-1", "h4": "old-1"}


@pytest.fixture(scope="module")
def fresh(lab):  # type: ignore[no-untyped-def]
    lab.reset("h1", "h2", "h3", "h4")
    return lab


def config_for(lab, tmp_path: Path, hosts: list[str], **kw) -> Path:  # type: ignore[no-untyped-def]
    return write_lab_config(tmp_path / "lab.yaml", lab.inventory(), hosts=hosts, names=NAMES, **kw)


def test_apply_converges_and_second_apply_changes_nothing(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1", "h2", "h3", "h4"])
    first = homelab("apply", str(cfg), "--yes", "--accept-new-host-keys")
    assert first.returncode == 0, first.stderr
    assert "apply ok" in first.stderr
    for h, name in NAMES.items():
        out = fresh.run(h, "hostname; readlink /etc/localtime; dpkg-query -W -f='${Status}\\n' jq rsync",
                        check=True).stdout.split("\n")
        assert out[0] == name
        assert out[1].endswith("zoneinfo/Europe/Berlin")
        assert out[2:4] == ["install ok installed"] * 2
    # Debian 12 and 13 both converge
    st = state_of(cfg)
    assert st["hosts"]["old-1"]["os"] == "debian 12" and st["hosts"]["web-1"]["os"] == "debian 13"
    second = homelab("apply", str(cfg), "--yes")
    assert second.returncode == 0, second.stderr
    assert "apply ok: 0 change(s)" in second.stderr
    assert "done" not in second.stdout
    plan = homelab("plan", str(cfg))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "no changes" in plan.stdout


def test_state_file_is_private_and_pins_host_keys(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1"])
    assert homelab("plan", str(cfg), "--accept-new-host-keys").returncode in (0, 3)  # 3: changes pending
    path = cfg.with_name("lab.state.json")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    st = json.loads(path.read_text())
    assert st["version"] == 1
    assert st["hosts"]["web-1"]["host_key"].split()[:2] == fresh.host_key("h1").split()[:2]


def test_unknown_host_key_needs_permission(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1"])
    out = homelab("plan", str(cfg))
    assert out.returncode == 1
    assert "is not known yet: SHA256:" in out.stderr and "--accept-new-host-keys" in out.stderr
    assert not cfg.with_name("lab.state.json").exists() or "host_key" not in json.dumps(state_of(cfg))


def test_malformed_config_touches_no_host(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1", "h2"])
    cfg.write_text(cfg.read_text().replace("      user: admin\n", "      usr: admin\n", 1))
    count_ssh_connections(fresh, "h1")  # installs the counter
    before = {h: count_ssh_connections(fresh, h) for h in ("h1", "h2")}
    for cmd in (["apply", "--yes", "--accept-new-host-keys"], ["plan"], ["status"]):
        out = homelab(cmd[0], str(cfg), *cmd[1:])
        assert out.returncode == 2, out.stderr
        assert "unknown key (hint: did you mean 'user'?)" in out.stderr and "Traceback" not in out.stderr
    after = {h: count_ssh_connections(fresh, h) for h in ("h1", "h2")}
    assert after == {h: n + 1 for h, n in before.items()}, "only our own counter reads may connect"
    assert not cfg.with_name("lab.state.json").exists()


def test_one_host_down_others_converge_then_it_converges(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1", "h2", "h3"], timezone="Europe/Berlin")
    assert homelab("apply", str(cfg), "--yes", "--accept-new-host-keys").returncode == 0
    cfg = config_for(fresh, tmp_path, ["h1", "h2", "h3"], timezone="Europe/Paris")
    fresh.stop_host("h2")
    try:
        out = homelab("apply", str(cfg), "--yes", "--wait-for-hosts", "2")
        assert out.returncode == 1
        assert "web-2 does not answer; homelab reached it before, so it may be rebooting" in out.stderr, out.stderr
        assert re.search(r"FAILED web-2 \[connect\]: connect to web-2 \(.*\): .* \(no answer for \d+ s\)", out.stderr), out.stderr
        assert "web-2" in out.stderr and "web-2            unreachable" in out.stdout
        assert "web-1            changed" in out.stdout and "db-1             changed" in out.stdout
        assert "log: " in out.stderr and out.stdout.count("summary:") == 1
        status = homelab("status", str(cfg), "--json")
        assert status.returncode == 1  # a FAIL monitor
        monitors = json.loads(status.stdout)["layers"]["compute"]
        down = [m for m in monitors if m["subject"] == "web-2" and m["name"] == "reachable"]
        assert down and down[0]["health"] == "FAIL"
        assert all(m["health"] == "OK" for m in monitors if m["subject"] == "web-1" and m["name"] == "reachable")
        st = state_of(cfg)  # still valid JSON, keys kept
        assert st["hosts"]["web-2"]["host_key"]
        assert fresh.run("h1", "readlink /etc/localtime", check=True).stdout.strip().endswith("Europe/Paris")
        # a reboot: the machine comes back while apply (its default wait) keeps trying it
        proc = subprocess.Popen([sys.executable, "-m", "homelab", "apply", str(cfg), "--yes"], text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stderr is not None
        said = ""
        for line in proc.stderr:
            said += line
            if "may be rebooting" in line:
                break
        assert "web-2 does not answer" in said, said
    finally:
        fresh.start_host("h2")
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, said + err
    assert "connected web-2" in err and "web-2            changed" in rest
    assert fresh.run("h2", "readlink /etc/localtime", check=True).stdout.strip().endswith("Europe/Paris")
    assert homelab("plan", str(cfg)).returncode == 0


def test_changed_host_key_is_refused(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1", "h3"])
    assert homelab("apply", str(cfg), "--yes", "--accept-new-host-keys").returncode == 0
    fresh.rekey_host("h3")
    out = homelab("apply", str(cfg), "--yes", "--accept-new-host-keys")
    assert out.returncode == 1
    assert "host key of db-1 (" in out.stderr and "CHANGED" in out.stderr
    assert "web-1            ok" in out.stdout  # the summary is a result: stdout
    # --accept-new-host-keys never overrides a changed key; the pin stays the old one
    assert state_of(cfg)["hosts"]["db-1"]["host_key"].split()[1] != fresh.host_key("h3").split()[1]


def test_apply_on_a_terminal_asks_first(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h1"], timezone="Asia/Tokyo")
    homelab("plan", str(cfg), "--accept-new-host-keys")  # pin the key first
    rc, screen = homelab_on_terminal("apply", str(cfg), answers="n\n")
    assert rc == 1 and "Apply " in screen and "not applied" in screen
    assert not fresh.run("h1", "readlink /etc/localtime", check=True).stdout.strip().endswith("Asia/Tokyo")
    rc, screen = homelab_on_terminal("apply", str(cfg), answers="y\n")
    assert rc == 0, screen
    assert fresh.run("h1", "readlink /etc/localtime", check=True).stdout.strip().endswith("Asia/Tokyo")
    rc, screen = homelab_on_terminal("apply", str(cfg), answers="y\n")
    assert rc == 0 and "nothing to do" in screen and "[y/N]" not in screen


def test_unknown_host_key_prompt_on_a_terminal(fresh, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg = config_for(fresh, tmp_path, ["h2"])
    rc, screen = homelab_on_terminal("plan", str(cfg), answers="n\n")
    assert rc == 1 and "offers host key SHA256:" in screen
    assert not cfg.with_name("lab.state.json").exists() or "host_key" not in json.dumps(state_of(cfg))
    rc, screen = homelab_on_terminal("plan", str(cfg), answers="y\n")
    assert rc in (0, 3), screen  # 3: changes pending
    assert state_of(cfg)["hosts"]["web-2"]["host_key"].split()[1] == fresh.host_key("h2").split()[1]
