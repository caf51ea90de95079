"""Atomic file writes on hosts (homelab.provision.file_writes): the commands run for real in a
shell here, and the full-disk message."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from homelab.provision.file_writes import (
    parse_space, render_cleanup, render_failure, render_move_into_place, render_space_probe, temp_beside)


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30)


def test_the_temp_file_is_beside_the_destination() -> None:
    assert temp_beside("/etc/wireguard/wg0.conf", "1a2b") == "/etc/wireguard/.wg0.conf.homelab-1a2b"
    assert temp_beside("x", "1a2b") == "./.x.homelab-1a2b"


def test_moving_into_place_replaces_the_file_and_keeps_its_mode(tmp_path: Path) -> None:
    dest, temp = tmp_path / "wg0.conf", tmp_path / ".wg0.conf.homelab-1"
    dest.write_text("old\n")
    dest.chmod(0o600)
    inode = dest.stat().st_ino
    temp.write_text("new\n")
    temp.chmod(0o644)
    assert sh(render_move_into_place(str(temp), str(dest))).returncode == 0
    assert dest.read_text() == "new\n" and not temp.exists()
    assert dest.stat().st_mode & 0o777 == 0o600  # the old file's mode, before pyinfra's own chmod
    assert dest.stat().st_ino != inode  # renamed over, not written into


def test_a_new_file_and_a_name_with_spaces(tmp_path: Path) -> None:
    dest, temp = tmp_path / "a b.conf", tmp_path / ".a b.conf.homelab-1"
    temp.write_text("new\n")
    assert sh(render_move_into_place(str(temp), str(dest))).returncode == 0
    assert dest.read_text() == "new\n" and not temp.exists()


def test_a_symlinked_destination_is_written_through(tmp_path: Path) -> None:
    real, link, temp = tmp_path / "real", tmp_path / "link", tmp_path / ".link.homelab-1"
    real.write_text("old\n")
    link.symlink_to(real)
    temp.write_text("new\n")
    assert sh(render_move_into_place(str(temp), str(link))).returncode == 0
    assert link.is_symlink() and real.read_text() == "new\n" and not temp.exists()


def test_cleanup_removes_both_temp_files_and_minds_missing_ones(tmp_path: Path) -> None:
    a, b = tmp_path / ".x.homelab-1", tmp_path / "staging"
    a.touch()
    assert sh(render_cleanup(str(a), str(b), "")).returncode == 0
    assert not a.exists()


def test_the_space_probe_names_the_mount(tmp_path: Path) -> None:
    space = parse_space(sh(render_space_probe(str(tmp_path / "f"))).stdout)
    assert space is not None and space[0] >= 0 and os.path.ismount(space[1])
    assert parse_space("") is None and parse_space("Avail /") is None


def test_a_full_filesystem_is_named_with_its_host() -> None:
    message, hint = render_failure("h2", "/etc/wireguard/wg0.conf", 612, (0, "/etc/wireguard"), "Failure")
    assert message == ("no space left on /etc/wireguard on h2 (writing /etc/wireguard/wg0.conf, 612 bytes; "
                       "0 KiB free): /etc/wireguard/wg0.conf is as it was, nothing half-written left")
    assert hint == "free space on /etc/wireguard of h2 (`df -h /etc/wireguard`), then apply again"
    # cp's own words count even when df could not be asked
    message, _ = render_failure("h2", "/srv/x", 10, None, "cp: error writing: No space left on device")
    assert message.startswith("no space left on /srv on h2")


def test_another_failure_keeps_its_own_words() -> None:
    message, hint = render_failure("h2", "/etc/x", 10, (900000, "/"), "cp: cannot create '/etc/x': Permission denied")
    assert message == ("writing /etc/x on h2 failed: cp: cannot create '/etc/x': Permission denied: "
                       "/etc/x is as it was, nothing half-written left")
    assert "retries" in hint
