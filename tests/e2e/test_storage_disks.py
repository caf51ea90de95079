"""A real block device on a lab host, through `homelab plan/apply`: formatted only when allowed.

h1 gets a 96 MiB loop device from the lab (`lab.attach_disk`), named like a Hetzner volume
(/dev/disk/by-id/scsi-0HC_Volume_<serial>; the link and the udev data lsblk reads are the
lab's stand-in for udev, see homelab/lab/disks.py). It carries an old ext3 filesystem with a
file on it. Proven, in order:
- without `format: true` the plan refuses, and shows the facts (ext3, the size in bytes);
- with `format: true` the plan marks the format destructive; `apply --yes` without
  `--confirm-delete` does not format (the ext3 file is still there);
- with both it is formatted ext4 and mounted at the data root by a systemd mount unit with
  `nofail`; homelab's data directories live on it; a second apply changes nothing;
- a wrong size or serial in the config is refused with the facts shown;
- the disk taken out of the config: refused while a repository the config keeps lives on it;
  not unmounted while a process works in it (the error says so and what to do); then unmounted, its mount unit stopped, disabled and removed, the filesystem and its files
  untouched on the device; a second apply changes nothing.

Run: HOMELAB_LAB_INSTANCE=N LAB_HOSTS=1 pytest tests/e2e/test_storage_disks.py
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.demo import render_lab_config
from tests.e2e.util import homelab

pytestmark = pytest.mark.lab

HOST = "h1"
SIZE = 96 * 2**20
SERIAL = "4242001"
ROOT = "/srv/homelab"


class Bench:
    def __init__(self, lab: Any, tmp: Path, by_id: str, loop: str) -> None:
        self.lab, self.tmp, self.by_id, self.loop = lab, tmp, by_id, loop
        self.cfg = tmp / "disks.yaml"

    def write(self, disk: str | None, extra: str = "") -> Path:
        disks = f"  disks:\n    - {{name: data, machine: {HOST}, {disk}mount: {ROOT}}}\n" if disk is not None else ""
        self.cfg.write_text(render_lab_config(self.lab.inventory(), hosts=[HOST]) + f"""\
storage:
  data_root: {ROOT}
{disks}{extra}""")
        return self.cfg

    def homelab(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real CLI, as a user runs it (its state and logs in this test's own XDG dir)."""
        return homelab(*args, env={"XDG_STATE_HOME": str(self.tmp / "xdg"), "DISKS_TEST_PASSWORD": "pw-4f1c"})

    def sh(self, cmd: str) -> str:
        return self.lab.run(HOST, cmd, check=True).stdout


@pytest.fixture(scope="module")
def bench(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    lab.reset(HOST)
    tmp = tmp_path_factory.mktemp("disks")
    by_id = lab.attach_disk(HOST, SIZE, serial=SERIAL)
    loop = next(d.loop for d in lab.attached_disks(HOST) if d.by_id == by_id)
    # an old filesystem with data on it, made on the outer machine (the host has no mkfs yet)
    subprocess.run(["mkfs.ext3", "-q", "-L", "old", loop], check=True)
    subprocess.run(["debugfs", "-w", "-R", "write /etc/hostname keep-me", loop], check=True, capture_output=True)
    try:
        yield Bench(lab, tmp, by_id, loop)
    finally:
        lab.detach_disk(HOST, by_id)


def old_file_there(b: Bench) -> bool:
    r = subprocess.run(["debugfs", "-R", "ls -l /", b.loop], capture_output=True, text=True)
    return "keep-me" in r.stdout


def test_a_disk_with_a_filesystem_is_refused_without_format_true(bench: Bench) -> None:
    cfg = bench.write(f"by_id: {bench.by_id}, ")
    r = bench.homelab("plan", str(cfg), "--accept-new-host-keys")
    assert r.returncode == 1, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "disk data: has data (ext3 at offset 0x438); not formatting it" in text, text
    assert f"serial {SERIAL}" in text and f"{SIZE} bytes" in text, text


def test_format_true_alone_is_not_enough(bench: Bench) -> None:
    cfg = bench.write(f"by_id: {bench.by_id}, format: true, ")
    plan = bench.homelab("plan", str(cfg))
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert "disk data: erase ext3 at offset 0x438 and format ext4" in plan.stdout, plan.stdout
    assert "destructive" in plan.stdout.lower(), plan.stdout
    r = bench.homelab("apply", str(cfg), "--yes")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not confirmed" in r.stdout + r.stderr, r.stdout + r.stderr
    assert old_file_there(bench)
    assert bench.sh(f"lsblk -ndo FSTYPE {bench.by_id}").strip() == "ext3"


def test_with_the_confirmation_it_is_formatted_and_mounted(bench: Bench) -> None:
    cfg = bench.write(f"by_id: {bench.by_id}, format: true, ")
    r = bench.homelab("apply", str(cfg), "--yes", "--confirm-delete")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not old_file_there(bench)
    assert bench.sh(f"lsblk -ndo FSTYPE,LABEL {bench.by_id}").split() == ["ext4", "data"]
    unit = bench.sh("cat /etc/systemd/system/srv-homelab.mount")
    uuid = bench.sh(f"lsblk -ndo UUID {bench.by_id}").strip()
    assert f"What=/dev/disk/by-uuid/{uuid}" in unit and "nofail" in unit, unit
    assert bench.sh("systemctl is-active srv-homelab.mount; systemctl is-enabled srv-homelab.mount").split() == [
        "active", "enabled"]
    assert bench.sh(f"findmnt -n -o SOURCE,FSTYPE {ROOT}").split() == [bench.loop, "ext4"]
    # the data root is on the disk: a file written there lands on the loop device
    bench.sh(f"echo on-the-disk >{ROOT}/probe.txt && sync")
    out = subprocess.run(["debugfs", "-R", "cat /probe.txt", bench.loop], capture_output=True, text=True).stdout
    assert out.strip() == "on-the-disk"


def test_second_apply_changes_nothing(bench: Bench) -> None:
    cfg = bench.write(f"by_id: {bench.by_id}, format: true, ")
    r = bench.homelab("apply", str(cfg), "--yes", "--confirm-delete")
    assert r.returncode == 0, r.stdout + r.stderr
    plan = bench.homelab("plan", str(cfg))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert bench.sh(f"cat {ROOT}/probe.txt").strip() == "on-the-disk"  # formatted once only


@pytest.mark.parametrize("ident, why", [
    (f"size: {SIZE + 4096}, ", f"size is {SIZE} bytes, the config says {SIZE + 4096}"),
    ("serial: '999', ", f"serial is {SERIAL}, the config says 999"),
])
def test_a_wrong_size_or_serial_is_refused_with_the_facts(bench: Bench, ident: str, why: str) -> None:
    cfg = bench.write(f"by_id: {bench.by_id}, {ident}format: true, ")
    r = bench.homelab("plan", str(cfg))
    assert r.returncode == 1, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert f"disk data: not the configured disk: {why}" in text, text
    assert f"{bench.loop}: serial {SERIAL}" in text, text
    assert bench.sh(f"findmnt -n -o SOURCE {ROOT}").strip() == bench.loop  # nothing touched


GONE = "disk data: unmount and remove its mount unit (data kept on the device)"
# a local repository on the disk: what the config still keeps there (an app's data is the other case,
# tests/unit/test_storage_disk_lifecycle.py)
KEPT = f"""\
  password: {{env: DISKS_TEST_PASSWORD}}
  repositories:
    - {{name: here, type: local, machine: {HOST}, path: {ROOT}/restic}}
"""


def test_removing_the_disk_is_refused_while_the_config_keeps_a_repository_on_it(bench: Bench) -> None:
    r = bench.homelab("plan", str(bench.write(None, KEPT)))
    assert r.returncode == 1, r.stdout + r.stderr
    assert (f"{HOST}: disk data left the config, but {ROOT} still holds repository here ({ROOT}/restic): not "
            f"unmounting it (move that off the disk first, or keep disk data in storage.disks)") in r.stdout + r.stderr
    assert bench.sh(f"findmnt -n -o SOURCE {ROOT}").strip() == bench.loop


def test_a_disk_in_use_is_not_unmounted_and_the_error_says_why(bench: Bench) -> None:
    """A process working in the mount (this test's own `sleep`, stopped by its PID) keeps the
    disk busy: the apply fails with homelab's sentence and leaves the mount and its unit."""
    # the subshell's own output goes nowhere (ssh would wait for it); exec: $! is the sleep itself
    pid = bench.sh(f"(cd {ROOT} && exec setsid sleep 300) >/dev/null 2>&1 </dev/null & echo $!").strip()
    try:
        r = bench.homelab("apply", str(bench.write(None)), "--yes")
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"homelab: {ROOT} is still in use" in r.stdout + r.stderr and "then run apply again" in r.stdout + r.stderr
        assert bench.sh(f"findmnt -n -o SOURCE {ROOT}").strip() == bench.loop
        assert bench.sh("ls /etc/systemd/system/srv-homelab.mount").strip() == "/etc/systemd/system/srv-homelab.mount"
    finally:
        bench.sh(f"kill {int(pid)} || true")


def test_removing_the_disk_unmounts_it_and_keeps_its_data(bench: Bench) -> None:
    cfg = bench.write(None)
    plan = bench.homelab("plan", str(cfg))
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert f"- {HOST}: {GONE}" in plan.stdout and "DESTRUCTIVE" not in plan.stdout, plan.stdout
    r = bench.homelab("apply", str(cfg), "--yes")  # no --confirm-delete: nothing is erased
    assert r.returncode == 0, r.stdout + r.stderr
    assert bench.sh(f"findmnt -n {ROOT} || echo none").strip() == "none"
    assert bench.sh("ls /etc/systemd/system/srv-homelab.mount 2>&1 || true").strip().endswith("No such file or directory")
    assert bench.sh("systemctl is-enabled srv-homelab.mount 2>&1 || true").strip() in ("not-found", "disabled")
    assert bench.sh("ls /etc/systemd/system/multi-user.target.wants/ | grep -c srv-homelab || true").strip() == "0"
    # the device keeps its filesystem and the file written on it
    assert bench.sh(f"lsblk -ndo FSTYPE,LABEL {bench.by_id}").split() == ["ext4", "data"]
    out = subprocess.run(["debugfs", "-R", "cat /probe.txt", bench.loop], capture_output=True, text=True).stdout
    assert out.strip() == "on-the-disk"
    again = bench.homelab("plan", str(cfg))
    assert again.returncode == 0, again.stdout + again.stderr
