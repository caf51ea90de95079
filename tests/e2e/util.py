"""Helpers for end-to-end tests: run the real `homelab` CLI as a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def homelab(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "homelab", *args], capture_output=True, text=True,
                          cwd=cwd, env=e, timeout=timeout, stdin=subprocess.DEVNULL)


def state_of(config: Path) -> dict[str, Any]:
    return json.loads(config.with_name(config.stem + ".state.json").read_text())


def count_ssh_connections(lab: Any, host: str) -> int:
    """New TCP connections to port 22 of a host so far, counted by an nft rule on the host.

    The first call installs the counter. Every call is itself one ssh connection, counted
    before the command runs: two reads in a row differ by exactly 1.
    """
    script = (
        "command -v nft >/dev/null || { apt-get update -qq && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null; }\n"
        "nft list table inet hltest >/dev/null 2>&1 || nft -f - <<'EOF'\n"
        "table inet hltest {\n"
        "  chain input { type filter hook input priority -200; policy accept;\n"
        "    tcp dport 22 ct state new counter name ssh_new\n  }\n"
        "  counter ssh_new { }\n}\nEOF\n"
        "nft -j list counter inet hltest ssh_new"
    )
    out = lab.run(host, script, check=True).stdout
    doc = json.loads(out)
    return next(item["counter"]["packets"] for item in doc["nftables"] if "counter" in item)


def homelab_on_terminal(*args: str, answers: str, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI on a pseudo-terminal (as a person would) and type `answers` when asked."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes homelab on the terminal
        os.execv(sys.executable, [sys.executable, "-m", "homelab", *args])
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it is done
                break
            if not chunk:
                break
            out += chunk
            if not sent and b"[y/N]" in out:
                os.write(fd, answers.encode())
                sent = True
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace")
