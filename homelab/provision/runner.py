"""Parent side of the pyinfra worker: start it, send the job on stdin, stream its events."""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from typing import Any, Iterator, Mapping, Sequence

from homelab.hosts import HostTarget
from homelab.model import Op

log = logging.getLogger("homelab")


def worker_argv() -> list[str]:
    """How to start the worker: `python -m ...`, or the frozen binary's hidden subcommand."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "__pyinfra-worker"]
    return [sys.executable, "-m", "homelab.provision.worker"]


def known_hosts_text(pins: Mapping[HostTarget, str]) -> str:
    """known_hosts lines for pinned keys ("[addr]:port" when the port is not 22)."""
    return "".join(f"{t.known_hosts_name} {' '.join(key.split()[:2])}\n" for t, key in pins.items())


class WorkerRun:
    """One worker process; iterate `events()`; `cancel()` stops it (by its PID, ours)."""

    def __init__(self, hosts: Sequence[HostTarget], ops: Mapping[str, Sequence[Op]],
                 pins: Mapping[HostTarget, str], redact: Sequence[str] = (), parallel: int = 10) -> None:
        self.job = {
            "hosts": [{"name": h.name, "address": h.address, "port": h.port, "user": h.user,
                       "key_path": h.key_path, "sudo": h.sudo} for h in hosts],
            "known_hosts": known_hosts_text(pins),
            "ops": {name: [op.to_json() for op in host_ops] for name, host_ops in ops.items()},
            "parallel": parallel,
            "redact": list(redact),
        }
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_tail: list[str] = []

    def events(self) -> Iterator[dict[str, Any]]:
        env = dict(os.environ, PYINFRA_PROGRESS="off", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(worker_argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr
        err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        err_reader.start()
        self.proc.stdin.write(json.dumps(self.job))
        self.proc.stdin.close()
        done = False
        for line in self.proc.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            done = done or event.get("event") == "done"
            yield event
        rc = self.proc.wait()
        err_reader.join(timeout=2)
        if not done:
            log.warning("the provisioning worker ended early (exit %s); its last output:\n%s", rc,
                        "\n".join(self.stderr_tail))
            tail = " | ".join(self.stderr_tail[-3:]) or f"exit code {rc}"
            yield {"event": "run_error", "error": f"provisioning worker ended early: {tail}"}

    def _read_stderr(self) -> None:
        assert self.proc and self.proc.stderr
        for line in self.proc.stderr:
            if line.strip():
                self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-20:]

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
