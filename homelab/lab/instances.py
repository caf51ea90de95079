"""Which lab instance a test run may use: one nobody else holds, proven by a held flock.

A developer's lab is instance 0 and the helpers' are 1-9; test runs take the lowest free
number of TEST_INSTANCES. A run holds `<LOCK_DIR>/<N>.lock` (flock(2), exclusive) from start
to end: tests/run.sh on a shell fd (flock(1)), the pytest `lab` fixture on a Python fd. The
kernel drops the lock when the holder dies, so a lab a killed run left behind is taken down
by the next run that gets the number (the lock proves nobody uses it) — lowest-free means
that is the very next run.

    python -m homelab.lab.instances    # "10 40 /var/lib/homelab-lab/instances" for run.sh
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Iterable, MutableMapping

from homelab.lab.config import LabError

LOCK_DIR = Path("/var/lib/homelab-lab/instances")
TEST_INSTANCES = range(10, 41)  # 10.87.0.0/24 .. 10.117.0.0/24, repo ports 8090-8120
# set by tests/run.sh next to HOMELAB_LAB_INSTANCE: the PID that holds that instance's lock
HELD_BY_ENV = "HOMELAB_LAB_HELD_BY"


class InstanceLock:
    """An exclusive hold on one lab instance number, released by `release()` or by exiting."""

    def __init__(self, instance: int, fd: int) -> None:
        self.instance = instance
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __repr__(self) -> str:
        return f"InstanceLock({self.instance}, {'held' if self._fd is not None else 'released'})"


def lock_path(instance: int, lock_dir: Path = LOCK_DIR) -> Path:
    return lock_dir / f"{instance}.lock"


def try_hold(instance: int, lock_dir: Path = LOCK_DIR) -> InstanceLock | None:
    """Hold `instance` now, or None when another open file holds it (this process's included)."""
    lock_dir.mkdir(parents=True, exist_ok=True)
    # no O_TRUNC: truncating before the lock is ours would erase the holder's PID
    fd = os.open(lock_path(instance, lock_dir), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return InstanceLock(instance, fd)


def holder(instance: int, lock_dir: Path = LOCK_DIR) -> int | None:
    """The PID the last holder wrote into the lock file (for messages; the lock is the proof)."""
    try:
        text = lock_path(instance, lock_dir).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def claim_free(instances: Iterable[int] = TEST_INSTANCES, lock_dir: Path = LOCK_DIR) -> InstanceLock:
    """Hold the lowest instance number nobody holds; LabError when all are taken."""
    numbers = list(instances)
    for number in numbers:
        held = try_hold(number, lock_dir)
        if held is not None:
            return held
    raise LabError(f"every test lab instance ({numbers[0]}-{numbers[-1]}) is held by a running test run",
                   f"wait for one to finish, or see the PIDs in {lock_dir}/*.lock")


def hold_for_session(env: MutableMapping[str, str], lock_dir: Path = LOCK_DIR) -> InstanceLock | None:
    """The instance a pytest session's lab uses, held (or proven held by the run that started us).

    HOMELAB_LAB_INSTANCE set: that one — already held by our tests/run.sh (HOMELAB_LAB_HELD_BY
    names the lock's holder: returns None, the caller holds nothing), else held here; held by
    anyone else is a LabError. Unset: the lowest free test instance, exported into `env` so
    every `homelab` the tests start uses it too.
    """
    raw = env.get("HOMELAB_LAB_INSTANCE", "").strip()
    if not raw:
        held = claim_free(lock_dir=lock_dir)
        env["HOMELAB_LAB_INSTANCE"] = str(held.instance)
        return held
    if not raw.isdigit():
        raise LabError(f"HOMELAB_LAB_INSTANCE={raw!r}: should be a number", "unset it: a free one is picked")
    instance = int(raw)
    mine = try_hold(instance, lock_dir)
    if mine is not None:
        return mine
    pid = holder(instance, lock_dir)
    if pid is not None and env.get(HELD_BY_ENV, "") == str(pid):
        return None
    raise LabError(f"lab instance {instance} is held by another run (pid {pid or '?'})",
                   "unset HOMELAB_LAB_INSTANCE (a free one is picked) or wait for that run to finish")


if __name__ == "__main__":
    print(TEST_INSTANCES.start, TEST_INSTANCES.stop - 1, LOCK_DIR)
