"""The state file on a full disk (issue 12's drill, operator side): a clear error naming the
mount, the previous version intact, no temp file left. On a real 64 KiB tmpfs when root (the
suite runs as root, like the lab tests), and with ENOSPC injected at fsync everywhere."""
from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from homelab.errors import HomelabError
from homelab.state import mount_of, write_atomic


def test_enospc_keeps_the_old_version_and_names_the_mount(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "c.state.json"
    write_atomic(path, '{"version": 1}\n')

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(HomelabError) as caught:
        write_atomic(path, '{"version": 1, "new": true}\n')
    mount = mount_of(tmp_path)
    assert caught.value.message == (f"no space left on {mount} on this machine: {path} not written "
                                     "(the previous version stays, nothing half-written left)")
    assert f"df -h {mount}" in caught.value.hint
    assert path.read_text() == '{"version": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.state.json"]


def test_other_os_errors_are_not_called_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", denied)
    with pytest.raises(OSError) as caught:
        write_atomic(tmp_path / "s.json", "{}\n")
    assert not isinstance(caught.value, HomelabError) and caught.value.errno == errno.EIO


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (the suite runs as root)")
def test_a_real_full_tmpfs(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "hl-test-full", str(mnt)], check=True)
    try:
        path = mnt / "c.state.json"
        write_atomic(path, "{}\n")
        subprocess.run(["dd", "if=/dev/zero", f"of={mnt / 'filler'}", "bs=4k"], capture_output=True)  # until full
        with pytest.raises(HomelabError) as caught:
            write_atomic(path, '{"big": "' + "x" * 200_000 + '"}\n')
        assert caught.value.message.startswith(f"no space left on {mnt} on this machine")
        assert path.read_text() == "{}\n"
        assert sorted(p.name for p in mnt.iterdir()) == ["c.state.json", "filler"]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
