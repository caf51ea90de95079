"""Disk identity and the refuse-unless-format decision, from real lsblk/wipefs JSON shapes."""
from __future__ import annotations

import json

from homelab.config.storage import Disk
from homelab.layers.storage.disks import decide, format_commands, parse_lsblk, parse_wipefs

SERIAL, SIZE = "WD-WCC7K0000000", 4000787030016


def lsblk(fstype: str | None = None, pttype: str | None = None, children: bool = False,
          mounts: list[str | None] | None = None, serial: str = SERIAL, size: int = SIZE) -> str:
    dev = {"path": "/dev/sdb", "serial": serial, "wwn": "0x50014ee2b5f1a2c3", "size": size, "type": "disk",
           "fstype": fstype, "pttype": pttype, "uuid": "0b1c-uuid" if fstype else None,
           "mountpoints": mounts or [None]}
    if children:
        dev["children"] = [{"path": "/dev/sdb1", "serial": None, "wwn": None, "size": size - 2048, "type": "part",
                            "fstype": "ntfs", "pttype": "gpt", "uuid": "X", "mountpoints": [None]}]
    return json.dumps({"blockdevices": [dev]})


GPT = json.dumps({"signatures": [{"device": "sdb", "offset": "0x200", "type": "gpt", "uuid": "u", "label": None},
                                 {"device": "sdb", "offset": "0x3a3817d5e00", "type": "gpt", "uuid": "u"},
                                 {"device": "sdb", "offset": "0x1fe", "type": "PMBR", "uuid": None}]})
DISK = Disk("data1", "nas", serial=SERIAL, size=SIZE, mount="/srv/homelab")


def test_parse() -> None:
    dev = parse_lsblk(lsblk(pttype="gpt", children=True))
    assert dev is not None and dev.serial == SERIAL and dev.size == SIZE and dev.children == ("/dev/sdb1",)
    assert dev.mountpoints == ()
    sigs = parse_wipefs(GPT)
    assert [s.type for s in sigs] == ["gpt", "gpt", "PMBR"]
    assert parse_wipefs("") == () and parse_lsblk('{"blockdevices": []}') is None


def test_wrong_serial_or_size_is_refused_with_the_facts() -> None:
    d = decide(DISK, parse_lsblk(lsblk(serial="OTHER", size=1000)), ())
    assert d.action == "refuse" and "serial is OTHER, the config says WD-WCC7K0000000" in d.reason
    assert "size is 1000 bytes" in d.reason and "/dev/sdb: serial OTHER" in d.facts[0]
    # even with format: true a wrong disk is never touched
    assert decide(Disk(**{**DISK.__dict__, "format": True}), parse_lsblk(lsblk(serial="OTHER")), ()).action == "refuse"


def test_signatures_refuse_unless_format_true_then_destructive() -> None:
    dev = parse_lsblk(lsblk(pttype="gpt", children=True))
    d = decide(DISK, dev, parse_wipefs(GPT))
    assert d.action == "refuse" and "has data" in d.reason and "gpt at offset 0x200" in d.reason
    assert any("partitions /dev/sdb1" in f for f in d.facts)
    f = decide(Disk(**{**DISK.__dict__, "format": True}), dev, parse_wipefs(GPT))
    assert f.action == "format" and f.destructive and "erase" in f.reason


def test_empty_disk_formats_without_asking_and_existing_fs_mounts() -> None:
    d = decide(DISK, parse_lsblk(lsblk()), ())
    assert d.action == "format" and not d.destructive and "(empty)" in d.reason
    ext4 = json.dumps({"signatures": [{"offset": "0x438", "type": "ext4"}]})
    m = decide(DISK, parse_lsblk(lsblk(fstype="ext4")), parse_wipefs(ext4))
    assert m.action == "mount" and m.uuid == "0b1c-uuid"  # the second apply: nothing to format


def test_mounted_or_missing_disk_is_refused() -> None:
    d = decide(Disk(**{**DISK.__dict__, "format": True}), parse_lsblk(lsblk(fstype="xfs", mounts=["/data"])),
               parse_wipefs(json.dumps({"signatures": [{"offset": "0x0", "type": "xfs"}]})))
    assert d.action == "refuse" and "in use (mounted at /data)" in d.reason
    assert decide(DISK, None, ()).action == "refuse"


def test_format_commands() -> None:
    assert format_commands("/dev/sdb", "ext4", "data1") == [["wipefs", "-a", "/dev/sdb"],
                                                             ["mkfs.ext4", "-q", "-L", "data1", "/dev/sdb"]]


def test_the_plan_text_marks_a_format_destructive() -> None:
    import io

    from homelab.events import LayerPlanned
    from homelab.model import Change, LayerPlan
    from homelab.render_text import TextRenderer

    out = io.StringIO()
    erase = Change("storage", "h1", "create", "disk d: erase ext3 at offset 0x438 and format ext4", host="h1",
                   destructive=True, detail=("/dev/vdb: serial S1, wwn -, 100 bytes, disk",))
    mount = Change("storage", "h1", "create", "mount disk d at /srv/homelab", host="h1")
    TextRenderer(out, io.StringIO())(LayerPlanned("storage", LayerPlan("storage", changes=(erase, mount))))
    assert out.getvalue().splitlines()[1:] == [
        "  + h1: disk d: erase ext3 at offset 0x438 and format ext4  [DESTRUCTIVE: apply needs --confirm-delete]",
        "      /dev/vdb: serial S1, wwn -, 100 bytes, disk",
        "  + h1: mount disk d at /srv/homelab",
    ]
