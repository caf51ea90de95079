"""`storage:` (layer 4): where app data lives, which disks hold it, where backups go and when.

Pure parsing with located problems, like every section. What is checked here, and why:
- every name and path ends up in a shell script or a systemd unit, so each is matched against
  a strict pattern (no quoting tricks can get through);
- a disk is named by a stable identity (a /dev/disk/by-id path, or serial and size in bytes as
  `lsblk -b` shows them), never by a kernel name like /dev/sdb that can change between boots;
- the repository password is a reference ({env: ..} or {command: ..}), never a value: backups
  must survive the loss of every host, so only the operator holds it;
- schedules are systemd OnCalendar expressions; the monitors need the interval a backup is
  expected in, which the shorthands (daily, weekly, ...) give; any other expression needs
  `every:` as well.

The layer registry names `parse_storage` (the section) and `storage_claims` (what storage needs
of the other layers).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from homelab.claims import BackupPath, Claim, Claims, NeedsPackage, NeedsVolume, OpenPort
from homelab.config.reader import HOSTNAME, NAME, USER, Problems, Section
from homelab.config.yamlpos import Located, locate
from homelab.secrets import SecretRef

DEFAULT_DATA_ROOT = "/srv/homelab"
DEFAULT_REST_PORT = 8000
DEFAULT_REST_PATH = "/srv/restic-rest"  # BACKUP_DIR on the machine running rest-server
FILESYSTEMS = ("ext4", "xfs", "btrfs")
REPO_TYPES = ("rest", "sftp", "s3", "local")

ABS_PATH = re.compile(r"^/[A-Za-z0-9_.+@-]+(/[A-Za-z0-9_.+@-]+)*/?$|^/$")
BY_ID = re.compile(r"^/dev/disk/by-(id|uuid|path|partuuid)/[A-Za-z0-9_.:+@-]{1,200}$")
SERIAL = re.compile(r"^[A-Za-z0-9_.:+-]{1,100}$")
# systemd calendar expressions use these characters only; anything else is refused
ON_CALENDAR = re.compile(r"^[A-Za-z0-9 *:,./~+-]{1,80}$")
# a systemd time span: "30min", "1h 30min", "2d", "90" (seconds)
SPAN_PART = re.compile(r"([0-9]+)\s*(us|ms|s|sec|m|min|h|hr|d|w)?")
SPAN = re.compile(r"^\s*[0-9]+\s*(us|ms|s|sec|m|min|h|hr|d|w)?(\s*[0-9]+\s*(us|ms|s|sec|m|min|h|hr|d|w)?)*\s*$")
SPAN_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600,
                "d": 86400, "w": 604800, None: 1}
# restic check --read-data-subset: n/t, x% / x.y%, or a size with k/M/G/T
DATA_SUBSET = re.compile(r"^([1-9][0-9]*/[1-9][0-9]*|[0-9]{1,2}(\.[0-9]+)?%|100%|[1-9][0-9]*[kMGT])$")
S3_ENDPOINT = re.compile(r"^https?://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?$")
S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REL_PATH = re.compile(r"^[A-Za-z0-9_.+@-]+(/[A-Za-z0-9_.+@-]+)*$")
SFTP_TARGET = re.compile(r"^(?P<user>[a-z_][a-z0-9_-]{0,31})@(?P<host>[A-Za-z0-9.-]{1,253}):(?P<path>[A-Za-z0-9_./+@-]{1,255})$")

# OnCalendar shorthands (systemd.time(7)) and how often they fire, for the age monitors
CALENDAR_INTERVALS = {"minutely": 60, "hourly": 3600, "daily": 86400, "weekly": 604800,
                      "monthly": 2678400, "quarterly": 7948800, "semiannually": 15897600,
                      "yearly": 31536000, "annually": 31536000}


def span_seconds(text: str) -> int:
    """Seconds in a systemd time span (already matched by SPAN)."""
    return int(sum(int(n) * SPAN_SECONDS[u or None] for n, u in SPAN_PART.findall(text)))


@dataclass(frozen=True)
class Volume:
    """A Hetzner Cloud volume homelab creates for the disk and attaches to its server."""

    size_gb: int  # Hetzner bills and sizes volumes in GB (2**30 bytes on the device)
    protection: bool = True  # delete protection, as for servers


@dataclass(frozen=True)
class Disk:
    """A block device homelab may mount (and format, only with `format: true`)."""

    name: str
    machine: str
    by_id: str | None = None  # /dev/disk/by-id/...
    serial: str | None = None
    size: int | None = None  # bytes, exactly as `lsblk -b` prints
    filesystem: str = "ext4"
    mount: str = DEFAULT_DATA_ROOT
    format: bool = False
    volume: Volume | None = None  # a Hetzner volume: its id names the device once it exists


@dataclass(frozen=True)
class Repository:
    """Where restic backups go. Which fields are set depends on `type`."""

    name: str
    type: str  # rest | sftp | s3 | local
    machine: str | None = None  # rest: the machine running rest-server; local: the machine holding it
    port: int | None = None  # rest: rest-server port; sftp: ssh port
    path: str | None = None  # rest: BACKUP_DIR; sftp: remote path; local: directory; s3: prefix
    user: str | None = None  # sftp
    host: str | None = field(default=None, metadata={"internal": True})  # sftp: from `target`
    endpoint: str | None = None  # s3
    bucket: str | None = None  # s3
    access_key: SecretRef | None = None  # s3
    secret_key: SecretRef | None = None  # s3
    disk: str | None = None  # local: a disk of storage.disks it lives on
    password: SecretRef | None = None  # this repository's own password (else storage.password)


@dataclass(frozen=True)
class Schedule:
    backup: str = "daily"  # OnCalendar
    backup_every: int = 86400  # seconds between backups, for the age monitors
    randomized_delay: str = "1h"  # RandomizedDelaySec
    drill: str = "weekly"
    drill_every: int = 604800
    check: str = "weekly"
    check_every: int = 604800
    prune: str = "weekly"  # forget --prune on the repository side


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 4
    monthly: int = 6


@dataclass(frozen=True)
class StorageConfig:
    data_root: str = DEFAULT_DATA_ROOT
    disks: tuple[Disk, ...] = ()
    repositories: tuple[Repository, ...] = ()
    password: SecretRef | None = None
    schedule: Schedule = field(default_factory=Schedule)
    retention: Retention = field(default_factory=Retention)
    check_subset: str = "5%"  # restic check --read-data-subset

    def repository(self, name: str) -> Repository | None:
        return next((r for r in self.repositories if r.name == name), None)

    def password_of(self, repo: Repository) -> SecretRef | None:
        return repo.password or self.password

    def cross_check(self, cfg: Any, root: Located, problems: Problems) -> None:
        """Machines named by disks and repositories must exist under compute."""
        known = set(cfg.host_names)
        hint = f"known: {', '.join(sorted(known))}" if known else "define it under compute first"
        named: list[tuple[str, int, str | None]] = [("disks", i, d.machine) for i, d in enumerate(self.disks)]
        named += [("repositories", i, r.machine) for i, r in enumerate(self.repositories)]
        for key, i, machine in named:
            if machine is not None and machine not in known:
                problems.add(locate(root, f"storage.{key}[{i}].machine"), f"storage.{key}[{i}].machine",
                             f"no machine or server named {machine!r}", hint)
        hetzner = getattr(getattr(cfg, "compute", None), "hetzner", None)
        servers = {s.name for s in hetzner.servers} if hetzner is not None else set()
        for i, disk in enumerate(self.disks):
            if disk.volume is not None and disk.machine in known and disk.machine not in servers:
                problems.add(locate(root, f"storage.disks[{i}].volume"), f"storage.disks[{i}].volume",
                             f"{disk.machine} is not a Hetzner server: only those get Hetzner volumes",
                             "name a server of compute.hetzner.servers, or give the disk's by_id instead")


# ------------------------------------------------------------------ parse ----
def _abs_path(sec: Section, key: str, default: str | None = None, *, required: bool = False) -> str | None:
    v = sec.text(key, default, required=required, pattern=ABS_PATH, hint="an absolute path like /srv/homelab")
    if v is not None and ("/../" in v + "/" or "/./" in v + "/"):
        sec.fail(sec.raw(key), sec.sub(key), f"{v!r} has . or .. in it", "write the path without them")
        return default
    return v.rstrip("/") or "/" if v is not None else None


MAX_VOLUME_GB = 10240  # Hetzner: 10 GB to 10 TB per volume


def parse_volume(sec: Section | None) -> Volume | None:
    if sec is None:
        return None
    size = sec.integer("size_gb", required=True, lo=10, hi=MAX_VOLUME_GB)
    protection = sec.flag("protection", True)
    sec.done(["size_gb", "protection"])
    return Volume(size, protection) if size is not None else None


def parse_disk(sec: Section) -> Disk | None:
    name = sec.text("name", required=True, pattern=NAME, hint="a short name like 'data1'")
    machine = sec.text("machine", required=True, pattern=NAME, hint="a machine name from compute")
    by_id = sec.text("by_id", pattern=BY_ID, hint="a stable path like /dev/disk/by-id/ata-WDC_WD40EFRX-68N32N0_WD-WCC7K0000000")
    serial = sec.text("serial", pattern=SERIAL, hint="the SERIAL column of `lsblk -o PATH,SERIAL`")
    size = sec.integer("size", lo=1)
    fs = sec.text("filesystem", "ext4", choices=FILESYSTEMS)
    mount = _abs_path(sec, "mount", required=True)
    fmt = sec.flag("format", False)
    volume = parse_volume(sec.section("volume"))
    sec.done(["name", "machine", "by_id", "serial", "size", "filesystem", "mount", "format", "volume"])
    if volume is not None and (by_id or serial or size):
        sec.fail(sec.raw("volume"), sec.sub("volume"), "a Hetzner volume is named by its id, not by_id/serial/size",
                 "drop by_id, serial and size: homelab finds the volume's device (scsi-0HC_Volume_<id>) itself")
    elif not sec.has("volume") and by_id is None and (serial is None or size is None) and sec.ok:
        sec.fail(sec.node, sec.path, "needs by_id, or serial and size, to know it is the right disk",
                 "see `lsblk -b -o PATH,SERIAL,SIZE` on the machine; kernel names like /dev/sdb can change")
    if mount in ("/", "/usr", "/etc", "/boot", "/var"):
        sec.fail(sec.raw("mount"), sec.sub("mount"), f"{mount!r} is a system directory", "mount data disks under /srv or /mnt")
    if not sec.ok or name is None or machine is None or mount is None:
        return None
    return Disk(name=name, machine=machine, by_id=by_id, serial=serial, size=size, filesystem=fs or "ext4",
                mount=mount, format=fmt, volume=volume)


def parse_repository(sec: Section) -> Repository | None:
    name = sec.text("name", required=True, pattern=NAME, hint="a short name like 'nas' or 'offsite'")
    kind = sec.text("type", required=True, choices=REPO_TYPES)
    password = sec.secret_ref("password")
    known = ["name", "type", "password"]
    fields: dict[str, Any] = {}
    if kind == "rest":
        fields["machine"] = sec.text("machine", required=True, pattern=NAME, hint="the machine that runs rest-server")
        fields["port"] = sec.integer("port", DEFAULT_REST_PORT, lo=1, hi=65535)
        fields["path"] = _abs_path(sec, "path", DEFAULT_REST_PATH)
        known += ["machine", "port", "path"]
    elif kind == "sftp":
        target = sec.text("target", required=True)
        m = SFTP_TARGET.match(target or "")
        if target is not None and (m is None or not HOSTNAME.match(m.group("host")) or ".." in m.group("path")):
            sec.fail(sec.raw("target"), sec.sub("target"), f"{target!r} is not user@host:path",
                     "like u12345@u12345.your-storagebox.de:restic")
        elif m is not None:
            fields.update(user=m.group("user"), host=m.group("host"), path=m.group("path"))
        fields["port"] = sec.integer("port", 22, lo=1, hi=65535)
        known += ["target", "port"]
    elif kind == "s3":
        fields["endpoint"] = sec.text("endpoint", required=True, pattern=S3_ENDPOINT, hint="like https://s3.eu-central-1.example.com")
        fields["bucket"] = sec.text("bucket", required=True, pattern=S3_BUCKET, hint="a bucket name: lower-case letters, digits, dots, dashes")
        fields["path"] = sec.text("prefix", "homelab", pattern=REL_PATH, hint="a path inside the bucket, like 'homelab'")
        fields["access_key"] = sec.secret_ref("access_key", required=True)
        fields["secret_key"] = sec.secret_ref("secret_key", required=True)
        known += ["endpoint", "bucket", "prefix", "access_key", "secret_key"]
    elif kind == "local":
        fields["machine"] = sec.text("machine", pattern=NAME, hint="the machine it is on (default: each backed-up machine)")
        fields["path"] = _abs_path(sec, "path", required=True)
        fields["disk"] = sec.text("disk", pattern=NAME, hint="a disk name from storage.disks")
        known += ["machine", "path", "disk"]
    sec.done(known)
    if not sec.ok or name is None or kind is None:
        return None
    return Repository(name=name, type=kind, password=password, **fields)


def parse_schedule(sec: Section | None) -> Schedule:
    if sec is None:
        return Schedule()
    d = Schedule()
    out: dict[str, Any] = {}
    for what in ("backup", "drill", "check"):
        cal = sec.text(what, getattr(d, what), pattern=ON_CALENDAR, hint="a systemd OnCalendar value like daily or '*-*-* 03:00'")
        every = sec.text(f"{what}_every", pattern=SPAN, hint="a systemd time span like 1d or 12h")
        out[what] = cal
        if every is not None:
            out[f"{what}_every"] = span_seconds(every)
        elif cal is not None and cal in CALENDAR_INTERVALS:
            out[f"{what}_every"] = CALENDAR_INTERVALS[cal]
        elif cal is not None:
            sec.fail(sec.raw(what), sec.sub(what), f"how often does {cal!r} fire?",
                     f"add {what}_every: (a time span like 1d) so the monitors know when a {what} is late")
    out["prune"] = sec.text("prune", d.prune, pattern=ON_CALENDAR, hint="a systemd OnCalendar value like weekly")
    out["randomized_delay"] = sec.text("randomized_delay", d.randomized_delay, pattern=SPAN, hint="a time span like 1h or 30min")
    sec.done(["backup", "backup_every", "drill", "drill_every", "check", "check_every", "prune", "randomized_delay"])
    return Schedule(**{k: v for k, v in out.items() if v is not None})


def parse_retention(sec: Section | None) -> Retention:
    if sec is None:
        return Retention()
    d = Retention()
    daily = sec.integer("daily", d.daily, lo=0, hi=3650)
    weekly = sec.integer("weekly", d.weekly, lo=0, hi=520)
    monthly = sec.integer("monthly", d.monthly, lo=0, hi=1200)
    sec.done(["daily", "weekly", "monthly"])
    r = Retention(daily=daily if daily is not None else d.daily, weekly=weekly if weekly is not None else d.weekly,
                  monthly=monthly if monthly is not None else d.monthly)
    if sec.ok and r.daily + r.weekly + r.monthly == 0:
        sec.fail(sec.node, sec.path, "keeps no snapshot at all", "keep at least one daily, weekly or monthly snapshot")
    return r


def parse_storage(sec: Section) -> StorageConfig:
    data_root = _abs_path(sec, "data_root", DEFAULT_DATA_ROOT) or DEFAULT_DATA_ROOT
    disks = sec.unique_items("disks", parse_disk, hint="give each disk its own name")
    repos = sec.unique_items("repositories", parse_repository, hint="give each repository its own name")
    password = sec.secret_ref("password")
    schedule = parse_schedule(sec.section("schedule"))
    retention = parse_retention(sec.section("retention"))
    subset = sec.text("check_subset", "5%", pattern=DATA_SUBSET, hint="like 5%, 1/7 or 2G (restic check --read-data-subset)")
    sec.done(["data_root", "disks", "repositories", "password", "schedule", "retention", "check_subset"])
    cfg = StorageConfig(data_root=data_root, disks=tuple(disks), repositories=tuple(repos), password=password,
                        schedule=schedule, retention=retention, check_subset=subset or "5%")
    _check_references(sec, cfg)
    return cfg


def _check_references(sec: Section, cfg: StorageConfig) -> None:
    """Within the section: local repositories name known disks; every repository has a password;
    two disks are not one device."""
    disk_names = {d.name for d in cfg.disks}
    for repo, (node, path) in zip(cfg.repositories, _named_nodes(sec, "repositories", cfg.repositories)):
        if repo.disk is not None and repo.disk not in disk_names:
            sec.fail(node.value.get("disk", node), f"{path}.disk", f"no disk named {repo.disk!r}",
                     f"known: {', '.join(sorted(disk_names))}" if disk_names else "define it under storage.disks")
        if cfg.password_of(repo) is None and not sec.has("password"):  # a bad one is reported already
            sec.fail(node, path, "has no password",
                     "set storage.password: {env: RESTIC_PASSWORD} (or a password for this repository)")
    seen: dict[tuple[str, str], str] = {}
    for disk, (node, path) in zip(cfg.disks, _named_nodes(sec, "disks", cfg.disks)):
        for ident in (disk.by_id, disk.serial):
            if ident is None:
                continue
            if (disk.machine, ident) in seen:
                sec.fail(node, path, f"{ident!r} is the same device as disk {seen[(disk.machine, ident)]!r}",
                         "list every disk once")
            seen[(disk.machine, ident)] = disk.name


def _named_nodes(sec: Section, key: str, parsed: tuple[Any, ...]) -> list[tuple[Located, str]]:
    """The list items of `key` that became `parsed` objects (matched by name), with their paths."""
    node = sec.items.get(key)
    items = node.value if node is not None and isinstance(node.value, list) else []
    by_name: dict[str, tuple[Located, str]] = {}
    for i, item in enumerate(items):
        name = item.value.get("name") if isinstance(item.value, dict) else None
        if name is not None and isinstance(name.value, str) and name.value not in by_name:
            by_name[name.value] = (item, f"{sec.sub(key)}[{i}]")
    return [by_name[obj.name] for obj in parsed]


# ----------------------------------------------------------------- claims ----
SERVER_PACKAGES = ("restic", "restic-rest-server")
# mkfs for each filesystem a disk may get (Debian packages); planned on the disk's machine
FILESYSTEM_PACKAGES = {"ext4": "e2fsprogs", "xfs": "xfsprogs", "btrfs": "btrfs-progs"}
CLIENT_PACKAGES = ("restic", "jq", "curl")  # jq: the drill compares file lists; curl: append-only check


def storage_derived_claims(storage: StorageConfig, cfg: Any, claims: Claims) -> Iterator[Claim]:
    """The backup clients' packages: every host with a `BackupPath` claim."""
    for host in dict.fromkeys(c.host for c in claims.of(BackupPath)):
        for package in CLIENT_PACKAGES:
            yield NeedsPackage("storage", "storage", host, package)


def storage_claims(storage: StorageConfig, cfg: Any) -> Iterator[Claim]:
    """Hetzner volumes for disks that ask for one; packages for the rest-server machines, and
    their port where the mesh does not cover it.

    The port: rest-server listens on the repository machine's mesh address only, and the mesh
    already claims trust of everything arriving on its interface (WireGuard authenticated it),
    so a mesh member claims nothing: a rule for the mesh network would repeat the trust, and a
    port opened on the other interfaces is what we do not want. Without a mesh (or a machine
    outside it) rest-server listens on the machine's own address, and the port is opened to the
    homelab's own machines only (one claim per machine with an IP address in compute).

    Clients (the hosts with `BackupPath` claims) are known only once every layer's claims are
    collected, after this function runs: `storage_derived_claims` claims their packages.
    """
    for i, disk in enumerate(storage.disks):
        yield NeedsPackage("storage", f"storage.disks[{i}]", disk.machine, FILESYSTEM_PACKAGES[disk.filesystem])
        if disk.volume is not None:  # compute creates and attaches it; billing prices it
            yield NeedsVolume("storage", f"storage.disks[{i}].volume", disk.machine, disk.name,
                              disk.volume.size_gb, disk.volume.protection)
    mesh = cfg.sections.get("mesh") if hasattr(cfg, "sections") else None
    members = {n.name for n in mesh.members} if mesh is not None else set()
    for i, repo in enumerate(storage.repositories):
        if repo.type != "rest" or repo.machine is None:
            continue
        path = f"storage.repositories[{i}]"
        for package in SERVER_PACKAGES:
            yield NeedsPackage("storage", path, repo.machine, package)
        if repo.machine in members:
            continue
        for machine in cfg.machines:
            if machine.name == repo.machine:
                continue
            try:
                net = ipaddress.ip_network(machine.address)
            except ValueError:
                continue  # a DNS name: no source rule can name it; the layer's plan says so
            yield OpenPort("storage", f"{path}.port", repo.machine, "tcp", repo.port or DEFAULT_REST_PORT,
                           source=str(net), why=f"restic rest-server {repo.name} for {machine.name}")
