"""Cloud servers end to end: the real `hcloud` library -> the stand-in Hetzner API -> lab hosts.

Two "cloud" servers (each a new lab host booted by the stand-in) plus one adopted lab host,
driven through the CLI like a person would. Proves: one apply converges and a second plans
nothing; the cloud hosts' keys are verified from the first connection (no
--accept-new-host-keys anywhere in this file); resize is planned, not a replace; deletes
need --confirm-delete and are blocked while protected; 429s are retried; a slow action hits
its deadline with a clear error, and the next apply, started while that server is still
initializing, waits for it (saying so) and configures it in the same run instead of making a
second; over budget the plan fails naming total and budget.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.fake_hcloud import FakeHcloud, LabHosts

pytestmark = pytest.mark.lab

TOKEN = "fake-token-4f1c9e"  # a canary too: it must never show in output or state


@pytest.fixture(scope="module")
def cloud(lab: Any) -> Iterator[FakeHcloud]:
    fake = FakeHcloud(TOKEN, backend=LabHosts(lab)).start()
    try:
        yield fake
    finally:
        fake.stop()


def write_config(tmp: Path, lab: Any, servers: str, budget: float = 50.0, action_timeout: int = 60) -> Path:
    cfg = tmp / "home.yaml"
    cfg.write_text(f"""\
billing:
  budget: {budget}
privilege:
  ssh_key: {tmp}/operator_key
  generate_key: true
  use_agent: false
  hcloud_token: {{env: HCLOUD_TOKEN}}
compute:
  base:
    packages: [jq]
  machines:
    - {{name: nas, address: {lab.hosts['h1']}, key: {lab.key}}}
  hetzner:
    ssh_timeout: 60
    action_timeout: {action_timeout}
    servers:
{servers}""")
    return cfg


SERVERS = """\
      - {name: web-1, type: cx22, location: fsn1}
      - {name: web-2, type: cax11, location: hel1, image: debian-12}
"""


def homelab_env(cloud: FakeHcloud, tmp: Path) -> dict[str, str]:
    env = {**os.environ, "HCLOUD_TOKEN": TOKEN, "HOMELAB_HCLOUD_ENDPOINT": cloud.url,
           "XDG_STATE_HOME": str(tmp / "xdg")}
    env.pop("SSH_AUTH_SOCK", None)
    return env


def homelab(cloud: FakeHcloud, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "homelab", *args], capture_output=True, text=True,
                          env=homelab_env(cloud, tmp), timeout=600, stdin=subprocess.DEVNULL)
    assert TOKEN not in proc.stdout + proc.stderr
    return proc


def state(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "home.state.json").read_text())


def servers_named(cloud: FakeHcloud, name: str) -> list[dict[str, Any]]:
    return [s for s in cloud.servers.values() if s["name"] == name]


@pytest.fixture(scope="module")
def applied(cloud: FakeHcloud, lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One apply of two cloud servers + one adopted host (its key pinned as a person would)."""
    lab.reset("h1")  # other modules of the session hardened or renamed it
    tmp = tmp_path_factory.mktemp("cloud")
    cfg = write_config(tmp, lab, SERVERS)
    (tmp / "home.state.json").write_text(json.dumps(
        {"version": 1, "sections": {}, "hosts": {"nas": {"host_key": lab.host_key("h1")}}}))
    out = homelab(cloud, tmp, "apply", str(cfg), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "+ server web-1" in out.stdout or "done  server web-1" in out.stdout
    return tmp


def test_apply_creates_servers_verified_from_the_first_connection(applied: Path, cloud: FakeHcloud,
                                                                  lab: Any) -> None:
    st = state(applied)
    for name in ("web-1", "web-2"):
        (server,) = servers_named(cloud, name)
        lab_host = cloud.backend.names[name]  # type: ignore[attr-defined]
        assert server["ip"] == lab.hosts[lab_host]
        # the key pinned before the server existed is the one the host has: no TOFU happened
        assert st["hosts"][name]["host_key"] == lab.host_key(lab_host)
        assert st["sections"]["compute"]["servers"][name]["id"] == server["id"]
        assert server["protected"] and server["labels"]["managed-by"] == "homelab"
        # the base ran on it in the same apply
        assert lab.run(lab_host, "hostname; command -v jq", check=True).stdout.split() == [name, "/usr/bin/jq"]
    key = applied / "operator_key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert [k["name"] for k in cloud.ssh_keys.values()] == ["homelab-operator"]
    assert "PRIVATE KEY" not in (applied / "home.state.json").read_text()
    assert TOKEN not in (applied / "home.state.json").read_text()
    logs = "".join(p.read_text() for p in (applied / "xdg").rglob("*.log"))
    assert logs and TOKEN not in logs and "PRIVATE KEY" not in logs  # nor the host key sent in user data


def test_everything_reachable_and_second_plan_is_empty(applied: Path, cloud: FakeHcloud) -> None:
    cfg = applied / "home.yaml"
    out = homelab(cloud, applied, "plan", str(cfg))
    assert out.returncode == 0, out.stdout + out.stderr  # 0: no changes at all
    assert "monthly cost: 10.21 EUR/month (now 10.21 EUR, +0.00 EUR); budget 50.00 EUR" in out.stdout
    status = homelab(cloud, applied, "status", str(cfg), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    doc = json.loads(status.stdout)
    reach = {m["subject"]: m["health"] for m in doc["layers"]["compute"] if m["name"] == "reachable"}
    assert reach == {"nas": "OK", "web-1": "OK", "web-2": "OK"}
    priv = {m["name"]: m for m in doc["layers"]["privilege"]}
    assert priv["API token"]["reason"] == "valid, read-write"
    assert priv["host keys pinned"]["reason"] == "3 of 3"


def test_type_change_plans_a_resize(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    cfg = write_config(applied, lab, SERVERS.replace("type: cx22", "type: cx32"))
    out = homelab(cloud, applied, "plan", str(cfg))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "~ server web-1: resize cx22 -> cx32" in out.stdout
    assert "delete" not in out.stdout
    out = homelab(cloud, applied, "apply", str(cfg), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    (server,) = servers_named(cloud, "web-1")
    assert server["type"] == "cx32" and server["status"] == "running"
    assert homelab(cloud, applied, "plan", str(cfg)).returncode == 0


def test_removing_a_server_needs_unprotect_and_confirm(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    only_web1 = "      - {name: web-1, type: cx32, location: fsn1}\n"
    cfg = write_config(applied, lab, only_web1)
    out = homelab(cloud, applied, "plan", str(cfg))
    assert out.returncode == 1
    assert "BLOCKED: server web-2 is not in the config any more but is delete-protected" in out.stderr
    # drop protection first (as the message says), then remove it
    cfg = write_config(applied, lab, SERVERS.replace("type: cx22", "type: cx32")
                       .replace("image: debian-12}", "image: debian-12, protection: false}"))
    assert homelab(cloud, applied, "apply", str(cfg), "--yes").returncode == 0
    cfg = write_config(applied, lab, only_web1)
    out = homelab(cloud, applied, "plan", str(cfg))
    assert out.returncode == 3 and "- server web-2: delete server" in out.stdout
    out = homelab(cloud, applied, "apply", str(cfg), "--yes")
    assert out.returncode == 1 and "not confirmed" in out.stderr
    assert len(servers_named(cloud, "web-2")) == 1
    lab_host = cloud.backend.names["web-2"]  # type: ignore[attr-defined]
    out = homelab(cloud, applied, "apply", str(cfg), "--yes", "--confirm-delete")
    assert out.returncode == 0, out.stdout + out.stderr
    assert servers_named(cloud, "web-2") == []
    assert "web-2" not in state(applied)["hosts"]
    assert lab.inventory()["hosts"][int(lab_host[1:]) - 1]["running"] is False
    assert homelab(cloud, applied, "plan", str(cfg)).returncode == 0


def test_rate_limited_answers_are_retried(applied: Path, cloud: FakeHcloud) -> None:
    before = sum(1 for r in cloud.requests if r[2] == 429)
    cloud.rate_limit(3)
    out = homelab(cloud, applied, "plan", str(applied / "home.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert sum(1 for r in cloud.requests if r[2] == 429) - before == 3


WITH_WEB3 = "      - {name: web-1, type: cx32, location: fsn1}\n      - {name: web-3, type: cx22, location: nbg1}\n"


def test_slow_action_hits_the_deadline(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    cfg = write_config(applied, lab, WITH_WEB3, action_timeout=3)
    cloud.slow_actions(30)  # the create action runs 30 s, however loaded this machine: 3 s always comes first
    try:
        out = homelab(cloud, applied, "apply", str(cfg), "--yes")
    finally:
        cloud.slow_actions(0)
    assert out.returncode == 1
    assert "create server web-3: Hetzner action create_server" in out.stderr and "still running after 3 s" in out.stderr
    assert "web-3" in out.stdout.split("summary:")[1]  # its host is in the summary, failed
    assert len(servers_named(cloud, "web-3")) == 1
    assert "web-3" not in state(applied)["sections"]["compute"]["servers"]  # made, never seen up


def test_a_server_still_initializing_past_the_deadline_fails_its_host_saying_what_to_do(
        applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    cfg = write_config(applied, lab, WITH_WEB3, action_timeout=4)
    cloud.keep_initializing("web-3", 300)
    try:
        out = homelab(cloud, applied, "apply", str(cfg), "--yes")
    finally:
        cloud.keep_initializing("web-3", 0)
    assert out.returncode == 1
    assert "... web-3: server initializing, waiting (0 s of 4 s)" in out.stderr
    assert "FAILED server web-3: wait until it is up and answers SSH (up to 4 s, then 60 s for SSH): " \
           "server web-3 is still initializing after 4 s\n" \
           "    hint: run apply again in a while; if it stays like this, check the server in the Hetzner Cloud " \
           "Console" in out.stderr
    summary = out.stdout.split("summary:")[1]
    assert "web-3            failed: server web-3 is still initializing after 4 s" in summary
    assert "nas              ok" in summary  # the other hosts went on
    assert len(servers_named(cloud, "web-3")) == 1


def test_apply_waits_for_a_server_still_booting_then_converges(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    """The server the create above left is still initializing (kept so by the stand-in) when the
    next apply starts: that apply waits, says so, and configures it in the same run."""
    cfg = write_config(applied, lab, WITH_WEB3)  # the usual deadlines (60 s)
    cloud.keep_initializing("web-3", 300)  # until this apply has shown it waits (released below)
    out_path = applied / "wait-apply.out"
    with out_path.open("w") as out_file:
        proc = subprocess.Popen([sys.executable, "-m", "homelab", "apply", str(cfg), "--yes"], stdout=out_file,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                env=homelab_env(cloud, applied))
    lines: list[str] = []
    waiting = threading.Event()

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "web-3: server initializing, waiting" in line:
                waiting.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert waiting.wait(240), "".join(lines)
        cloud.keep_initializing("web-3", 12)  # 12 s more from now, then it is up
        proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        cloud.keep_initializing("web-3", 0)
    stdout, stderr = out_path.read_text(), "".join(lines)
    assert proc.returncode == 0, stdout + stderr
    assert TOKEN not in stdout + stderr
    assert "* server web-3: wait until it is up and answers SSH (up to 60 s, then 60 s for SSH)\n" \
           "      now: server initializing" in stdout
    waits = [line.strip() for line in stderr.splitlines() if "web-3: server initializing, waiting" in line]
    assert waits[0] == "... web-3: server initializing, waiting (0 s of 60 s)"
    assert "... web-3: server initializing, waiting (10 s of 60 s)" in waits  # a line every 10 s
    assert "done  server web-3: wait until it is up" in stdout
    assert len(servers_named(cloud, "web-3")) == 1  # waited for, not made twice
    lab_host = cloud.backend.names["web-3"]  # type: ignore[attr-defined]
    st = state(applied)
    assert st["hosts"]["web-3"]["host_key"] == lab.host_key(lab_host)  # the key pinned before its create
    assert st["sections"]["compute"]["servers"]["web-3"]["ipv4"] == lab.hosts[lab_host]
    assert lab.run(lab_host, "hostname; command -v jq", check=True).stdout.split() == ["web-3", "/usr/bin/jq"]
    again = homelab(cloud, applied, "apply", str(cfg), "--yes")
    assert again.returncode == 0 and "apply ok: 0 change(s)" in again.stderr, again.stdout + again.stderr
    assert homelab(cloud, applied, "plan", str(cfg)).returncode == 0


def test_over_budget_plan_fails_naming_total_and_budget(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    cfg = write_config(applied, lab, SERVERS, budget=5)
    out = homelab(cloud, applied, "plan", str(cfg))
    assert out.returncode == 1
    assert "BLOCKED: monthly cost 10.21 EUR is over the budget of 5.00 EUR (billing.budget)" in out.stderr
    out = homelab(cloud, applied, "apply", str(cfg), "--yes")
    assert out.returncode == 1 and not servers_named(cloud, "web-2")  # nothing bought over budget


def test_destroy_deletes_only_what_homelab_created(applied: Path, cloud: FakeHcloud, lab: Any) -> None:
    """destroy = apply of the config without servers: protected servers block it, deletes need
    --confirm-delete, and the adopted machine is left alone."""
    servers = WITH_WEB3
    cfg = write_config(applied, lab, servers)
    out = homelab(cloud, applied, "destroy", str(cfg), "--yes", "--confirm-delete")
    assert out.returncode == 1 and "delete-protected" in out.stderr
    assert len(servers_named(cloud, "web-1")) == 1
    unprotected = servers.replace("location: fsn1}", "location: fsn1, protection: false}") \
                         .replace("location: nbg1}", "location: nbg1, protection: false}")
    cfg = write_config(applied, lab, unprotected)
    assert homelab(cloud, applied, "apply", str(cfg), "--yes").returncode == 0
    out = homelab(cloud, applied, "destroy", str(cfg), "--yes")
    assert out.returncode == 2 and "--confirm-delete" in out.stderr
    assert "- server web-1: delete server" in out.stdout
    assert len(servers_named(cloud, "web-1")) == 1
    out = homelab(cloud, applied, "destroy", str(cfg), "--yes", "--confirm-delete")
    assert out.returncode == 0, out.stdout + out.stderr
    assert servers_named(cloud, "web-1") == [] and servers_named(cloud, "web-3") == []
    assert lab.run("h1", "true").returncode == 0  # the adopted nas still runs
    assert homelab(cloud, applied, "destroy", str(cfg), "--yes", "--confirm-delete").returncode == 0
