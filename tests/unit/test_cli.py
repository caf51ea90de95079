"""CLI contract: exit codes, one-line errors without tracebacks, no host touched on bad input."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HOMELAB = [sys.executable, "-m", "homelab"]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ, **(env or {}))
    return subprocess.run([*HOMELAB, *args], capture_output=True, text=True, cwd=cwd, env=e, timeout=60)


class Listener:
    """A loopback TCP listener that counts connections (stands in for a host's sshd)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
                self.count += 1
                conn.close()
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture()
def listener() -> Listener:
    lst = Listener()
    yield lst
    lst.close()


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("homelab ")


def test_malformed_config_exit_2_no_traceback_no_connection(tmp_path: Path, listener: Listener) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"compute:\n  machines:\n    - name: h1\n      address: 127.0.0.1\n      port: {listener.port}\n"
                   f"      usr: admin\n")
    for cmd in ("validate", "plan", "apply", "status"):
        out = run(cmd, str(cfg), "--yes") if cmd == "apply" else run(cmd, str(cfg))
        assert out.returncode == 2, (cmd, out.stderr)
        assert f"{cfg}:6:7: compute.machines[0].usr: unknown key (hint: did you mean 'user'?)" in out.stderr
        assert "Traceback" not in out.stderr + out.stdout
    assert listener.count == 0, "a bad config must not touch any host"


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    out = run("plan", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2 and "no such file" in out.stderr and "Traceback" not in out.stderr


def test_apply_without_terminal_needs_yes(tmp_path: Path, listener: Listener) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"compute:\n  machines:\n    - {{name: h1, address: 127.0.0.1, port: {listener.port}}}\n")
    out = run("apply", str(cfg))
    assert out.returncode == 2 and "--yes" in out.stderr
    assert listener.count == 0


def test_unknown_host_key_refused_without_permission(tmp_path: Path, listener: Listener) -> None:
    """A host that is not an SSH server fails cleanly: exit 1, log path printed, no traceback."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"compute:\n  machines:\n    - {{name: h1, address: 127.0.0.1, port: {listener.port}}}\n")
    out = run("plan", str(cfg), env={"XDG_STATE_HOME": str(tmp_path / "st")})
    assert out.returncode == 1
    assert "FAILED h1" in out.stderr and "Traceback" not in out.stderr


def test_usage_error_exit_2() -> None:
    assert run("plan").returncode == 2
    assert run("frobnicate").returncode == 2


def test_cli_import_does_not_import_textual_or_pyinfra() -> None:
    code = "import sys, homelab.cli; homelab.cli.build_parser(); " \
           "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'pyinfra', 'gevent')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
