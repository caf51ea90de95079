"""What the storage layer reads on a host, and how it parses it. Pure builders and parsers.

Every probe has its own short timeout: nothing here calls restic (a restic call can hang for
minutes on a dead repository); the append-only check is one curl with `-m 10`. Which files
exist is read by globbing homelab's own directories, so the probes need no address that only
a lower layer's run would tell (the mesh publishes its addresses after the probes ran); the
append-only check reads its repository URL from the host's own backup script for the same reason.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from homelab.config.storage import CLIENT_PACKAGES, FILESYSTEM_PACKAGES, SERVER_PACKAGES, Disk
from homelab.layers.storage import restserver
from homelab.layers.storage.disks import FS_MARK, Device, Signature, fs_size_script, parse_fs_size, parse_lsblk, parse_wipefs
from homelab.layers.storage.monitors import Space
from homelab.layers.storage.repo import ETC, LIB, STATUS_DIR
from homelab.layers.storage.scripts import SERVER_STATUS_DIR
from homelab.layers.storage.units import HEADER, UNIT_DIR
from homelab.probe import DEFAULT_TIMEOUT, Probe, ProbeResult, packages, parse_packages, parse_unit_states, unit_states

PREFIX = "storage."
# seconds, for what may hang: df of a dead network mount, a failing disk, one curl with its own
# 10 s limit. The reads of local files keep DEFAULT_TIMEOUT: they run as plain subshells under
# the host script's one limit (probe.render_probe_script), not each under a timeout + sh -c.
SHORT = 15.0
CREDENTIAL_SUFFIX = ".rest-password"
# every file the layer may write lives under one of these (globbed: no list to keep in step)
FILE_GLOBS = (f"{ETC}/*", f"{LIB}/*", f"{UNIT_DIR}/homelab-*.service", f"{UNIT_DIR}/homelab-*.timer",
              f"{UNIT_DIR}/*.mount", restserver.DEFAULTS_FILE, restserver.HTPASSWD, restserver.DROPIN)
SPLIT = "@@homelab-split@@"
HASHES = "@@homelab-hashes@@"  # files_probe: after it, the sha256 lines
PROBED_PACKAGES = tuple(dict.fromkeys([*CLIENT_PACKAGES, *SERVER_PACKAGES, *FILESYSTEM_PACKAGES.values()]))


@dataclass(frozen=True)
class FileState:
    mode: int
    owner: str
    group: str
    sha256: str | None  # None: not a regular file (a directory)


@dataclass(frozen=True)
class DiskView:
    device: Device | None
    signatures: tuple[Signature, ...] = ()
    error: str = ""
    fs_size: int | None = None  # bytes the filesystem spans (volumes only: to see one to grow)


@dataclass(frozen=True)
class MountUnit:
    """A mount unit homelab wrote for a disk (its header and `Description=homelab disk NAME`)."""

    unit: str  # srv-homelab.mount
    where: str
    what: str
    disk: str
    source: str = ""  # what is mounted at `where` now (findmnt), "" when nothing


@dataclass(frozen=True)
class HostView:
    """One host as the probes saw it."""

    files: Mapping[str, FileState] = field(default_factory=dict)
    packages: Mapping[str, str | None] = field(default_factory=dict)
    units: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    credentials: Mapping[str, str] = field(default_factory=dict)  # path -> value (made a Secret by the layer)
    htpasswd: Mapping[str, str] = field(default_factory=dict)  # user -> bcrypt hash (not secret)
    disks: Mapping[str, DiskView] = field(default_factory=dict)
    volumes: Mapping[str, DiskView] = field(default_factory=dict)  # Hetzner volumes: by-id path -> view
    mounts: tuple[MountUnit, ...] = ()  # every disk mount unit homelab wrote on the host
    statuses: Mapping[str, str] = field(default_factory=dict)  # status file -> JSON text
    space: Mapping[str, Space] = field(default_factory=dict)  # path asked for -> its filesystem
    append_only: Mapping[str, str] = field(default_factory=dict)  # target key -> HTTP code


# ------------------------------------------------------------------ build ---
def files_probe(dirs: Sequence[str]) -> Probe:
    """Mode, owner and (regular files) sha256 of every path that exists, in a fixed number of
    processes: one `stat` and one `sha256sum` for all of them. A loop with stat and sha256sum per
    file forked ~200 times on the demo's first host and was its slowest probe (1.0-1.5 s)."""
    paths = " ".join([*FILE_GLOBS, *(shlex.quote(d) for d in dirs)])
    cmd = (f"set --; for f in {paths}; do [ -e \"$f\" ] && set -- \"$@\" \"$f\"; done; [ $# -gt 0 ] || exit 0; "
           "stat -c '%a %U %G %n' -- \"$@\"; echo " + HASHES + "; "
           # -z: one NUL-ended line per file and no escaping of names with a backslash (mount units)
           "find \"$@\" -maxdepth 0 -type f -exec sha256sum -z -- {} + | tr '\\0' '\\n'")
    return Probe(cmd, DEFAULT_TIMEOUT, parse_files)


def credentials_probe() -> Probe:
    """The rest credentials this host made (scope 3: read back only to give rest-server their hash)."""
    return Probe(f"for f in {ETC}/*{CREDENTIAL_SUFFIX}; do [ -s \"$f\" ] && "
                 "printf '%s\\t%s\\n' \"$f\" \"$(head -c 256 \"$f\" | tr -d '\\n')\"; done; true", DEFAULT_TIMEOUT,
                 parse_tabbed)


def htpasswd_probe() -> Probe:
    return Probe(f"cat {restserver.HTPASSWD} 2>/dev/null; true", DEFAULT_TIMEOUT, parse_htpasswd)


def status_probe() -> Probe:
    return Probe(f"for f in {STATUS_DIR}/*.json {SERVER_STATUS_DIR}/*.json; do [ -f \"$f\" ] && "
                 "printf '%s\\t%s\\n' \"$f\" \"$(head -c 8000 \"$f\" | tr -d '\\n')\"; done; true", DEFAULT_TIMEOUT,
                 parse_tabbed)


def space_probe(paths: Sequence[str]) -> Probe:
    cmd = " ".join(f"printf '%s\\t' {shlex.quote(p)}; df -P -B1 {shlex.quote(p)} 2>/dev/null | tail -n 1 || echo;"
                   for p in paths) or "true"
    return Probe(cmd, SHORT, parse_space)


def append_only_probe(key: str, script: str, env_file: str) -> str:
    """DELETE a key file that does not exist, with this host's own credential (read from its 0600
    env file into curl's config on stdin: on no command line). The URL comes from the backup
    script. Prints `key code` (see monitors.append_only_monitor)."""
    q = shlex.quote
    return (f"url=$(sed -n 's/^export RESTIC_REPOSITORY=rest://p' {q(script)} | tr -d \"'\"); "
            f"if [ -z \"$url\" ] || [ ! -f {q(env_file)} ]; then echo {q(key)} none; else "
            f"(set -a; . {q(env_file)}; set +a; "
            "printf 'user = \"%s:%s\"\\n' \"$RESTIC_REST_USERNAME\" \"$RESTIC_REST_PASSWORD\" | "
            f"printf '%s %s\\n' {q(key)} \"$(curl -s -o /dev/null -m 10 -w '%{{http_code}}' -X DELETE -K - "
            "\"${url%/}/keys/" + "0" * 64 + "\")\"); fi")


def disk_probe(disk: Disk) -> Probe:
    """lsblk and `wipefs --no-act` of the disk the config names (by id, or found by serial)."""
    if disk.by_id:
        find = f"dev={shlex.quote(disk.by_id)}; [ -e \"$dev\" ] || dev="
    else:
        find = f"dev=$(lsblk -ndo PATH,SERIAL | awk -v s={shlex.quote(disk.serial or '')} '$2 == s {{print $1; exit}}')"
    cmd = (f"{find}; [ -n \"$dev\" ] || exit 0; "
           "lsblk -J -b -o PATH,SERIAL,WWN,SIZE,TYPE,FSTYPE,PTTYPE,UUID,MOUNTPOINTS \"$dev\"; "
           f"echo {SPLIT}; wipefs -n -J \"$dev\"")
    return Probe(cmd, SHORT, parse_disk)


VOLUME_GLOB = "/dev/disk/by-id/scsi-0HC_Volume_*"  # how Hetzner's udev rules name its volumes
VOLUME_MARK = "@@homelab-volume@@"


def volumes_probe() -> Probe:
    """lsblk and wipefs of every Hetzner volume on the host: which one is which disk is known
    only from the API (compute's `VolumeDevices`), which a probe cannot wait for."""
    cmd = (f"for dev in {VOLUME_GLOB}; do [ -e \"$dev\" ] || continue; echo {VOLUME_MARK} \"$dev\"; "
           "lsblk -J -b -o PATH,SERIAL,WWN,SIZE,TYPE,FSTYPE,PTTYPE,UUID,MOUNTPOINTS \"$dev\"; "
           f"echo {SPLIT}; wipefs -n -J \"$dev\"; {fs_size_script()}; done; true")
    return Probe(cmd, SHORT, parse_volumes)


MOUNT_DESCRIPTION = "homelab disk "  # units.render_mount's Description, as plan.py writes it


def mounts_probe() -> Probe:
    """Every mount unit homelab wrote for a disk (no systemctl call: a file read, and findmnt
    for what is mounted there), so one whose disk left the config is found and removed."""
    header = HEADER.rstrip("\n")
    cmd = (f"for f in {UNIT_DIR}/*.mount; do [ -f \"$f\" ] || continue; "
           f"[ \"$(head -n 1 \"$f\")\" = {shlex.quote(header)} ] || continue; "
           f"d=$(sed -n 's/^Description={MOUNT_DESCRIPTION}//p' \"$f\"); [ -n \"$d\" ] || continue; "
           "w=$(sed -n 's/^Where=//p' \"$f\"); "
           "printf '%s\\t%s\\t%s\\t%s\\t%s\\n' \"${f##*/}\" \"$w\" \"$(sed -n 's/^What=//p' \"$f\")\" \"$d\" "
           "\"$(findmnt -n -o SOURCE --mountpoint \"$w\" 2>/dev/null | head -n 1)\"; done; true")
    return Probe(cmd, DEFAULT_TIMEOUT, parse_mounts)


def parse_mounts(result: ProbeResult) -> tuple[MountUnit, ...]:
    out = []
    for line in result.out.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            parts.append("")  # nothing mounted there (a stripped trailing tab)
        if len(parts) == 5 and parts[0].endswith(".mount") and parts[1].startswith("/"):
            out.append(MountUnit(*parts))
    return tuple(out)


def parse_volumes(result: ProbeResult) -> dict[str, DiskView]:
    out: dict[str, DiskView] = {}
    for block in result.out.split(VOLUME_MARK)[1:]:
        path, _, rest = block.strip().partition("\n")
        out[path.strip()] = parse_disk(ProbeResult(0, rest))
    return out


def storage_probes(layout: Any, checks: bool = True) -> dict[str, Probe]:
    """Every probe of one host (`layout`: plan.ProbeLayout, which needs this module's parsers).
    `checks`: also what only the monitors read (the backups' last runs, free space, the
    append-only request to rest-server): status. A no-op apply runs no df and no curl."""
    units, disks, append_only = layout.units, layout.disks, layout.append_only
    probes = {
        PREFIX + "mounts": mounts_probe(),
        PREFIX + "files": files_probe(layout.dirs),
        PREFIX + "packages": packages(list(PROBED_PACKAGES)),
        PREFIX + "credentials": credentials_probe(),
    }
    if checks:
        probes |= {PREFIX + "status": status_probe(), PREFIX + "space": space_probe(layout.space)}
    if units:
        probes[PREFIX + "units"] = unit_states(units)
    if layout.server:
        probes[PREFIX + "htpasswd"] = htpasswd_probe()
    for disk in disks:
        if disk.volume is None:
            probes[f"{PREFIX}disk.{disk.name}"] = disk_probe(disk)
    if any(d.volume is not None for d in disks):
        probes[PREFIX + "volumes"] = volumes_probe()
    if append_only and checks:
        cmd = "; ".join(append_only_probe(k, s, e) for k, s, e in append_only)
        probes[PREFIX + "append_only"] = Probe(cmd, SHORT + 5 * len(append_only))
    return probes


# ------------------------------------------------------------------ parse ---
def parse_files(result: ProbeResult) -> dict[str, FileState]:
    meta, _, hashes = result.out.partition(f"\n{HASHES}\n")
    digests = {}
    for line in hashes.splitlines():
        digest, sep, path = line.partition("  ")
        if sep and len(digest) == 64:
            digests[path] = digest
    out: dict[str, FileState] = {}
    for line in meta.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4:
            continue
        mode, owner, group, path = parts
        try:
            out[path] = FileState(int(mode, 8), owner, group, digests.get(path))
        except ValueError:
            continue
    return out


def parse_tabbed(result: ProbeResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in result.out.splitlines():
        key, sep, value = line.partition("\t")
        if sep:
            out[key] = value
    return out


def parse_htpasswd(result: ProbeResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in result.lines():
        user, sep, hashed = line.partition(":")
        if sep and not user.startswith("#"):
            out[user.strip()] = hashed.strip()
    return out


def parse_space(result: ProbeResult) -> dict[str, Space]:
    out: dict[str, Space] = {}
    for line in result.out.splitlines():
        path, _, df = line.partition("\t")
        parts = df.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[3].isdigit():
            out[path] = Space(" ".join(parts[5:]), int(parts[1]), int(parts[3]))
    return out


def parse_append_only(result: ProbeResult | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (result.lines() if result is not None else []):
        key, _, code = line.partition(" ")
        out[key] = code.strip()
    return out


def parse_disk(result: ProbeResult) -> DiskView:
    text = result.out
    if not text.strip():
        return DiskView(None)
    lsblk, _, rest = text.partition(SPLIT)
    wipefs, _, fs = rest.partition(FS_MARK)
    try:
        return DiskView(parse_lsblk(lsblk), parse_wipefs(wipefs), fs_size=parse_fs_size(fs))
    except ValueError as exc:  # json errors are ValueErrors
        return DiskView(None, (), f"unreadable lsblk/wipefs output: {exc}")


def parse_view(results: Mapping[str, ProbeResult]) -> HostView:
    """Everything the probes of one host said (missing probes read as empty)."""
    def get(key: str) -> ProbeResult | None:
        r = results.get(PREFIX + key)
        return None if r is None or r.timed_out else r

    files = get("files")
    pkgs = get("packages")
    units = get("units")
    creds = get("credentials")
    htp = get("htpasswd")
    status = get("status")
    space = get("space")
    disks = {k[len(PREFIX + "disk."):]: parse_disk(r) for k, r in results.items()
             if k.startswith(PREFIX + "disk.") and not r.timed_out}
    volumes = get("volumes")
    mounts = get("mounts")
    return HostView(
        files=parse_files(files) if files else {},
        packages=parse_packages(pkgs, list(PROBED_PACKAGES)) if pkgs else {},
        units=parse_unit_states(units) if units else {},
        credentials=parse_tabbed(creds) if creds else {},
        htpasswd=parse_htpasswd(htp) if htp else {},
        disks=disks,
        volumes=parse_volumes(volumes) if volumes else {},
        mounts=parse_mounts(mounts) if mounts else (),
        statuses=parse_tabbed(status) if status else {},
        space=parse_space(space) if space else {},
        append_only=parse_append_only(get("append_only")),
    )
