"""The lab's disks, pure parts: which loop devices are ours, and the udev stand-in's script."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from homelab.lab import disks
from homelab.lab.config import LabError

LOSETUP = json.dumps({"loopdevices": [
    {"name": "/dev/loop0", "back-file": "/var/lib/homelab-lab/1/disks/h1-100000.img"},
    {"name": "/dev/loop1", "back-file": "/var/lib/homelab-lab/10/disks/h1-100000.img"},
    {"name": "/dev/loop2", "back-file": "/var/lib/homelab-lab/1/disks/h2-7.img (deleted)"},
    {"name": "/dev/loop3", "back-file": "/home/someone/vm.img"},
]})


def test_parse_losetup_lists_every_device_with_its_file() -> None:
    got = disks.parse_losetup(LOSETUP)
    assert got["/dev/loop3"] == "/home/someone/vm.img" and len(got) == 4
    assert disks.parse_losetup("") == {}  # losetup prints nothing when no loop device is set up


def test_only_loop_devices_on_this_labs_images_are_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    class Done:
        stdout = LOSETUP

    monkeypatch.setattr(disks, "run", lambda argv, **kw: Done())
    # lab 1 is not lab 10 (a prefix of the path is not enough), a deleted image is still ours
    assert sorted(disks.loops_under(Path("/var/lib/homelab-lab/1/disks"))) == ["/dev/loop0", "/dev/loop2"]


def test_hetzner_style_names_and_bad_input_refused(tmp_path: Path) -> None:
    assert disks.by_id_path("4242") == "/dev/disk/by-id/scsi-0HC_Volume_4242"
    with pytest.raises(LabError, match="serial"):
        disks.make(tmp_path, "h1", "../x", 1024)
    with pytest.raises(LabError, match="size"):
        disks.make(tmp_path, "h1", "1", disks.MAX_SIZE + 1)
    assert not list(tmp_path.iterdir())  # nothing made


def test_the_udev_stand_in_writes_what_lsblk_reads() -> None:
    script = disks.udev_script("/dev/loop7", "4242")
    assert script.startswith("#!/bin/sh\n# homelab lab: stand-in for udev")
    assert "blkid -p -o udev \"$dev\"" in script  # the filesystem as the device says, not cached
    for line in ("E:ID_SCSI_SERIAL=$serial", "S:disk/by-id/scsi-0HC_Volume_$serial"):
        assert line in script
    assert "dev=/dev/loop7; name=loop7; serial=4242" in script
    assert disks.unit_name("/dev/loop7") == "lab-udev-loop7.service"


def test_a_grown_disk_gets_a_longer_file_and_its_loop_device_told(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[list[str]] = []
    monkeypatch.setattr(disks, "run", lambda argv, **kw: ran.append(argv))
    image = tmp_path / "h1-7.img"
    image.write_bytes(b"keep")
    disk = disks.LabDisk("h1", "7", 4, str(image), "/dev/loop9")
    grown = disks.grow(disk, 8192)
    assert (grown.size, image.stat().st_size, image.read_bytes()[:4]) == (8192, 8192, b"keep")
    assert ran == [["losetup", "-c", "/dev/loop9"]]  # the kernel re-reads the loop device's size
    with pytest.raises(LabError, match="only larger"):
        disks.grow(grown, 4096)  # a volume never shrinks
