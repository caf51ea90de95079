"""Shared pytest setup: the `lab` marker and the session-scoped `lab` fixture.

`lab` brings up local Debian hosts once per session (default: 3 Debian 13 + 1 Debian 12,
env LAB_HOSTS, e.g. "trixie:3,bookworm:1" or "2") on a lab instance this run holds: the one
tests/run.sh took, HOMELAB_LAB_INSTANCE if set, else the lowest free of 10-40
(homelab/lab/instances.py). It starts with a `down` of that instance only (what a killed run
of the same number left) and takes down only that one at the end. It skips, with the reason, where the machine cannot run the lab
(not root, tools missing: see `homelab.lab.deps_command()`) or when HOMELAB_SKIP_LAB=1.
LAB_KEEP_UP=1 leaves the hosts running after the session, for debugging.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from homelab.lab import Lab

DEFAULT_LAB_HOSTS = "trixie:3,bookworm:1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab: needs root and the local lab of systemd-nspawn Debian hosts")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.environ.get("HOMELAB_SKIP_LAB") == "1":
        pytest.skip("lab tests skipped: HOMELAB_SKIP_LAB=1")
    from homelab.lab import Lab, missing_requirements, parse_hosts_spec

    why = missing_requirements()
    if why:
        pytest.skip(f"lab tests skipped: {why}")
    from homelab.lab.instances import hold_for_session

    counts = list(parse_hosts_spec(os.environ.get("LAB_HOSTS", DEFAULT_LAB_HOSTS)).items())
    exported = "HOMELAB_LAB_INSTANCE" not in os.environ
    held = hold_for_session(os.environ)  # exported: the `homelab` commands tests start use it too
    the_lab = Lab()
    try:
        # mounts, netns and the bridge outlive a killed session: the lock proves that run is gone
        the_lab.down()
        names = the_lab.up(counts[0][1], counts[0][0], also=dict(counts[1:]))
        # the hosts every test module may rely on (tests may add more, e.g. the stand-in cloud)
        the_lab.baseline_hosts = names  # type: ignore[attr-defined]
        yield the_lab
    finally:
        if os.environ.get("LAB_KEEP_UP") != "1":
            the_lab.down()
        else:
            print(f"\nLAB_KEEP_UP=1: lab instance {the_lab.config.instance} is still up "
                  f"(HOMELAB_LAB_INSTANCE={the_lab.config.instance} homelab lab down)")
        if held is not None:
            held.release()
        if exported:
            del os.environ["HOMELAB_LAB_INSTANCE"]
