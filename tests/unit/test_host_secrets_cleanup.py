"""A secret generated on a host (homelab.host_secrets) leaves no half-written temp when a step
fails (a full disk, a chown to a user that is not there): run here in a shell."""
from __future__ import annotations

import subprocess
from pathlib import Path

from homelab.host_secrets import generate_command


def test_a_failed_generation_leaves_no_temp_and_fails(tmp_path: Path) -> None:
    path = tmp_path / "s" / "key"
    cmd = generate_command(str(path), "password", 32, owner="no-such-user-homelab")
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert not path.exists() and list(path.parent.iterdir()) == []  # no key.new left


def test_a_generation_that_works_writes_the_secret_0600(tmp_path: Path) -> None:
    path = tmp_path / "s" / "key"
    proc = subprocess.run(["sh", "-c", generate_command(str(path), "password", 32)], capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert len(path.read_text().strip()) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key"]
