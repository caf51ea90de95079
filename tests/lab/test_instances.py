"""Each test run holds its own lab instance (homelab/lab/instances.py), and two instances share
no name, address, port or kernel object. Pure (a temporary lock dir): runs anywhere."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from homelab.lab.config import LabConfig, LabError
from homelab.lab.instances import HELD_BY_ENV, TEST_INSTANCES, claim_free, hold_for_session, holder, try_hold

ROOT = Path(__file__).resolve().parents[2]


def names_of(c: LabConfig) -> set[str]:
    """Every kernel-visible name a lab makes: links, netns, nft tables, cgroup dir."""
    return {c.bridge, c.nat_bridge, c.nft_table, c.nat_table, c.cgroup_name, c.router_ns, *c.router_links,
            *(c.host_ns(f"h{n}") for n in (1, 9, 10, 99, 200))}


def test_two_instances_share_nothing() -> None:
    """Test runs (10-40) against each other and against the developer's 0 and the helpers' 1-9."""
    configs = {i: LabConfig.from_env({"HOMELAB_LAB_INSTANCE": str(i)}) for i in (*range(10), *TEST_INSTANCES)}
    for i in TEST_INSTANCES:
        a = configs[i]
        for j, b in configs.items():
            if i == j:
                continue
            assert not names_of(a) & names_of(b), (i, j)
            # `down` sweeps links and netns by prefix: lab 1's "hl1-" must not catch lab 10's "hl10-h1"
            assert not [n for n in names_of(b) if n.startswith(a.ns_prefix)], (i, j)
            assert not [n for n in names_of(a) if n.startswith(b.ns_prefix)], (i, j)
            nets_a: list[IPv4Network] = [a.network, a.nat_network]
            assert not [n for n in nets_a if n.overlaps(b.network) or n.overlaps(b.nat_network)], (i, j)
            assert a.repo_port != b.repo_port and a.dir != b.dir, (i, j)
            assert not str(b.dir / "hosts").startswith(str(a.dir / "hosts") + "/")  # mounts_under is by prefix
        assert len(a.host_ns("h200")) <= 15  # IFNAMSIZ


def test_the_lowest_free_instance_is_claimed_and_released(tmp_path: Path) -> None:
    first = claim_free(lock_dir=tmp_path)
    second = claim_free(lock_dir=tmp_path)
    assert (first.instance, second.instance) == (TEST_INSTANCES[0], TEST_INSTANCES[1])
    assert holder(first.instance, tmp_path) == os.getpid()
    first.release()
    assert claim_free(lock_dir=tmp_path).instance == TEST_INSTANCES[0]  # freed: reused, and so cleaned
    with pytest.raises(LabError, match="every test lab instance"):
        claim_free([TEST_INSTANCES[0]], lock_dir=tmp_path)


def test_a_lock_held_by_another_process_is_skipped_until_it_dies(tmp_path: Path) -> None:
    """The same flock(1) tests/run.sh uses; the kernel drops it when the holder is killed."""
    lock = tmp_path / f"{TEST_INSTANCES[0]}.lock"
    lock.touch()
    # -o: only flock itself holds the lock, so killing it must free the number
    proc = subprocess.Popen(["flock", "-o", str(lock), "sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while (probe := try_hold(TEST_INSTANCES[0], tmp_path)) is not None:  # until the child has it
            probe.release()
            assert time.monotonic() < deadline, "flock never took the lock"
            time.sleep(0.05)
        held = claim_free(lock_dir=tmp_path)
        assert held.instance == TEST_INSTANCES[1]
        held.release()
    finally:
        proc.kill()
        proc.wait()
    assert claim_free(lock_dir=tmp_path).instance == TEST_INSTANCES[0]


def test_a_session_without_an_instance_claims_and_exports_one(tmp_path: Path) -> None:
    env: dict[str, str] = {}
    held = hold_for_session(env, tmp_path)
    assert held is not None and env["HOMELAB_LAB_INSTANCE"] == str(TEST_INSTANCES[0])


def test_a_session_under_run_sh_trusts_the_lock_its_parent_holds(tmp_path: Path) -> None:
    outer = try_hold(12, tmp_path)  # as run.sh: holds 12 and names itself
    assert outer is not None
    assert hold_for_session({"HOMELAB_LAB_INSTANCE": "12", HELD_BY_ENV: str(os.getpid())}, tmp_path) is None
    with pytest.raises(LabError, match="lab instance 12 is held by another run"):
        hold_for_session({"HOMELAB_LAB_INSTANCE": "12", HELD_BY_ENV: "1"}, tmp_path)
    with pytest.raises(LabError, match="held by another run"):
        hold_for_session({"HOMELAB_LAB_INSTANCE": "12"}, tmp_path)
    outer.release()
    mine = hold_for_session({"HOMELAB_LAB_INSTANCE": "12"}, tmp_path)  # a chosen number, free: held here
    assert mine is not None and mine.instance == 12


def test_run_sh_and_the_module_agree_on_the_range() -> None:
    out = subprocess.run([sys.executable, "-m", "homelab.lab.instances"], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    first, last, lock_dir = out.stdout.split()
    assert (int(first), int(last) + 1, lock_dir) == (TEST_INSTANCES.start, TEST_INSTANCES.stop,
                                                     "/var/lib/homelab-lab/instances")
    assert "homelab.lab.instances" in (ROOT / "tests" / "run.sh").read_text()
