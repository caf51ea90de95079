"""The storage diff (pure): what every host should have, against what its probes saw.

Inputs are values only (config, the `BackupPath` claims, addresses, resolved secrets, the
parsed probes); out comes a LayerPlan. On a host, changes run in this order (a host's
operations stop at the first failure): disks gone from the config (unmounted, their mount
units removed, the device untouched) -> packages -> disks (format, mount, grow a volume's
filesystem online) -> directories ->
one change per group of files (the shared lib, each app's backup to each repository, each
rest-server), each with its units reloaded and timers enabled.

The per-host rest credential is of secret scope 3: generated on the backed-up host (0600,
`<repo>.rest-credential`), read back by a probe, and handed to the rest-server machine only as
a bcrypt line, within the same apply. Until it exists the client's env file and the server's
htpasswd are deferred changes: the engine plans them in its next pass.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.claims import BackupPath
from homelab.config.storage import CLIENT_PACKAGES, FILESYSTEM_PACKAGES, SERVER_PACKAGES, Disk, Repository, StorageConfig
from homelab.host_secrets import generate_command
from homelab.layers.storage import disks as diskmod
from homelab.layers.storage import files as filemod
from homelab.layers.storage import restserver, scripts, units
from homelab.layers.storage.files import HostDir, HostFile
from homelab.layers.storage.probes import CREDENTIAL_SUFFIX, DiskView, HostView
from homelab.layers.storage.repo import ETC, LIB, Target, render_credentials
from homelab.model import Change, LayerPlan, Op
from homelab.secrets import Secret

LAYER = "storage"


@dataclass(frozen=True)
class StorageInputs:
    config: StorageConfig
    backups: tuple[BackupPath, ...]
    addresses: Mapping[str, str]  # host -> the address homelab reaches it at
    mesh: Mapping[str, str] = field(default_factory=dict)  # host -> mesh address (empty: no mesh)
    mesh_interface: str = "wg0"
    passwords: Mapping[str, Secret] = field(default_factory=dict)  # repository -> its password
    s3_keys: Mapping[str, tuple[Secret, Secret]] = field(default_factory=dict)  # repository -> (access, secret)
    views: Mapping[str, HostView] = field(default_factory=dict)  # reachable hosts only
    credentials: Mapping[tuple[str, str], Secret] = field(default_factory=dict)  # (host, repo) -> read back
    volumes: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # disk -> (by-id path, bytes): Hetzner


# ------------------------------------------------------------------ layout --
def credential_file(repo: Repository) -> str:
    return f"{ETC}/{repo.name}{CREDENTIAL_SUFFIX}"


def restic_wrapper(target: Target) -> str:
    return f"{LIB}/restic-{target.key}"


def repositories_for(cfg: StorageConfig, claim: BackupPath) -> list[Repository]:
    """Every repository takes every app (3-2-1), except a local one pinned to another machine."""
    return [r for r in cfg.repositories if not (r.type == "local" and r.machine not in (None, claim.host))]


def server_address(inputs: StorageInputs, repo: Repository) -> tuple[str | None, bool]:
    """(address rest-server listens on and clients dial, whether it is the mesh address)."""
    assert repo.machine is not None
    if repo.machine in inputs.mesh:
        return inputs.mesh[repo.machine], True
    return inputs.addresses.get(repo.machine), False


def app_backup(claim: BackupPath) -> scripts.AppBackup:
    """The claim as the scripts need it. A recipe's dump runs in its service (a compose service:
    `docker compose -p <app> exec -T`), or on the host when it names none. The drill loads a
    compose app's dump into a scratch database of that service (its `ready`, `restore`, `verify`);
    a dump run on the host (a service-kind app) has no image to start a scratch copy from, so
    there the drill verifies the dump's bytes like every other file."""
    dump = claim.dump
    if dump is None:
        return scripts.AppBackup(claim.app, tuple(claim.paths))
    argv = tuple(dump.command)
    scratch = None
    if getattr(dump, "service", ""):
        argv = ("docker", "compose", "-p", claim.app, "exec", "-T", dump.service, *argv)
        if claim.home and dump.ready and dump.restore and dump.verify:
            scratch = scripts.ScratchDb(claim.app, claim.home, dump.service, tuple(dump.ready),
                                        tuple(dump.restore), tuple(dump.verify))
    return scripts.AppBackup(claim.app, tuple(claim.paths), argv, getattr(dump, "filename", "") or "",
                             scratch=scratch)


def unit_names(cfg: StorageConfig, backups: Sequence[BackupPath], host: str) -> list[str]:
    """The timers, services and mounts this layer runs on `host` (for the unit probe)."""
    out: list[str] = []
    for claim in backups:
        if claim.host == host:
            for repo in repositories_for(cfg, claim):
                t = Target(claim.app, host, repo)
                out += [f"{t.unit(k)}.timer" for k in ("backup", "drill", "check")]
    for repo in cfg.repositories:
        if repo.type == "rest" and repo.machine == host:
            out += [restserver.SERVICE, f"homelab-prune-{repo.name}.timer"]
    out += [units.mount_unit_name(d.mount) for d in cfg.disks if d.machine == host]
    return list(dict.fromkeys(out))


def wanted_dirs(cfg: StorageConfig, backups: Sequence[BackupPath], host: str) -> dict[str, HostDir | None]:
    """Directories on `host`; None: it must exist, its owner and mode are its app's business."""
    out: dict[str, HostDir | None] = {}
    mine = [c for c in backups if c.host == host]
    if mine:
        out[cfg.data_root] = None
        for claim in mine:
            out[f"{cfg.data_root}/{claim.app}"] = None
        for d in filemod.CLIENT_DIRS:
            out[d.path] = d
        for claim in mine:
            for repo in repositories_for(cfg, claim):
                if repo.type == "local" and repo.path:
                    out[repo.path] = HostDir(repo.path, "0700")
    for repo in cfg.repositories:
        if repo.type == "rest" and repo.machine == host:
            for d in filemod.server_dirs(repo):
                out[d.path] = d  # the server's ETC (0710, group rest-server) wins over the client's
    return out


@dataclass(frozen=True)
class ProbeLayout:
    """What the probes of one host need to know (no address, no secret)."""

    dirs: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    space: tuple[str, ...] = ()  # paths whose free space the monitors show
    disks: tuple[Disk, ...] = ()
    append_only: tuple[tuple[str, str, str], ...] = ()  # (target key, its backup script, its env file)
    server: bool = False  # runs rest-server


def probe_layout(cfg: StorageConfig, backups: Sequence[BackupPath], host: str) -> ProbeLayout:
    mine = [c for c in backups if c.host == host]
    append_only = []
    space = [cfg.data_root] if mine else []
    for claim in mine:
        for repo in repositories_for(cfg, claim):
            t = Target(claim.app, host, repo)
            if repo.type == "rest":
                append_only.append((t.key, t.script("backup"), t.env_file or ""))
            if repo.type == "local" and repo.path:
                space.append(repo.path)
    servers = [r for r in cfg.repositories if r.type == "rest" and r.machine == host]
    space += [r.path for r in servers if r.path]
    return ProbeLayout(tuple(sorted(wanted_dirs(cfg, backups, host))), tuple(unit_names(cfg, backups, host)),
                       tuple(dict.fromkeys(space)), tuple(d for d in cfg.disks if d.machine == host),
                       tuple(append_only), bool(servers))


# ------------------------------------------------------------------ diff ----
def _sha(content: str | Secret) -> str:
    text = content.reveal() if isinstance(content, Secret) else content
    return hashlib.sha256(text.encode()).hexdigest()


def _file_diff(f: HostFile, view: HostView) -> str | None:
    """Why `f` must be written, or None when it is as wanted."""
    have = view.files.get(f.path)
    if have is None:
        return "new"
    why = []
    if have.sha256 != _sha(f.content):
        why.append("content")
    if have.mode != int(f.mode, 8):
        why.append(f"mode {have.mode:o} -> {f.mode.lstrip('0')}")
    if (have.owner, have.group) != (f.owner, f.group):
        why.append(f"owner {have.owner}:{have.group} -> {f.owner}:{f.group}")
    return ", ".join(why) or None


def _put(f: HostFile) -> Op:
    return Op("files.put_text", {"content": f.content, "dest": f.path, "mode": f.mode.lstrip("0") or "0",
                                 "user": f.owner, "group": f.group})


def _unit_ok(view: HostView, unit: str, *, active: bool = True) -> bool:
    enabled, state = view.units.get(unit, ("", ""))
    return enabled == "enabled" and (state == "active" or not active)


@dataclass
class _Host:
    """Changes of one host, collected in order."""

    host: str
    view: HostView
    changes: list[Change] = field(default_factory=list)
    same: list[str] = field(default_factory=list)
    planned: set[str] = field(default_factory=set)  # files an earlier group of this host writes already

    def group(self, label: str, wanted: Sequence[HostFile], *, timers: Sequence[str] = (),
              restart: Sequence[str] = (), start: Sequence[str] = (), restart_on: Sequence[str] = ()) -> None:
        """Write what differs of `wanted`; reload units if a unit file changed; enable and start
        `timers`/`start` not running; restart `restart` when any file of `restart_on` changed."""
        files = list({f.path: f for f in wanted}.values())
        changed = [(f, why) for f in files if f.path not in self.planned and (why := _file_diff(f, self.view)) is not None]
        self.planned.update(f.path for f, _ in changed)
        ops = [_put(f) for f, _ in changed]
        paths = {f.path for f, _ in changed}
        detail = [f"{f.path}: {why}{' (secret, 0600)' if f.secret and f.mode == '0600' else ''}" for f, why in changed]
        units_changed = any(p.startswith(units.UNIT_DIR + "/") for p in paths)
        if units_changed:
            ops.append(Op("systemd.daemon_reload", {}))
        for timer in timers:
            file_changed = f"{units.UNIT_DIR}/{timer}" in paths
            if file_changed or not _unit_ok(self.view, timer):
                ops.append(Op("systemd.service", {"service": timer, "running": True, "enabled": True,
                                                  "restarted": file_changed}))
                if not file_changed:
                    detail.append(f"{timer}: enable and start")
        for unit in start:
            again = any(p in paths for p in restart_on)
            if again or not _unit_ok(self.view, unit):
                ops.append(Op("systemd.service", {"service": unit, "running": True, "enabled": True,
                                                  "restarted": again}))
                detail.append(f"{unit}: {'restart' if again else 'enable and start'}")
        if not ops:
            self.same.append(f"{self.host}: {label}: {len(files)} files as wanted")
            return
        action = "create" if any(why == "new" for _, why in changed) else "update"
        n = len(changed)
        what = f"write {n} file{'s' if n != 1 else ''}" if n else "start units"
        self.changes.append(Change(LAYER, self.host, action, f"{label}: {what}", tuple(ops), host=self.host,
                                   detail=tuple(detail)))

    def defer(self, label: str, reason: str) -> None:
        self.changes.append(Change(LAYER, self.host, "create", label, host=self.host, deferred=reason))


def _packages(h: _Host, wanted: Sequence[str], notes: list[str]) -> None:
    """Claimed in config/storage.py; compute's one apt transaction installs them before this layer."""
    missing = [p for p in dict.fromkeys(wanted) if not h.view.packages.get(p)]
    if missing:
        notes.append(f"{h.host}: {', '.join(missing)} not installed yet (compute's package step installs them)")
    elif wanted:
        h.same.append(f"{h.host}: packages installed ({', '.join(dict.fromkeys(wanted))})")


def _volume_disk(h: _Host, disk: Disk, volumes: Mapping[str, tuple[str, int]]) -> tuple[Disk, DiskView | None]:
    """A Hetzner volume disk as the disk it now is (its device, its exact size), and what the
    host shows there; (disk, None) with a deferred mount while the volume is not there yet."""
    found = volumes.get(disk.name)
    if found is None:
        h.defer(f"mount disk {disk.name} at {disk.mount}", "needs its Hetzner volume (compute creates and attaches it)")
        return disk, None
    by_id, size = found
    seen = h.view.volumes.get(by_id)
    if seen is None:
        h.defer(f"mount disk {disk.name} at {disk.mount}", f"{by_id} is not on {h.host} yet (just attached?)")
    elif seen.device is not None and seen.device.size < size:
        size = seen.device.size  # grown through the API, the device not yet: still the volume its id names
    return dataclasses.replace(disk, by_id=by_id, size=size), seen


def _grow(h: _Host, disk: Disk, seen: DiskView, warnings: list[str]) -> None:
    """A volume's filesystem smaller than its device, or than the size the config grows the
    volume to: grown online once the device is that big and the filesystem is mounted."""
    assert disk.volume is not None and seen.device is not None
    dev, fs = seen.device, seen.fs_size
    volume = disk.volume.size_gb * 2**30
    target = max(dev.size, volume)  # never smaller than the device: a filesystem is never shrunk
    if disk.filesystem not in diskmod.GROWABLE:
        if dev.size < volume:
            warnings.append(f"disk {disk.name}: homelab does not grow {disk.filesystem}; after the volume grows, run "
                            f"`btrfs filesystem resize max {disk.mount}` on {h.host}")
        return
    if not diskmod.needs_grow(fs, target):
        return  # as big as its device (or its size not read: the tool comes with the package claim)
    assert fs is not None
    summary = f"disk {disk.name}: grow {disk.filesystem} filesystem {diskmod.gib(fs)} -> {diskmod.gib(target)}"
    wait = ""
    if diskmod.needs_grow(dev.size, volume):
        wait = f"the device is {diskmod.gib(dev.size)}: needs the volume grown to {disk.volume.size_gb} GB first " \
               "(compute resizes it)"
    elif disk.mount not in dev.mountpoints:
        wait = f"needs {disk.mount} mounted first (grown online)"
    if wait:  # the plan shows it (old -> new) and why it comes later in this apply
        h.changes.append(Change(LAYER, h.host, "resize", summary, host=h.host, deferred=wait, detail=(f"after: {wait}",)))
    else:
        cmds = [" ".join(shlex.quote(a) for a in argv)
                for argv in diskmod.grow_commands(disk.filesystem, disk.by_id or dev.path, disk.mount)]
        h.changes.append(Change(LAYER, h.host, "resize", summary, (Op("server.shell", {"commands": cmds}),),
                                host=h.host, detail=(f"{dev.path}: {dev.size} bytes, the filesystem {fs} bytes; "
                                                     "grown online, mounted, nothing erased",)))


def in_tree(path: str, where: str) -> bool:
    """Whether one of the two paths is inside the other (they share files)."""
    a, b = path.rstrip("/") + "/", where.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def users_of(where: str, host: str, cfg: StorageConfig, backups: Sequence[BackupPath]) -> list[str]:
    """What the config still keeps at or under `where` on `host`: an app's data or project
    (its BackupPath claim), a repository's directory. A stateless app keeps nothing there."""
    out = []
    clients = {c.host for c in backups}
    for claim in backups:
        paths = [p for p in (*claim.paths, claim.home) if p and claim.host == host and in_tree(p, where)]
        if paths:
            out.append(f"app {claim.app} ({', '.join(dict.fromkeys(paths))})")
    for repo in cfg.repositories:
        if repo.type not in ("rest", "local") or not repo.path:
            continue
        # a local repository without a machine is a directory on every backed-up host
        on_host = repo.machine == host or (repo.type == "local" and repo.machine is None and host in clients)
        if on_host and in_tree(repo.path, where):
            out.append(f"repository {repo.name} ({repo.path})")
    return out


def unmount_command(unit: str, where: str) -> str:
    """Stop (unmount) and disable a mount unit; a mount still in use says so and what to do
    (systemctl alone only says the job failed)."""
    u = shlex.quote(unit)
    busy = shlex.quote(f"homelab: {where} is still in use (a process has files open or its working directory "
                       "there): stop it, then run apply again; nothing on the disk was changed")
    return f"systemctl stop {u} || {{ echo {busy} >&2; exit 1; }}; systemctl disable -q {u} || true"


def _leftover_mounts(h: _Host, cfg: StorageConfig, backups: Sequence[BackupPath], blocked: list[str]) -> None:
    """A mount unit homelab wrote for a disk that left the config: stopped (unmounted),
    disabled and removed. The device and its data are never touched; a disk still holding
    what the config keeps there is not unmounted."""
    wanted = {units.mount_unit_name(d.mount) for d in cfg.disks if d.machine == h.host}
    for m in h.view.mounts:
        if m.unit in wanted:
            continue
        users = users_of(m.where, h.host, cfg, backups)
        if users:
            blocked.append(f"{h.host}: disk {m.disk} left the config, but {m.where} still holds {'; '.join(users)}: "
                           f"not unmounting it (move that off the disk first, or keep disk {m.disk} in storage.disks)")
            continue
        path = f"{units.UNIT_DIR}/{m.unit}"
        ops = (Op("server.shell", {"commands": [unmount_command(m.unit, m.where)]}),
               Op("files.file", {"path": path, "present": False}), Op("systemd.daemon_reload", {}))
        now = f"mounted from {m.source}" if m.source else "not mounted"
        h.changes.append(Change(LAYER, h.host, "delete",
                                f"disk {m.disk}: unmount and remove its mount unit (data kept on the device)", ops,
                                host=h.host, detail=(f"{path}: What={m.what}, Where={m.where}",
                                                     f"{m.where}: {now}; the device is not formatted or wiped")))


def _disks(h: _Host, cfg: StorageConfig, blocked: list[str], warnings: list[str],
           volumes: Mapping[str, tuple[str, int]]) -> None:
    for disk in (d for d in cfg.disks if d.machine == h.host):
        if disk.volume is not None:
            disk, seen = _volume_disk(h, disk, volumes)
            if seen is None:
                continue
        else:
            seen = h.view.disks.get(disk.name)
        if seen is None or seen.error:
            blocked.append(f"{h.host}: disk {disk.name}: not read ({seen.error if seen else 'no probe result'})")
            continue
        decision = diskmod.decide(disk, seen.device, seen.signatures)
        if decision.action == "refuse":
            blocked.append(f"{h.host}: {decision.reason} [{'; '.join(decision.facts)}]")
            continue
        unit = units.mount_unit_name(disk.mount)
        if decision.action == "format":
            assert seen.device is not None
            dev = disk.by_id or seen.device.path
            cmds = [" ".join(shlex.quote(a) for a in argv) for argv in diskmod.format_commands(dev, disk.filesystem, disk.name)]
            cmds.append(diskmod.settle(dev))
            h.changes.append(Change(LAYER, h.host, "create", decision.reason,
                                    (Op("server.shell", {"commands": cmds}),), host=h.host,
                                    destructive=decision.destructive, detail=decision.facts))
            h.defer(f"mount disk {disk.name} at {disk.mount}", "needs the filesystem the format makes (its UUID)")
            continue
        text = units.render_mount(f"/dev/disk/by-uuid/{decision.uuid}", disk.mount, disk.filesystem,
                                  f"homelab disk {disk.name}")
        h.group(f"mount disk {disk.name} at {disk.mount}", [HostFile(f"{units.UNIT_DIR}/{unit}", text)],
                start=[unit], restart_on=[f"{units.UNIT_DIR}/{unit}"])
        if disk.volume is not None:
            _grow(h, disk, seen, warnings)


def _dirs(h: _Host, wanted: Mapping[str, HostDir | None]) -> None:
    ops: list[Op] = []
    detail: list[str] = []
    for path, d in sorted(wanted.items()):
        have = h.view.files.get(path)
        if d is None:
            if have is None:
                ops.append(Op("files.directory", {"path": path, "present": True}))
                detail.append(f"{path}: new")
            continue
        if have is not None and have.sha256 is None and have.mode == int(d.mode, 8) and \
                (have.owner, have.group) == (d.owner, d.group):
            continue
        ops.append(Op("files.directory", {"path": path, "present": True, "mode": d.mode.lstrip("0"),
                                          "user": d.owner, "group": d.group}))
        detail.append(f"{path}: {'new' if have is None else 'mode/owner'} ({d.mode} {d.owner}:{d.group})")
    if ops:
        h.changes.append(Change(LAYER, h.host, "create", f"directories: {len(ops)}", tuple(ops), host=h.host,
                                detail=tuple(detail)))
    elif wanted:
        h.same.append(f"{h.host}: {len(wanted)} directories as wanted")


def plan_storage(inputs: StorageInputs) -> LayerPlan:
    cfg = inputs.config
    notes: list[str] = []
    warnings: list[str] = []
    blocked: list[str] = []
    hosts: dict[str, _Host] = {}

    def host(name: str) -> _Host | None:
        if name not in inputs.views:
            return None
        return hosts.setdefault(name, _Host(name, inputs.views[name]))

    backups = sorted(inputs.backups, key=lambda c: (c.host, c.app))
    clients = sorted({c.host for c in backups})
    servers = sorted({r.machine for r in cfg.repositories if r.type == "rest" and r.machine})
    addresses: dict[str, tuple[str | None, bool]] = {}
    for repo in cfg.repositories:
        if repo.type == "rest":
            addr, on_mesh = server_address(inputs, repo)
            addresses[repo.name] = (addr, on_mesh)
            if not on_mesh:
                notes.append(f"repository {repo.name}: no mesh address for {repo.machine}; rest-server listens on "
                             f"its address {addr or '(unknown)'} instead")
    for name in sorted({*clients, *servers, *(d.machine for d in cfg.disks)}):
        if name not in inputs.views:
            warnings.append(f"{name}: not reachable, its storage is not planned")
    # mount units of disks gone from the config first (on any host: it may have no other storage)
    for name in sorted(inputs.views):
        if inputs.views[name].mounts:
            h = host(name)
            assert h is not None
            _leftover_mounts(h, cfg, backups, blocked)
    # packages, disks, dirs first on every host
    for name in sorted({*clients, *servers, *(d.machine for d in cfg.disks)}):
        h = host(name)
        if h is None:
            continue
        wanted = [*(CLIENT_PACKAGES if name in clients else ()), *(SERVER_PACKAGES if name in servers else ()),
                  *(FILESYSTEM_PACKAGES[d.filesystem] for d in cfg.disks if d.machine == name)]
        _packages(h, wanted, notes)
        _disks(h, cfg, blocked, warnings, inputs.volumes)
        _dirs(h, wanted_dirs(cfg, backups, name))

    # clients: per app and repository, the scripts, units, password and credentials
    known_creds: dict[tuple[str, str], Secret] = dict(inputs.credentials)
    pending: dict[str, list[str]] = {}  # repository -> clients whose credential is made in this apply
    for claim in backups:
        reps = repositories_for(cfg, claim)
        where = []
        for repo in reps:
            if repo.type == "rest":
                addr = addresses[repo.name][0]
                where.append(f"{repo.name} (rest-server on {repo.machine} at {addr or '?'})")
                if repo.machine == claim.host:
                    warnings.append(f"app {claim.app}: backups to {repo.name} land on {claim.host}, the machine its "
                                    "data is on: that is not a backup")
            elif repo.type == "local":
                where.append(f"{repo.name} (local {repo.path} on {claim.host})")
                warnings.append(f"app {claim.app}: repository {repo.name} is a directory on {claim.host}, the machine "
                                "its data is on: that is not a backup of the machine")
            else:
                where.append(f"{repo.name} ({repo.type})")
        notes.append(f"app {claim.app}: data on {claim.host} in {', '.join(claim.paths) or '(dump only)'}; "
                     f"backups to {', '.join(where) or 'nowhere (no repository configured)'}")
        if not reps:
            warnings.append(f"app {claim.app}: no repository takes its backups")
        h = host(claim.host)
        if h is None:
            continue
        app = app_backup(claim)
        if not app.paths and not app.dump:
            warnings.append(f"app {claim.app}: nothing to back up (no paths, no dump)")
            continue
        for repo in reps:
            password = inputs.passwords.get(repo.name)
            if password is None:
                blocked.append(f"repository {repo.name}: no password (storage.password)")
                continue
            addr = addresses.get(repo.name, (None, False))[0]
            if repo.type == "rest" and addr is None:
                warnings.append(f"app {claim.app} -> {repo.name}: the address of {repo.machine} is not known")
                continue
            target = Target(claim.app, claim.host, repo, addr)
            credentials: Secret | None = None
            deferred_env = ""
            if repo.type == "rest":
                cred = known_creds.get((claim.host, repo.name))
                if cred is None:
                    if not any(c.summary == f"rest credential for {repo.name}" for c in h.changes):
                        h.changes.append(Change(
                            LAYER, claim.host, "create", f"rest credential for {repo.name}",
                            (Op("server.shell", {"commands": [generate_command(credential_file(repo), "password", 32)]}),),
                            host=claim.host, detail=(f"{credential_file(repo)}: made on the host (0600), read back "
                                                     "only to give rest-server its bcrypt hash",)))
                    pending.setdefault(repo.name, []).append(claim.host)
                    deferred_env = "needs the rest credential generated on the host in this apply"
                else:
                    credentials = render_credentials(target, rest_password=cred)
            elif repo.type == "s3":
                keys = inputs.s3_keys.get(repo.name)
                if keys is None:
                    blocked.append(f"repository {repo.name}: access/secret key not read")
                    continue
                credentials = render_credentials(target, access_key=keys[0], secret_key=keys[1])
            elif repo.type == "sftp":
                warnings.append(f"app {claim.app} -> {repo.name}: the SSH key {claim.host} logs in to "
                                f"{repo.host} with is not managed by homelab (set it up once by hand)")
            wanted = filemod.client_files(target, app, cfg.schedule, password=password, credentials=credentials,
                                          check_subset=cfg.check_subset)
            wanted.append(HostFile(restic_wrapper(target), scripts.render_restic(target), "0700"))
            timers = [f"{target.unit(k)}.timer" for k in ("backup", "drill", "check")]
            if deferred_env:
                h.group(f"backup {claim.app} -> {repo.name}", wanted, timers=timers)
                h.defer(f"backup {claim.app} -> {repo.name}: credentials file {target.env_file}", deferred_env)
            else:
                h.group(f"backup {claim.app} -> {repo.name}", wanted, timers=timers)

    # servers: rest-server with every client's credential hash
    for repo in cfg.repositories:
        if repo.type != "rest" or repo.machine is None:
            continue
        h = host(repo.machine)
        if h is None:
            continue
        password = inputs.passwords.get(repo.name)
        addr, on_mesh = addresses[repo.name]
        if password is None or addr is None:
            continue
        users = sorted({c.host for c in backups if repo in repositories_for(cfg, c)})
        entries: dict[str, str] = {}
        for user in users:
            cred = known_creds.get((user, repo.name))
            if cred is not None:
                entries[user] = restserver.stable_hash(cred, user)
            elif user in h.view.htpasswd:
                entries[user] = h.view.htpasswd[user]  # not reachable now: its line stays
        after = (f"wg-quick@{inputs.mesh_interface}.service",) if on_mesh else ()
        wanted = filemod.server_files(repo, addr, entries, cfg.schedule, password=password,
                                      keep=(cfg.retention.daily, cfg.retention.weekly, cfg.retention.monthly),
                                      after=after)
        if pending.get(repo.name):
            wanted = [f for f in wanted if f.path != restserver.HTPASSWD]
            h.defer(f"rest-server {repo.name}: htpasswd", "needs the credentials generated on "
                    f"{', '.join(sorted(set(pending[repo.name])))} in this apply")
        # rest-server notices a changed htpasswd only at its next periodic check (seen in the lab:
        # 401 for the new host right after the apply); a restart makes it hold when the apply ends
        restart_on = (restserver.DEFAULTS_FILE, restserver.DROPIN, restserver.HTPASSWD)
        h.group(f"rest-server {repo.name}", wanted, timers=[f"homelab-prune-{repo.name}.timer"],
                start=[restserver.SERVICE], restart_on=restart_on)

    changes = [c for name in sorted(hosts) for c in hosts[name].changes]
    same = [s for name in sorted(hosts) for s in hosts[name].same]
    if not backups:
        notes.append("no app asks for backups yet (BackupPath claims come from the apps layer)")
    return LayerPlan(LAYER, tuple(changes), tuple(same), tuple(dict.fromkeys(warnings)), tuple(blocked),
                     tuple(notes))
