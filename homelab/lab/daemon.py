"""Long-running helper processes of a lab on the outer machine (the apt repo server, the registry).

Each is started detached inside the lab's cgroup (so `down` finds it even when its PID file is
lost), recorded by PID, recognised again only by that PID *and* its command line, and stopped
by that PID: never by name.
"""
from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from homelab.lab import cgroups
from homelab.lab.config import LabError
from homelab.lab.system import kill, pid_alive, proc_cmdline, read_pid, wait_gone


@dataclass(frozen=True)
class Daemon:
    name: str  # "repo-http", "registry": file names in the run dir and the cgroup member
    run_dir: Path
    markers: tuple[str, ...]  # argv words that identify our process (with the PID)

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def cgroups_file(self) -> Path:
        return self.run_dir / f"{self.name}.cgroups"

    @property
    def logfile(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The recorded PID, if that process still runs with our argv."""
        pid = read_pid(self.pid_file)
        if pid and pid_alive(pid):
            argv = proc_cmdline(pid)
            if all(any(m in word for word in argv) for m in self.markers):
                return pid
        return None

    def start(self, argv: Sequence[str], group: str, ready: Callable[[], bool], *, timeout: float = 10,
              hint: str = "", env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes] | None:
        """Start it unless it runs; wait until `ready()`. Returns the new child (to be reaped) or None."""
        if self.pid():
            return None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        proc, dirs = cgroups.spawn(argv, group, self.name, self.logfile, env=env)
        self.pid_file.write_text(f"{proc.pid}\n")
        self.cgroups_file.write_text("".join(f"{d}\n" for d in dirs))
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = self.logfile.read_text(errors="replace").strip().splitlines()[-3:]
                self.stop(group)
                raise LabError(f"{self.name} did not start: " + " | ".join(tail), hint or f"see {self.logfile}")
            time.sleep(0.05)
        return proc

    def stop(self, group: str) -> None:
        pid = self.pid()
        if pid:
            kill(pid, signal.SIGTERM)
            wait_gone(pid, 5)
        if self.cgroups_file.exists():  # kills it if SIGTERM did not
            cgroups.cleanup([Path(p) for p in self.cgroups_file.read_text().split()], group)
        self.pid_file.unlink(missing_ok=True)
        self.cgroups_file.unlink(missing_ok=True)
