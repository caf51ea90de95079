"""Per-host cgroup directories, because the outer PID 1 is not systemd.

Without a systemd outside, nspawn makes no scope: every container would share one cgroup
tree (/payload, /system.slice/...) and boots ended `degraded` at random ("Failed at step
CGROUP spawning systemd-sysusers"). So each nspawn is moved, before it execs, into
`<own cgroup>/homelab-lab<I>/<host>` in every hierarchy; `down` kills what is left in those
directories and removes them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Mapping, Sequence

from homelab.lab.config import unescape_mount
from homelab.lab.system import kill


def _hierarchy_mounts() -> tuple[list[tuple[Path, set[str]]], Path | None]:
    """(v1 mounts with their options, the cgroup2 mount) from /proc/self/mounts."""
    v1, v2 = [], None
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            _src, point, fstype, opts = line.split()[:4]
            if fstype == "cgroup":
                v1.append((Path(unescape_mount(point)), set(opts.split(","))))
            elif fstype == "cgroup2" and v2 is None:
                v2 = Path(unescape_mount(point))
    return v1, v2


def member_dirs(group: str, member: str) -> list[Path]:
    """`<mount><own path>/<group>/<member>` for each hierarchy this process is in."""
    # read once: the file changes as the process moves
    own = Path("/proc/self/cgroup").read_text().splitlines()
    v1, v2 = _hierarchy_mounts()
    dirs = []
    for line in own:
        _id, controllers, path = line.split(":", 2)
        if controllers:
            wanted = set(controllers.split(","))
            mount = next((m for m, opts in v1 if wanted <= opts), None)
        else:
            mount = v2
        if mount is not None and mount.is_dir():
            dirs.append(mount / path.lstrip("/") / group / member)
    return dirs


def make_dirs(dirs: list[Path]) -> list[Path]:
    """Create the directories; returns those that could be made."""
    made = []
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if (d / "cpuset.cpus").exists():  # v1 cpuset: a new group starts with no CPUs/memory nodes
            for sub in (d.parent, d):
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (sub / name).read_text().strip():
                        (sub / name).write_text((sub.parent / name).read_text())
        made.append(d)
    return made


def enter(dirs: list[Path]) -> None:
    """Move the calling process into `dirs` (runs in the child between fork and exec)."""
    pid = str(os.getpid())
    for d in dirs:
        try:
            with open(d / "cgroup.procs", "w") as f:
                f.write(pid)
        except OSError:
            pass


def spawn(argv: Sequence[str], group: str, member: str, logfile: Path,
          env: Mapping[str, str] | None = None) -> tuple[subprocess.Popen[bytes], list[Path]]:
    """Start a detached process (own session, no SIGHUP) inside `<group>/<member>`.

    Returns it and its cgroup dirs; `cleanup(dirs)` later kills whatever is left in them,
    even when its PID was lost in a crash.
    """
    dirs = make_dirs(member_dirs(group, member))
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=None if env is None else dict(env), start_new_session=True,
                                preexec_fn=lambda: enter(dirs))  # joins before exec: its children follow
    return proc, dirs


def cpu_seconds(dirs: Sequence[Path]) -> float | None:
    """CPU time used so far by everything in these cgroup dirs: v1 cpuacct, else v2 cpu.stat
    (None: neither). Benchmarks read it to say what a run cost each host, whatever the load."""
    for d in dirs:
        try:
            if (d / "cpuacct.usage").exists():
                return int((d / "cpuacct.usage").read_text()) / 1e9
            if (d / "cpu.stat").exists():
                for line in (d / "cpu.stat").read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) / 1e6
        except (OSError, ValueError):
            continue
    return None


def _procs(d: Path) -> set[int]:
    pids: set[int] = set()
    for procs in d.rglob("cgroup.procs"):
        try:
            pids.update(int(p) for p in procs.read_text().split())
        except (OSError, ValueError):
            continue
    return pids


def _remove(d: Path) -> bool:
    """rmdir `d` and its sub-groups, deepest first; True when it is gone."""
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            sub.rmdir()
        except OSError:
            pass
    try:
        d.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def cleanup(dirs: list[Path], group: str) -> None:
    """Kill processes left in a member's cgroup dirs, then remove the dirs (and the group, if empty)."""
    # only ever touch <...>/<group>/<member>: a wrong list must not kill outside the lab
    dirs = [d for d in dirs if d.parent.name == group and d.is_dir()]
    for pid in set().union(*(_procs(d) for d in dirs)) if dirs else set():
        kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 3
    pending = list(dirs)
    while pending and time.monotonic() < deadline:
        pending = [d for d in pending if not _remove(d)]
        if pending:
            time.sleep(0.1)
    for d in dirs:
        try:
            d.parent.rmdir()  # the group dir, once its last host is gone
        except OSError:
            pass


def find_group_dirs(group: str, max_depth: int = 4) -> list[Path]:
    """Every `<group>` directory in every hierarchy (to clean up after a crash)."""
    v1, v2 = _hierarchy_mounts()
    roots = [m for m, _ in v1] + ([v2] if v2 else [])
    found: list[Path] = []

    def walk(d: Path, depth: int) -> None:
        try:
            entries = [e for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
        except OSError:
            return
        for e in entries:
            if e.name == group:
                found.append(Path(e.path))
            elif depth < max_depth:
                walk(Path(e.path), depth + 1)

    for root in roots:
        walk(root, 1)
    return found
