"""Is this block device the disk the config names, and is there anything on it? Pure.

Input is what the machine says, read-only:
`lsblk -J -b -o PATH,SERIAL,WWN,SIZE,TYPE,FSTYPE,PTTYPE,UUID,MOUNTPOINTS <dev>` and
`wipefs -n -J <dev>` (`--no-act` lists every signature, the backup GPT header at the end of
the disk included, and writes nothing). The decision:
- the identity must match (serial and size when the config gives them); a wrong disk is
  refused with the facts shown, whatever else is true;
- mounted, partitioned or carrying any signature: never formatted unless the config says
  `format: true` for this disk, and then the change is marked destructive (the apply asks);
- already the wanted filesystem: nothing to format, only mount (the normal second apply).

A Hetzner volume that grew (compute resizes it through the API) has a filesystem smaller than
its device: `grow_commands` grows it online, mounted, to the whole device (never smaller).
The filesystem's own size comes from its superblock (`dumpe2fs -h`) or, for a mounted xfs, a
live query (`xfs_info`, which asks the kernel); `df` would show the size less the metadata.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any

from homelab.config.storage import Disk


@dataclass(frozen=True)
class Device:
    path: str
    serial: str | None
    wwn: str | None
    size: int
    type: str  # disk | part | loop | ...
    fstype: str | None
    pttype: str | None
    uuid: str | None
    mountpoints: tuple[str, ...]
    children: tuple[str, ...] = ()  # paths of its partitions


@dataclass(frozen=True)
class Signature:
    type: str  # ext4, gpt, dos, LVM2_member ...
    offset: str
    usage: str = ""


@dataclass(frozen=True)
class DiskDecision:
    """What to do with one configured disk: `action` is mount | format | refuse."""

    disk: str
    action: str
    reason: str
    destructive: bool = False
    facts: tuple[str, ...] = ()
    uuid: str | None = None  # the filesystem to mount (when action is mount)


def parse_lsblk(text: str) -> Device | None:
    """The first device of lsblk's JSON (with its partitions listed as children)."""
    doc = json.loads(text)
    devices = doc.get("blockdevices") or []
    if not devices:
        return None
    return _device(devices[0])


def _device(d: dict[str, Any]) -> Device:
    mounts = tuple(m for m in (d.get("mountpoints") or []) if m)
    return Device(path=d.get("path") or "", serial=(d.get("serial") or None), wwn=(d.get("wwn") or None),
                  size=int(d.get("size") or 0), type=d.get("type") or "", fstype=d.get("fstype") or None,
                  pttype=d.get("pttype") or None, uuid=d.get("uuid") or None, mountpoints=mounts,
                  children=tuple(c.get("path") or "" for c in d.get("children") or []))


def parse_wipefs(text: str) -> tuple[Signature, ...]:
    if not text.strip():
        return ()  # wipefs -J prints nothing at all for a device without signatures
    doc = json.loads(text)
    return tuple(Signature(type=s.get("type") or "?", offset=str(s.get("offset") or ""), usage=s.get("usage") or "")
                 for s in doc.get("signatures") or [])


def describe(dev: Device) -> str:
    return f"{dev.path}: serial {dev.serial or '-'}, wwn {dev.wwn or '-'}, {dev.size} bytes, {dev.type}"


def decide(disk: Disk, dev: Device | None, signatures: tuple[Signature, ...]) -> DiskDecision:
    ident = disk.by_id or f"serial {disk.serial}"
    if dev is None:
        return DiskDecision(disk.name, "refuse", f"disk {disk.name}: {ident} not found on {disk.machine}",
                            facts=(f"looked for {ident}",))
    facts = [describe(dev)]
    wrong = []
    if disk.serial is not None and dev.serial != disk.serial:
        wrong.append(f"serial is {dev.serial or 'unknown'}, the config says {disk.serial}")
    if disk.size is not None and dev.size != disk.size:
        wrong.append(f"size is {dev.size} bytes, the config says {disk.size}")
    if wrong:
        return DiskDecision(disk.name, "refuse", f"disk {disk.name}: not the configured disk: {'; '.join(wrong)}",
                            facts=tuple(facts))
    if dev.fstype == disk.filesystem and not dev.children and dev.uuid:
        return DiskDecision(disk.name, "mount", f"disk {disk.name}: {disk.filesystem} {dev.uuid}, mount at {disk.mount}",
                            facts=tuple(facts), uuid=dev.uuid)
    found = [f"{s.type} at offset {s.offset}" for s in signatures]
    if dev.children:
        found.append(f"partitions {', '.join(dev.children)}")
    if dev.mountpoints:
        found.append(f"mounted at {', '.join(dev.mountpoints)}")
    if dev.fstype and not any(s.type == dev.fstype for s in signatures):
        found.append(f"filesystem {dev.fstype}")
    facts += [f"found: {f}" for f in found]
    if dev.mountpoints:
        return DiskDecision(disk.name, "refuse", f"disk {disk.name}: in use (mounted at {', '.join(dev.mountpoints)})",
                            facts=tuple(facts))
    if found and not disk.format:
        return DiskDecision(disk.name, "refuse",
                            f"disk {disk.name}: has data ({'; '.join(found)}); not formatting it",
                            facts=tuple(facts))
    what = "erase " + "; ".join(found) + f" and format {disk.filesystem}" if found else f"format {disk.filesystem} (empty)"
    # an empty disk loses nothing; anything found on it is erased, so the apply must ask
    return DiskDecision(disk.name, "format", f"disk {disk.name}: {what}", destructive=bool(found), facts=tuple(facts))


# udev makes /dev/disk/by-uuid/<new uuid> (the mount unit's What=) from the change event the
# mkfs causes; wait for it before the mount is planned. Then, bounded, until lsblk shows the new
# UUID: without udevadm (a container, the lab) something else refreshes what lsblk reads, and a
# mount planned before that would see a filesystem with no UUID and refuse it as foreign.
SETTLE = "if command -v udevadm >/dev/null; then udevadm settle --timeout=30; fi"


def settle(dev_path: str) -> str:
    dev = shlex.quote(dev_path)
    return (f"{SETTLE}; for i in $(seq 100); do [ -n \"$(lsblk -ndo UUID {dev} 2>/dev/null)\" ] && break; "
            "sleep 0.1; done")


def format_commands(dev_path: str, fstype: str, label: str) -> list[list[str]]:
    """argv to run (after the confirmation) for a `format` decision: wipe every signature, mkfs
    (then SETTLE, a shell line)."""
    mkfs = {"ext4": ["mkfs.ext4", "-q", "-L", label], "xfs": ["mkfs.xfs", "-q", "-L", label],
            "btrfs": ["mkfs.btrfs", "-q", "-L", label]}[fstype]
    return [["wipefs", "-a", dev_path], [*mkfs, dev_path]]


# ------------------------------------------------------------------ grow ----
GROWABLE = ("ext4", "xfs")  # btrfs: not grown by homelab (the plan says so)
# resize2fs leaves a last block group off when it could not hold its own metadata (a few MiB),
# xfs_growfs an allocation group tail under 64 blocks: a device larger than its filesystem by
# less than this is as grown as it gets. Volumes grow in whole GB, far above it.
GROW_SLACK = 16 * 2**20
FS_MARK = "@@homelab-fs@@"


def fs_size_script(dev: str = '"$dev"') -> str:
    """Shell: after FS_MARK, what the filesystem on `dev` says of its size (by its type)."""
    return (f"echo {FS_MARK}; case \"$(lsblk -ndo FSTYPE {dev})\" in "
            f"ext4) dumpe2fs -h {dev} 2>/dev/null | grep -E '^Block (count|size):';; "
            f"xfs) xfs_info {dev} 2>/dev/null | grep '^data ';; esac")


_DATA = re.compile(r"bsize=(\d+)\s+blocks=(\d+)")


def parse_fs_size(text: str) -> int | None:
    """Bytes in the filesystem, from dumpe2fs's `Block count:`/`Block size:` or xfs_info's
    `data = bsize=N blocks=M` line; None when neither is there (no tool, another type)."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if line.startswith("Block ") and ":" in line)
    count, size = fields.get("Block count", "").strip(), fields.get("Block size", "").strip()
    if count.isdigit() and size.isdigit():
        return int(count) * int(size)
    m = _DATA.search(text)
    return int(m.group(1)) * int(m.group(2)) if m else None


def needs_grow(fs_size: int | None, device_size: int) -> bool:
    return fs_size is not None and device_size - fs_size >= GROW_SLACK


def grow_commands(fstype: str, dev_path: str, mount: str) -> list[list[str]]:
    """argv that grows a mounted filesystem online to its whole device: resize2fs names the
    device, xfs_growfs the mount point (it works only on a mounted xfs)."""
    return {"ext4": [["resize2fs", dev_path]], "xfs": [["xfs_growfs", mount]]}[fstype]


def gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"
