"""`address: local`: the machine homelab runs on, provisioned in place without SSH.

The config rule, the local session (probe scripts through `sh -s`), and the pyinfra worker's
`@local` connector running real operations on this machine inside a temp dir.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from homelab.config import parse_config
from homelab.errors import ConfigError
from homelab.hosts import HostTarget
from homelab.local import LocalSession, shell_argv
from homelab.model import Op
from homelab.provision.confirm import open_fresh
from homelab.provision.runner import WorkerRun
from homelab.transport import SshTransport

LOCAL_ONLY = """\
compute:
  machines:
    - name: here
      address: local
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def test_local_machine_parses() -> None:
    cfg = parse_config(LOCAL_ONLY, Path("c.yaml"))
    (machine,) = cfg.machines
    assert machine.local and machine.address == "local" and machine.user == "root"


def test_only_one_machine_may_be_local() -> None:
    text = LOCAL_ONLY + "    - name: there\n      address: local\n"
    assert problems(text) == [
        "c.yaml:6:16: compute.machines[1].address: only one machine can be local; compute.machines[0] already is "
        "(hint: this machine is one machine: give the others their addresses)"]


def test_port_and_key_are_refused_for_local() -> None:
    out = problems(LOCAL_ONLY + "      port: 2222\n      key: /root/.ssh/id\n")
    assert len(out) == 2
    assert out[0].startswith("c.yaml:5:13: compute.machines[0].port: port is not used with address: local")
    assert out[1].startswith("c.yaml:6:12: compute.machines[0].key: key is not used with address: local")


def test_transport_gives_a_local_session_without_a_host_key() -> None:
    session, key = SshTransport().connect(HostTarget("here", "local"), None, None, use_agent=False)
    assert isinstance(session, LocalSession) and key == ""
    res = session.run_script("echo out; echo err >&2; exit 3\n")
    assert (res.rc, res.stdout, res.stderr, session.commands) == (3, "out\n", "err\n", 1)


def test_local_session_runs_as_root() -> None:
    assert shell_argv() == (["sh", "-s"] if subprocess.run(["id", "-u"], capture_output=True, text=True)
                            .stdout.strip() == "0" else ["sudo", "-n", "sh", "-s"])


def test_local_connect_loads_no_ssh_stack() -> None:
    code = ("from homelab.transport import SshTransport; from homelab.hosts import HostTarget; "
            "s, _ = SshTransport().connect(HostTarget('here', 'local'), None, None, False); "
            "import sys, json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    mods = set(json.loads(out.stdout.splitlines()[-1]))
    assert not {m for m in mods if m.split(".")[0] in ("paramiko", "pyinfra", "cryptography")}


def test_guard_confirms_a_local_host_through_a_new_local_shell() -> None:
    assert isinstance(open_fresh(HostTarget("here", "local"), "", False, 5.0), LocalSession)


def test_worker_runs_operations_through_the_local_connector(tmp_path: Path) -> None:
    target = HostTarget("here", "local")
    ops = {"here": [Op("files.directory", {"path": str(tmp_path / "d"), "mode": "750"}),
                    Op("files.put_text", {"content": "hello\n", "dest": str(tmp_path / "d" / "f"), "mode": "640"})]}
    events = list(WorkerRun([target], ops, {}).events())
    assert [(e["event"], e.get("host"), e.get("index")) for e in events] == [
        ("op_ok", "here", 0), ("op_ok", "here", 1), ("done", None, None)], events
    assert (tmp_path / "d" / "f").read_text() == "hello\n"
    assert oct((tmp_path / "d" / "f").stat().st_mode & 0o777) == "0o640"


def test_frozen_children_get_the_system_library_path() -> None:
    from homelab.frozen import restore_system_env

    env = {"LD_LIBRARY_PATH": "/tmp/_MEI1:/opt/lib", "LD_LIBRARY_PATH_ORIG": "/opt/lib", "PATH": "/bin"}
    restore_system_env(env)
    assert env == {"LD_LIBRARY_PATH": "/opt/lib", "PATH": "/bin"}
    env = {"LD_LIBRARY_PATH": "/tmp/_MEI1"}  # nothing was set before the bootloader
    restore_system_env(env)
    assert env == {}


def test_a_local_mesh_node_is_never_dialled_at_local() -> None:
    text = LOCAL_ONLY + "    - name: vps\n      address: vps.example.com\nmesh:\n  nodes:\n    - {name: here, endpoint: auto}\n"
    assert problems(text) == [
        "c.yaml:9:30: mesh.nodes[0].endpoint: endpoint auto means the address homelab connects to, and here is "
        "local (hint: write the public address or DNS name the other nodes dial)"]
    cfg = parse_config(LOCAL_ONLY + "    - name: vps\n      address: vps.example.com\nmesh: {}\n", Path("c.yaml"))
    endpoints = {n.name: n.endpoint for n in cfg.sections["mesh"].members}
    assert endpoints == {"here": None, "vps": "auto"}  # behind NAT: it dials out to the public node
