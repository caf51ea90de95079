"""Block devices for lab hosts: a sparse file, a loop device, and the udev work a container lacks.

    by_id = lab.attach_disk("h1", 64 * 2**20)      # -> /dev/disk/by-id/scsi-0HC_Volume_<serial>
    lab.resize_disk("h1", by_id, 128 * 2**20)      # grows (stand-in for a volume resize)
    lab.detach_disk("h1", by_id)                    # `down` and `reset` detach what is left

The outer machine makes `<lab dir>/disks/<host>-<serial>.img` (sparse) and a loop device on
it (`losetup --find`); the host gets the device node (mknod in its own /dev, which the lab
host's cgroup allows: the lab's device cgroups inherit the outer machine's `a *:* rwm`).

**Stand-in for udev** (this is the lab's doing, not what a real machine has): udev does not
run in a container, so nothing would make /dev/disk/by-id or by-uuid links, nor the udev
database lsblk reads FSTYPE, UUID and SERIAL from. The lab writes the by-id link the way
Hetzner's volumes are named (`scsi-0HC_Volume_<id>`: the SCSI vendor HC, model Volume, the
volume id as serial) and runs a small service in the host (`lab-udev-<loop>.service`) that,
like udev's persistent-storage rules with its inotify watch, re-reads the device with
`blkid -p -o udev` every POLL seconds and keeps `/run/udev/data/b<major>:<minor>` and the
by-uuid/by-label links current (after a mkfs, within POLL seconds).

Which loop devices are ours is read from the kernel (`losetup -J -l`: back-file under this
lab's disks dir), so a crashed run's devices are found again and no other loop device is
ever touched.
"""
from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path

from homelab.lab.config import LabError
from homelab.lab.system import run

BY_ID_PREFIX = "/dev/disk/by-id/scsi-0HC_Volume_"
SERIAL = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
POLL = 0.2  # seconds between the udev stand-in's looks at a device (blkid reads a few KiB)
MAX_SIZE = 64 * 2**30  # sparse (10 GB volumes cost what is written), but no typo fills the outer disk


@dataclass(frozen=True)
class LabDisk:
    host: str
    serial: str  # also the volume id in the by-id name
    size: int  # bytes
    image: str  # the sparse file on the outer machine
    loop: str  # /dev/loopN (the same name inside the host)

    @property
    def by_id(self) -> str:
        return BY_ID_PREFIX + self.serial


def by_id_path(serial: str) -> str:
    return BY_ID_PREFIX + serial


# ------------------------------------------------------------- the record ---
def load(record: Path) -> list[LabDisk]:
    try:
        return [LabDisk(**d) for d in json.loads(record.read_text())]
    except FileNotFoundError:
        return []


def save(record: Path, disks: list[LabDisk]) -> None:
    tmp = record.with_name(f".{record.name}.tmp")
    tmp.write_text(json.dumps([asdict(d) for d in disks], indent=2) + "\n")
    os.replace(tmp, record)


# ---------------------------------------------------------- outer machine ---
def parse_losetup(text: str) -> dict[str, str]:
    """loop device -> back-file, from `losetup -J -l`."""
    if not text.strip():
        return {}
    return {d["name"]: d.get("back-file") or "" for d in json.loads(text).get("loopdevices") or []}


def loops_under(directory: Path) -> dict[str, str]:
    """Loop devices whose back-file lies under `directory` (this lab's, nobody else's)."""
    out = run(["losetup", "-J", "-l"], what="list loop devices").stdout
    prefix = str(directory).rstrip("/") + "/"
    # losetup marks a back-file deleted under it with " (deleted)"
    return {dev: f for dev, f in parse_losetup(out).items() if f.removesuffix(" (deleted)").startswith(prefix)}


def make(directory: Path, host: str, serial: str, size: int) -> LabDisk:
    if not SERIAL.match(serial):
        raise LabError(f"disk serial {serial!r}: use letters, digits, . _ - (at most 40)")
    if not 1 <= size <= MAX_SIZE:
        raise LabError(f"disk size {size}: 1 byte to {MAX_SIZE} bytes")
    directory.mkdir(parents=True, exist_ok=True)
    image = directory / f"{host}-{serial}.img"
    if image.exists():
        raise LabError(f"{host} has a disk {serial} already", "detach it first, or pick another serial")
    with open(image, "wb") as f:
        f.truncate(size)  # sparse: no block is written until the host writes one
    try:
        loop = run(["losetup", "--find", "--show", str(image)], what="losetup").stdout.strip()
    except LabError:
        image.unlink()
        raise
    return LabDisk(host, serial, size, str(image), loop)


def grow(disk: LabDisk, size: int) -> LabDisk:
    """Stand-in behaviour for a volume's capacity change: the back-file made longer (sparse)
    and the loop device told (`losetup -c`), so the host's kernel sees the new size, as a
    VM sees a grown Hetzner volume. Never smaller (a volume only grows)."""
    if not disk.size < size <= MAX_SIZE:
        raise LabError(f"disk {disk.serial}: grow {disk.size} -> {size} bytes: only larger, up to {MAX_SIZE}")
    os.truncate(disk.image, size)
    run(["losetup", "-c", disk.loop], what=f"resize {disk.loop}")
    return LabDisk(disk.host, disk.serial, size, disk.image, disk.loop)


def release(disk: LabDisk) -> None:
    """Detach the loop device (if it is still on our image) and delete the image."""
    if parse_losetup(run(["losetup", "-J", "-l", disk.loop], check=False, what="losetup").stdout).get(disk.loop, "") \
            .removesuffix(" (deleted)") == disk.image:
        run(["losetup", "-d", disk.loop], what=f"detach {disk.loop}")
    Path(disk.image).unlink(missing_ok=True)


def release_all(directory: Path) -> None:
    """Every loop device on an image under `directory`, and the images (for `down`)."""
    for dev in loops_under(directory):
        run(["losetup", "-d", dev], check=False, what=f"detach {dev}")
    for image in directory.glob("*.img") if directory.is_dir() else []:
        image.unlink(missing_ok=True)


# --------------------------------------------------------------- in the host ---
def udev_script(loop: str, serial: str) -> str:
    """The stand-in for udev for one device (runs in the host as a service). Pure."""
    name = loop.removeprefix("/dev/")
    q = shlex.quote
    return f"""#!/bin/sh
# homelab lab: stand-in for udev for {loop} (udev does not run in a container)
dev={q(loop)}; name={q(name)}; serial={q(serial)}
mm=$(stat -L -c '%t %T' "$dev") || exit 1
set -- $mm; db=/run/udev/data/b$((0x$1)):$((0x$2))
mkdir -p /run/udev/data /dev/disk/by-uuid /dev/disk/by-label
last=-
while :; do
  props=$(blkid -p -o udev "$dev" 2>/dev/null | grep -E '^ID_(FS|PART_TABLE)_')
  if [ "$props" != "$last" ]; then
    for l in /dev/disk/by-uuid/* /dev/disk/by-label/*; do
      [ "$(readlink "$l")" = "../../$name" ] && rm -f "$l"
    done
    uuid=$(printf '%s\\n' "$props" | sed -n 's/^ID_FS_UUID_ENC=//p')
    label=$(printf '%s\\n' "$props" | sed -n 's/^ID_FS_LABEL_ENC=//p')
    [ -n "$uuid" ] && ln -sfn "../../$name" "/dev/disk/by-uuid/$uuid"
    [ -n "$label" ] && ln -sfn "../../$name" "/dev/disk/by-label/$label"
    {{ echo "S:disk/by-id/scsi-0HC_Volume_$serial"
      echo "I:1"
      echo "E:ID_SERIAL=0HC_Volume_$serial"
      echo "E:ID_SERIAL_SHORT=$serial"
      echo "E:ID_SCSI_SERIAL=$serial"
      printf '%s\\n' "$props" | sed -n 's/^/E:/p'; }} >"$db.tmp" && mv "$db.tmp" "$db"
    last=$props
  fi
  sleep {POLL}
done
"""


def unit_name(loop: str) -> str:
    return f"lab-udev-{loop.removeprefix('/dev/')}.service"


def plug_script(disk: LabDisk) -> str:
    """Shell run in the host's mount namespace (as root, via nsenter) to give it the device."""
    st = os.stat(disk.loop)
    q = shlex.quote
    name = disk.loop.removeprefix("/dev/")
    helper = f"/run/lab-udev/{name}"
    unit = (f"[Unit]\nDescription=homelab lab: stand-in for udev for {disk.loop}\n\n"
            f"[Service]\nExecStart=/bin/sh {helper}\n")
    return (f"[ -e {q(disk.loop)} ] || mknod -m 660 {q(disk.loop)} b {os.major(st.st_rdev)} {os.minor(st.st_rdev)}; "
            f"mkdir -p /dev/disk/by-id /run/lab-udev /run/systemd/system && "
            f"ln -sfn ../../{q(name)} {q(disk.by_id)} && "
            f"printf '%s' {q(udev_script(disk.loop, disk.serial))} >{q(helper)} && "
            f"printf '%s' {q(unit)} >/run/systemd/system/{unit_name(disk.loop)}")


def udev_db(loop: str) -> str:
    """The udev database entry of a device (the file lsblk reads its properties from)."""
    st = os.stat(loop)
    return f"/run/udev/data/b{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def unplug_script(disk: LabDisk) -> str:
    name = disk.loop.removeprefix("/dev/")
    q = shlex.quote
    return (f"systemctl stop {unit_name(disk.loop)}; "
            f"for m in $(findmnt -n -o TARGET -S {q(disk.loop)}); do umount -l \"$m\"; done; "
            f"for l in /dev/disk/by-id/* /dev/disk/by-uuid/* /dev/disk/by-label/*; do "
            f"[ \"$(readlink \"$l\")\" = ../../{name} ] && rm -f \"$l\"; done; "
            f"rm -f {q(disk.loop)} /run/lab-udev/{name} {udev_db(disk.loop)} /run/systemd/system/{unit_name(disk.loop)}; "
            "systemctl daemon-reload")
