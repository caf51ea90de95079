"""The base every machine gets: the hostname is set where sudo and friends resolve it too."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from homelab.layers.compute.base_os import base_probes, diff_base, parse_facts
from homelab.layers.compute.packages import HostPackages
from homelab.probe import ProbeResult
from test_packages import EXAMPLE


def facts_of(hosts_text: str, tmp_path: Path) -> ProbeResult:
    """The real facts probe, run here, with /etc/hosts swapped for a temp file."""
    hosts = tmp_path / "hosts"
    hosts.write_text(hosts_text)
    cmd = base_probes(HostPackages(), "node-5")["compute.facts"]
    assert isinstance(cmd, str) and cmd.count("/etc/hosts") == 1
    out = subprocess.run(["sh", "-c", cmd.replace("/etc/hosts", str(hosts))], capture_output=True, text=True)
    return ProbeResult(out.returncode, out.stdout)


@pytest.mark.parametrize("text, named", [
    ("127.0.0.1\tlocalhost\n127.0.1.1\tnode-5\n", True),
    ("127.0.0.1 localhost node-5", True),  # any line will do; the last one has no newline
    ("127.0.1.1 node-5.example.org node-5\n", True),
    ("127.0.1.1 h5\n#127.0.1.1 node-5\n", False),  # a comment names nothing
    ("127.0.1.1 h5 # node-5\n", False),
    ("127.0.1.1 node-50\n", False),
])
def test_the_probe_reads_whether_etc_hosts_names_the_host(text: str, named: bool, tmp_path: Path) -> None:
    facts = parse_facts(facts_of(text, tmp_path))
    assert facts is not None and facts.in_hosts is named and facts.hostname


def _facts(hostname: str, in_hosts: str) -> dict[str, ProbeResult]:
    return {"compute.facts": ProbeResult(0, f"debian\n13\nx86_64\n{hostname}\n{hostname}\n{in_hosts}\n")}


def _host_changes(probed: dict[str, ProbeResult]) -> list:  # type: ignore[type-arg]
    changes, same = diff_base("node-5", EXAMPLE.compute.base, probed, HostPackages())
    return [c for c in changes if "hostname" in c.summary or "/etc/hosts" in c.summary] + [
        s for s in same if "hostname" in s]


def test_a_rename_names_the_host_in_etc_hosts_too() -> None:
    [change] = _host_changes(_facts("h5", "no"))
    assert change.summary == "hostname h5 -> node-5"
    assert [op.name for op in change.ops] == ["server.hostname", "files.line"]
    assert change.ops[1].kwargs == {"path": "/etc/hosts", "line": r"^127\.0\.1\.1\s", "replace": "127.0.1.1 node-5"}


def test_a_right_hostname_missing_from_etc_hosts_gets_only_that_line() -> None:
    [change] = _host_changes(_facts("node-5", "no"))
    assert change.summary == "/etc/hosts: name node-5 (127.0.1.1)" and [op.name for op in change.ops] == ["files.line"]
    assert _host_changes(_facts("node-5", "yes")) == ["node-5: hostname is node-5"]
