"""The machine homelab runs on (`address: local`): probe scripts as local processes, no SSH.

A one-off server runs the executable on itself; reaching itself over SSH would need a key or a
forwarded agent for nothing. So a local host's session is a shell on this machine, as root
(`sudo -n` when homelab runs as another user, like a remote non-root login), and its operations
go through pyinfra's `@local` connector in the worker. No host key is involved: there is no
network between homelab and the host it changes.
"""
from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass

from homelab.errors import HomelabError
from homelab.hosts import HostTarget


def shell_argv() -> list[str]:
    """`sh -s` as root: directly when we are root, else through non-interactive sudo."""
    return ["sh", "-s"] if os.geteuid() == 0 else ["sudo", "-n", "sh", "-s"]


@dataclass(frozen=True)
class LocalResult:
    rc: int
    stdout: str
    stderr: str


class LocalSession:
    """Same surface as ssh.Connection (`run_script`, `close`, `commands`) for this machine."""

    def __init__(self, target: HostTarget) -> None:
        self.target = target
        self.commands = 0  # counted like remote commands: the no-op budget is the same
        self._lock = threading.Lock()

    def run_script(self, script: str, timeout: float = 600.0) -> LocalResult:
        with self._lock:
            self.commands += 1
        try:
            proc = subprocess.run(shell_argv(), input=script, capture_output=True, text=True, timeout=timeout,
                                  errors="replace")
        except subprocess.TimeoutExpired:
            raise HomelabError(f"{self.target.name}: command timed out after {timeout:.0f} s") from None
        except OSError as exc:
            raise HomelabError(f"{self.target.name}: cannot start a local shell: {exc}",
                               "run homelab as root, or allow this user `sudo -n`") from exc
        return LocalResult(proc.returncode, proc.stdout, proc.stderr)

    def close(self) -> None:
        pass
