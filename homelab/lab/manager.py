"""The `Lab`: throwaway Debian hosts h1..hN (systemd-nspawn) for the provisioner's tests.

    lab = Lab()                             # settings from HOMELAB_LAB_* (see config.py)
    lab.up(3, also={"bookworm": 1})         # h1-h3 Debian 13, h4 Debian 12
    lab.run("h2", "systemctl is-system-running")
    lab.down()                              # removes all `up` made, also after a crash

Every step is idempotent. Runtime state lives in the lab dir (one per instance); bases and
the local apt repos live in the shared cache (see build.py).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from homelab.lab import cgroups, disks, hosts, network
from homelab.lab.build import SuiteCache, ensure_suite, mirror_url
from homelab.lab.daemon import Daemon
from homelab.lab.images import registry
from homelab.lab.config import (
    DEFAULT_SUITE, MAX_HOSTS, SUITES, LabConfig, LabError, host_number, missing_requirements,
)
from homelab.lab.hosts import HostDir
from homelab.lab.system import (
    Timer, file_lock, is_mounted, make_root_dir, mounts_under, read_pid, remove_tree, run, umount,
    write_root_file,
)

log = logging.getLogger("homelab.lab")
T = TypeVar("T")
USERS = ("root", "admin")
# rekey inside the host: new keys, then sshd reloads them (the running session survives)
REKEY_SCRIPT = "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && ssh-keygen -q -A && systemctl restart ssh"


@dataclass(frozen=True)
class HostStatus:
    name: str
    address: str
    suite: str
    state: str  # "running" | "stopped"
    nspawn_pid: int | None
    systemd: str  # `systemctl is-system-running`, "-" when stopped, "ssh-fail" when unreachable


@dataclass(frozen=True)
class LabStatus:
    instance: int
    dir: str
    bridge: str
    bridge_up: bool
    repo_url: str
    repo_pid: int | None
    hosts: tuple[HostStatus, ...]
    registry: str = ""  # "labrepo:5000" as hosts reach it
    registry_pid: int | None = None


def _parallel(fn: Callable[[str], T], names: Iterable[str]) -> list[T]:
    """Run `fn` per host in threads (the work is subprocesses and waiting); re-raise the first error."""
    names = list(names)
    if len(names) <= 1:
        return [fn(n) for n in names]
    with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
        return list(pool.map(fn, names))


class Lab:
    """One lab instance: its hosts, bridge, guard table, repo server and inventory."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig.from_env()
        d = self.config.dir
        self.hosts_dir = d / "hosts"
        self.run_dir = d / "run"
        self.key = d / "id_ed25519"
        self.known_hosts = d / "known_hosts"
        self.ssh_config = d / "ssh_config"
        self.inventory_path = d / "inventory.json"
        self.disks_dir = d / "disks"  # sparse images behind the hosts' loop devices (see disks.py)
        self._disks_record = d / "disks.json"
        self._lock_depth = 0
        self._lock_guard = threading.Lock()
        self._procs: dict[int, subprocess.Popen[bytes]] = {}  # our children, kept to be reaped

    # ------------------------------------------------------------------ public ----

    def up(self, n: int = 3, suite: str = DEFAULT_SUITE, *, also: Mapping[str, int] | None = None) -> list[str]:
        """Ensure hosts h1..hN run: `n` of `suite` first, then `also` ({suite: count}) in order.

        Existing hosts are kept (and started if stopped); a host whose suite differs from
        what is asked is an error (run `down` first). Returns the host names asked for.
        """
        plan: list[str] = []
        for s, count in [(suite, n), *(also or {}).items()]:
            self._check_suite(s)
            if count < 0:
                raise LabError(f"host count for {s} must be >= 0, not {count}")
            plan += [s] * count
        if not 1 <= len(plan) <= MAX_HOSTS:
            raise LabError(f"a lab has 1-{MAX_HOSTS} hosts, not {len(plan)}")
        names = [f"h{i}" for i in range(1, len(plan) + 1)]
        with self._locked():
            for name, s in zip(names, plan):
                hd = self._host(name)
                if hd.path.exists() and (hd.path / "suite").exists() and hd.suite != s:
                    raise LabError(f"{name} already exists as {hd.suite}, asked for {s}",
                                   "run `homelab lab down` first to change the lab's layout")
            self._bring_up(dict(zip(names, plan)))
        return names

    def add(self, suite: str = DEFAULT_SUITE, count: int = 1) -> list[str]:
        """Add `count` hosts of `suite` after the existing ones; returns their names."""
        self._check_suite(suite)
        with self._locked():
            last = max((host_number(n) for n in self.host_names()), default=0)
            names = [f"h{i}" for i in range(last + 1, last + 1 + count)]
            if names and host_number(names[-1]) > MAX_HOSTS:
                raise LabError(f"a lab has at most {MAX_HOSTS} hosts")
            self._bring_up({n: suite for n in names})
        return names

    def add_host(self, suite: str = DEFAULT_SUITE, *, host_key: tuple[str, str] | None = None,
                 authorized_keys: Iterable[str] = ()) -> str:
        """One more host, made the way a cloud makes a server (the stand-in Hetzner API uses it).

        `host_key` (OpenSSH private key text, "ssh-ed25519 AAAA...") becomes its only ssh host
        key before its first boot, as cloud-init's `ssh_keys` does; `authorized_keys` are added
        for root next to the lab key. Returns the new host's name.
        """
        self._check_suite(suite)
        keys = [k.strip() for k in authorized_keys if k.strip()]
        with self._locked():
            last = max((host_number(n) for n in self.host_names()), default=0)
            name = f"h{last + 1}"
            if last + 1 > MAX_HOSTS:
                raise LabError(f"a lab has at most {MAX_HOSTS} hosts")
            self._bring_up({name: suite}, seed=lambda n: self._seed_host(n, host_key, keys))
        return name

    def _seed_host(self, name: str, host_key: tuple[str, str] | None, authorized_keys: list[str]) -> None:
        root = self._host(name).root
        if host_key is not None:
            for old in (root / "etc/ssh").glob("ssh_host_*_key*"):
                old.unlink()
            private, public = host_key
            write_root_file(root, "etc/ssh/ssh_host_ed25519_key", private.strip() + "\n", 0o600)
            write_root_file(root, "etc/ssh/ssh_host_ed25519_key.pub", " ".join(public.split()[:2]) + "\n")
        if authorized_keys:
            current = (root / "root/.ssh/authorized_keys").read_text()
            write_root_file(root, "root/.ssh/authorized_keys",
                            current.rstrip("\n") + "\n" + "\n".join(authorized_keys) + "\n", 0o600, (0, 0))

    def down(self) -> None:
        """Remove everything `up` made: hosts, mounts, netns, veths, bridge, nft table, cgroups,
        the repo server. Safe to call at any time, also when nothing is up or after a crash."""
        self._require()
        t = Timer()
        with self._locked():
            names = self.host_names()
            group = self.config.cgroup_name
            for name in names:  # all power off at once, then reap one by one
                hosts.request_poweroff(self._host(name))
            for name in names:
                hd = self._host(name)
                hosts.stop(hd, group)
                network.netns_remove(self.config.host_ns(name))
                hosts.wipe(hd)
            disks.release_all(self.disks_dir)
            self._disks_record.unlink(missing_ok=True)
            self._stop_repo_server()
            self._stop_registry()
            self._sweep()
            self._reap()
            for path in (self.inventory_path, self.ssh_config, self.known_hosts):
                path.unlink(missing_ok=True)
            remove_tree(self.run_dir)
        log.info("lab %d down in %s", self.config.instance, t)

    def status(self) -> LabStatus:
        names = self.host_names()

        def one(name: str) -> HostStatus:
            hd = self._host(name)
            pid = hosts.running_pid(hd)
            systemd = "-"
            if pid:
                r = self.run(name, "systemctl is-system-running", timeout=15)
                systemd = r.stdout.strip() or "ssh-fail"
            return HostStatus(name, str(self.address(name)), self._suite(hd),
                              "running" if pid else "stopped", pid, systemd)

        c = self.config
        return LabStatus(c.instance, str(c.dir), c.bridge, network.link_exists(c.bridge),
                         f"http://{c.bridge_ip}:{c.repo_port}/", self._repo_pid(), tuple(_parallel(one, names)),
                         f"{registry.REGISTRY_NAME}:{registry.REGISTRY_PORT}", self._registry_daemon.pid())

    def reset(self, *names: str) -> None:
        """Replace hosts by pristine ones: same name, suite and address; new disk and host keys."""
        with self._locked():
            suites = {n: self._suite_of_existing(n) for n in names}
            group = self.config.cgroup_name
            for name in names:
                hosts.request_poweroff(self._host(name))
            t = Timer()
            for name in names:
                hd = self._host(name)
                hosts.stop(hd, group)
                network.netns_remove(self.config.host_ns(name))
                hosts.wipe(hd)
                self._release_disks(name)  # a pristine host has no disks attached
            self._reap()
            self._bring_up(suites)
            log.info("reset %s in %s", " ".join(names), t)

    def stop_host(self, name: str) -> None:
        """Power a host off and unplug it (a host that is down); its disk and host keys stay."""
        with self._locked():
            self._suite_of_existing(name)
            t = Timer()
            hosts.stop(self._host(name), self.config.cgroup_name)
            network.netns_remove(self.config.host_ns(name))  # unplugged: no ARP answer, no RST
            self._reap()
            self._write_inventory()
            log.info("%s stopped in %s", name, t)

    def start_host(self, name: str) -> None:
        """Boot a stopped host again from its kept disk (same host keys)."""
        with self._locked():
            self._bring_up({name: self._suite_of_existing(name)})

    def rekey_host(self, name: str) -> str:
        """Give a running host new ssh host keys (sshd restarted), as after a reinstall.

        The lab's known_hosts and inventory follow; anything that pinned the old key will
        see a changed host key. Returns the new ed25519 public key ("ssh-ed25519 AAAA...").
        """
        with self._locked():
            self._suite_of_existing(name)
            hd = self._host(name)
            if not hosts.running_pid(hd):
                raise LabError(f"{name} is not running", f"start it first: lab.start_host({name!r})")
            old = hd.public_keys()
            self.run(name, REKEY_SCRIPT, check=True, timeout=60)
            new = hd.public_keys()
            if not new or set(new) & set(old):
                raise LabError(f"{name}: host keys did not change")
            self._write_inventory()
            hosts.wait_ssh(hd, self.address(name), lambda: self._ssh_ok(name), timeout=30)
            log.info("%s has new host keys", name)
            return next(k for k in new if k.startswith("ssh-ed25519 "))

    # ---------------------------------------------------------------- disks ----

    def attach_disk(self, name: str, size: int, serial: str | None = None) -> str:
        """Give a running host a block device of `size` bytes (a loop device on a sparse file).

        Named like a Hetzner volume: returns its /dev/disk/by-id/scsi-0HC_Volume_<serial> path,
        visible in the host; lsblk there shows `serial` (default: the next free number from
        100000, like a volume id). The by-id link and the udev data are the lab's stand-in for
        udev (see disks.py). It stays attached across stop_host/start_host; `reset`, `down`
        and `detach_disk` remove it."""
        with self._locked():
            self._suite_of_existing(name)
            if not hosts.running_pid(self._host(name)):
                raise LabError(f"{name} is not running", f"start it first: lab.start_host({name!r})")
            record = disks.load(self._disks_record)
            if serial is None:
                serial = str(max((int(d.serial) for d in record if d.serial.isdigit()), default=99999) + 1)
            if any(d.serial == serial for d in record):
                raise LabError(f"a lab disk with serial {serial} exists already", "pick another serial")
            disk = disks.make(self.disks_dir, name, serial, size)
            disks.save(self._disks_record, [*record, disk])
            self._plug(disk)
            log.info("%s: disk %s (%d bytes, %s) attached", name, disk.by_id, size, disk.loop)
            return disk.by_id

    def detach_disk(self, name: str, by_id: str) -> None:
        """Take a disk away from a host (unmounted lazily if the host still has it mounted)."""
        with self._locked():
            record = disks.load(self._disks_record)
            disk = next((d for d in record if d.host == name and d.by_id == by_id), None)
            if disk is None:
                raise LabError(f"{name} has no lab disk {by_id}")
            self._unplug(disk)
            disks.release(disk)
            disks.save(self._disks_record, [d for d in record if d is not disk])

    def resize_disk(self, name: str, by_id: str, size: int) -> None:
        """Grow a host's disk to `size` bytes, online (the stand-in API's volume resize)."""
        with self._locked():
            record = disks.load(self._disks_record)
            disk = next((d for d in record if d.host == name and d.by_id == by_id), None)
            if disk is None:
                raise LabError(f"{name} has no lab disk {by_id}")
            grown = disks.grow(disk, size)
            disks.save(self._disks_record, [grown if d is disk else d for d in record])
            log.info("%s: disk %s grown to %d bytes", name, by_id, size)

    def attached_disks(self, name: str) -> list[disks.LabDisk]:
        return [d for d in disks.load(self._disks_record) if d.host == name]

    def _plug(self, disk: disks.LabDisk) -> None:
        init = read_pid(self._host(disk.host).init_pid_file)
        run(["nsenter", "-t", str(init), "-m", "--", "/bin/sh", "-c", disks.plug_script(disk)],
            what=f"{disk.host}: plug {disk.loop}")
        unit = disks.unit_name(disk.loop)
        # the link and the udev data exist once the stand-in's first look is done
        self.run(disk.host, f"systemctl daemon-reload && systemctl restart {unit} && "
                            f"for i in $(seq 50); do [ -e {disks.udev_db(disk.loop)} ] && exit 0; sleep 0.1; done; "
                            "exit 1", check=True, timeout=30)

    def _unplug(self, disk: disks.LabDisk) -> None:
        hd = self._host(disk.host)
        if not hosts.running_pid(hd):
            return  # a stopped host's /dev is gone with it
        self.run(disk.host, disks.unplug_script(disk), timeout=60)

    def _release_disks(self, name: str) -> None:
        record = disks.load(self._disks_record)
        for disk in (d for d in record if d.host == name):
            disks.release(disk)
        disks.save(self._disks_record, [d for d in record if d.host != name])

    # ------------------------------------------------------------------ NAT ----

    def address(self, name: str) -> IPv4Address:
        """Where the outer machine reaches a host: its main-bridge or its NAT-bridge address."""
        if name in self.nat_hosts():
            return self.config.nat_address(name)
        return self.config.host_address(name)

    def nat_hosts(self) -> set[str]:
        """Hosts behind the NAT router (kept in the run dir: `down` forgets them)."""
        try:
            return set(self._nat_file.read_text().split())
        except FileNotFoundError:
            return set()

    def move_behind_nat(self, *names: str) -> None:
        """Put hosts behind a masquerading router, like home machines: they reach the main
        bridge (other hosts, the apt repo) through it, nothing there can reach them, and the
        outer machine still reaches them on the NAT bridge (homelab's own SSH). The hosts
        reboot with their disks kept (~2 s) and get an address on the NAT network."""
        self._set_nat(names, behind=True)

    def move_to_bridge(self, *names: str) -> None:
        """Undo `move_behind_nat`: the hosts reboot back onto the main bridge."""
        self._set_nat(names, behind=False)

    @property
    def _nat_file(self) -> Path:
        return self.run_dir / "nat-hosts"

    def _set_nat(self, names: Iterable[str], behind: bool) -> None:
        with self._locked():
            suites = {n: self._suite_of_existing(n) for n in names}
            current = self.nat_hosts()
            moving = [n for n in suites if (n in current) != behind]
            if not moving:
                return
            t = Timer()
            for name in moving:
                hosts.stop(self._host(name), self.config.cgroup_name)
                network.netns_remove(self.config.host_ns(name))
            self._reap()
            wanted = current | set(moving) if behind else current - set(moving)
            self.run_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self._nat_file, "".join(f"{n}\n" for n in sorted(wanted, key=host_number)))
            self._bring_up({n: suites[n] for n in moving})
            self._refresh_etc_hosts(exclude=set(moving))  # the others learn the new addresses
            log.info("%s %s NAT in %s", " ".join(moving), "behind" if behind else "out of", t)

    def _nat_up(self) -> None:
        """The NAT bridge (with the outer machine on it), its guard, and the router."""
        c = self.config
        network.bridge_up(c.nat_bridge, c.nat_bridge_if)
        # the outer machine forwards nothing off the NAT bridge either: the router is the way out
        network.guard_up(c.nat_table, [c.nat_bridge])
        wan_link, lan_link = c.router_links
        network.router_up(c.router_ns, (wan_link, c.bridge, c.router_wan), (lan_link, c.nat_bridge, c.router_lan))

    def ssh_argv(self, name: str, user: str = "root") -> list[str]:
        """ssh argv (append a command) with the lab key and strict checks against its known_hosts."""
        if user not in USERS:
            raise LabError(f"lab hosts have users {', '.join(USERS)}, not {user!r}")
        return [
            "ssh", "-F", "/dev/null", "-i", str(self.key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
            f"{user}@{self.address(name)}",
        ]

    def enter_argv(self, name: str) -> list[str] | None:
        """argv (append a shell command) that runs it as root inside the host, without ssh."""
        pid = read_pid(self._host(name).init_pid_file)
        if pid is None or not Path(f"/proc/{pid}").exists():
            return None
        return ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--", "/bin/sh", "-c"]

    def run(self, name: str, cmd: str, user: str = "root", *, check: bool = False, timeout: float = 300,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a shell command on a host over ssh; check=True raises LabError on failure.

        When ssh itself fails (exit 255) — homelab's permissions layer may have closed root
        login and the lab key's authorized_keys — the command runs through the host's own
        namespaces instead (`nsenter` into its init: the lab is ours, no login needed)."""
        stdin = None if input is not None else subprocess.DEVNULL
        proc = subprocess.run([*self.ssh_argv(name, user), cmd], text=True, capture_output=True,
                              timeout=timeout, input=input, stdin=stdin)
        if proc.returncode == 255 and user == "root" and (argv := self.enter_argv(name)):
            proc = subprocess.run([*argv, cmd], text=True, capture_output=True, timeout=timeout, input=input,
                                  stdin=stdin)
        if check and proc.returncode != 0:
            raise LabError(f"{name}: {cmd!r} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc

    def host_cpu_seconds(self, name: str) -> float | None:
        """CPU time the host (its container's cgroup) has used since it booted; None: unknown."""
        hd = self._host(name)
        if not hd.cgroups_file.exists():
            return None
        return cgroups.cpu_seconds([Path(line) for line in hd.cgroups_file.read_text().split()])

    def inventory(self) -> dict[str, Any]:
        """Hosts, addresses, users, key and known_hosts paths, apt repo URLs (also in inventory.json)."""
        c = self.config
        host_rows = []
        nat = self.nat_hosts()
        for name in self.host_names():
            hd = self._host(name)
            suite = self._suite(hd)
            sc = SuiteCache(c.cache, suite)
            repo = c.repo_url(suite)
            host_rows.append({
                "name": name, "address": str(self.address(name)), "suite": suite, "behind_nat": name in nat,
                "debian_version": SUITES.get(suite, ""), "users": list(USERS),
                "ssh_key": str(self.key), "known_hosts": str(self.known_hosts),
                "apt_repo": repo, "apt_source": f"deb [trusted=yes] {repo} ./",
                "images": {"python": f"{repo}/images/python.tar", "busybox": f"{repo}/images/busybox.tar"},
                "python_version": sc.python_version,
                "host_keys": hd.public_keys(),
                "running": hosts.running_pid(hd) is not None,
            })
        return {
            "instance": c.instance, "dir": str(c.dir), "network": str(c.network), "bridge": c.bridge,
            "bridge_ip": str(c.bridge_ip), "ssh_key": str(self.key), "known_hosts": str(self.known_hosts),
            "ssh_config": str(self.ssh_config), "hosts": host_rows,
            "registry": f"{registry.REGISTRY_NAME}:{registry.REGISTRY_PORT}",
            "registry_ca": str(self._registry_paths.ca_cert),
        }

    def host_names(self) -> list[str]:
        if not self.hosts_dir.is_dir():
            return []
        names = [p.name for p in self.hosts_dir.iterdir() if p.is_dir() and p.name[1:].isdigit() and p.name[0] == "h"]
        return sorted(names, key=host_number)

    @property
    def hosts(self) -> dict[str, str]:
        """name -> address of every host of the lab."""
        return {n: str(self.address(n)) for n in self.host_names()}

    def suite(self, name: str) -> str:
        return self._suite_of_existing(name)

    def host_key(self, name: str) -> str:
        """The host's current ed25519 public key ("ssh-ed25519 AAAA...")."""
        self._suite_of_existing(name)
        return next((k for k in self._host(name).public_keys() if k.startswith("ssh-ed25519 ")), "")

    # ------------------------------------------------------------- bring up ----

    def _bring_up(self, plan: Mapping[str, str], seed: Callable[[str], None] | None = None) -> None:
        """Make sure the hosts in `plan` (name -> suite) run, building and wiring what is missing.

        `seed(name)` runs after a host's disk is prepared and before it boots (add_host)."""
        if not plan:
            return
        t_all = Timer()
        caches = self._prepare_lab(set(plan.values()))
        if self.nat_hosts() & set(plan):
            self._nat_up()
        t = Timer()
        new_names = [n for n in plan if not self._host(n).path.exists()]
        for name in new_names:
            self._host(name).create(plan[name])
        etc_hosts = self._etc_hosts_map()
        _parallel(lambda n: self._prepare_host(n, caches[plan[n]], etc_hosts), plan)
        if seed is not None:
            for name in plan:
                seed(name)
        self._write_inventory()  # known_hosts holds the new host keys before anyone connects
        to_start = [n for n in plan if not hosts.running_pid(self._host(n))]
        c = self.config
        for name in to_start:  # from this thread: the child joins its cgroups before exec
            proc = hosts.start(self._host(name), c.host_ns(name), c.host_ns(name), c.cgroup_name)
            self._procs[proc.pid] = proc
        _parallel(self._wait_host, to_start)
        if new_names:
            self._refresh_etc_hosts(exclude=set(plan))
        self._write_inventory()
        log.info("lab %d: %d host(s) up in %s (total %s); inventory: %s", c.instance, len(plan), t, t_all,
                 self.inventory_path)

    def _prepare_host(self, name: str, cache: SuiteCache, etc_hosts: Mapping[str, IPv4Address]) -> None:
        """Layer mounted, identity written, network namespace plugged into the bridge."""
        c, hd = self.config, self._host(name)
        hosts.mount_layer(hd, cache.base)
        hosts.write_identity(hd, hosts.render_etc_hosts(name, c.bridge_ip, etc_hosts),
                             f"deb [trusted=yes] {c.repo_url(cache.suite)} ./", self.key.with_suffix(".pub").read_text())
        # docker on the host trusts the lab registry by its CA (no insecure-registries in daemon.json)
        make_root_dir(hd.root, str(Path(registry.CERTS_D).parent))
        write_root_file(hd.root, registry.CERTS_D, registry.ensure_ca(self._registry_paths).decode())
        if name in self.nat_hosts():  # on the NAT bridge: out only through the router
            address = IPv4Interface(f"{c.nat_address(name)}/{c.nat_network.prefixlen}")
            network.netns_attach(c.host_ns(name), c.nat_bridge, address, gateway=c.router_lan.ip)
            return
        address = IPv4Interface(f"{c.host_address(name)}/{c.network.prefixlen}")
        network.netns_attach(c.host_ns(name), c.bridge, address)  # no gateway: no way out

    def _wait_host(self, name: str) -> None:
        hd, address = self._host(name), self.address(name)
        waited = hosts.wait_ssh(hd, address, lambda: self._ssh_ok(name))
        init = hosts.after_boot(hd)
        for disk in self.attached_disks(name):  # a booted host has a fresh /dev
            self._plug(disk)
        log.info("%s (%s, %s): sshd up after %.1fs (nspawn pid %s, init pid %d)", name, address, hd.suite,
                 waited, read_pid(hd.nspawn_pid_file), init)

    def _prepare_lab(self, suites: set[str]) -> dict[str, SuiteCache]:
        """Everything hosts need before boot: checks, key, caches, bridge, guard, repo server."""
        self._require()  # includes: neither dir on overlayfs
        c = self.config
        c.cache.mkdir(parents=True, exist_ok=True)
        self._ensure_key()
        built = _parallel(lambda s: ensure_suite(c.cache, s, c.mirror), sorted(suites))
        network.raise_inotify_limit()
        network.bridge_up(c.bridge, c.bridge_if)
        # guard: nothing from the lab is forwarded off its bridge (hosts also get no default route)
        network.guard_up(c.nft_table, [c.bridge])
        self._start_repo_server()
        registry.ensure_ca(self._registry_paths)
        self._start_registry(built)
        return {sc.suite: sc for sc in built}

    def _ensure_key(self) -> None:
        if self.key.exists() and self.key.with_suffix(".pub").exists():
            return
        self.key.unlink(missing_ok=True)
        self.key.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"homelab-lab{self.config.instance}",
             "-f", str(self.key)], what="lab ssh key")

    def _ssh_ok(self, name: str) -> bool:
        try:
            return self.run(name, "true", timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _etc_hosts_map(self) -> dict[str, IPv4Address]:
        return {n: self.address(n) for n in self.host_names()}

    def _refresh_etc_hosts(self, exclude: set[str]) -> None:
        """Hosts already up learn the names of hosts added after them."""
        etc_hosts = self._etc_hosts_map()
        for name in etc_hosts:
            hd = self._host(name)
            if name not in exclude and is_mounted(hd.root):
                current = hd.root / "etc/hosts"
                try:  # a link would be followed outside the container: only a plain file is read
                    now = "" if current.is_symlink() else current.read_text()
                except OSError:
                    now = ""
                own = next((ln for ln in now.splitlines() if ln.split()[:1] == ["127.0.1.1"]), None)
                write_root_file(hd.root, "etc/hosts",
                                hosts.render_etc_hosts(name, self.config.bridge_ip, etc_hosts, own))

    # ------------------------------------------------- repo server, registry ----

    @property
    def _repo_daemon(self) -> Daemon:
        return Daemon("repo-http", self.run_dir, ("http.server", str(self.config.repo_port)))

    def _repo_pid(self) -> int | None:
        return self._repo_daemon.pid()

    def _start_repo_server(self) -> None:
        """One `python3 -m http.server` on the bridge address serving every suite's repo."""
        c = self.config
        argv = [_python(), "-m", "http.server", "--bind", str(c.bridge_ip), "--directory", str(c.cache / "repo"),
                str(c.repo_port)]
        # in the lab's cgroup too, so `down` finds it even if its PID file is lost
        proc = self._repo_daemon.start(argv, c.cgroup_name, lambda: hosts.port_open(c.bridge_ip, c.repo_port),
                                       hint=f"is port {c.repo_port} taken? (ss -ltnp)")
        if proc is not None:
            self._procs[proc.pid] = proc
            log.info("apt repo served at http://%s:%d/<suite> (pid %d)", c.bridge_ip, c.repo_port, proc.pid)

    def _stop_repo_server(self) -> None:
        self._repo_daemon.stop(self.config.cgroup_name)

    @property
    def _registry_paths(self) -> registry.RegistryPaths:
        return registry.RegistryPaths(self.config.cache, self.run_dir)

    @property
    def _registry_daemon(self) -> Daemon:
        return Daemon("registry", self.run_dir, ("docker-registry", str(self._registry_paths.config)))

    def registry_client(self) -> registry.RegistryClient:
        """The lab registry's HTTP API, as the outer machine reaches it (TLS, lab CA)."""
        c, paths = self.config, self._registry_paths
        return registry.RegistryClient(f"https://{c.bridge_ip}:{registry.REGISTRY_PORT}",
                                       registry.ssl_context(paths))

    def _start_registry(self, caches: Iterable[SuiteCache]) -> None:
        """Debian's docker-registry on the bridge address, serving the shared image storage."""
        c, paths = self.config, self._registry_paths
        if self._registry_daemon.pid():
            return
        exe = registry.registry_binary(paths, [sc.repo / "pool" for sc in caches])
        registry.issue_server_cert(paths, [registry.REGISTRY_NAME, "localhost"], [str(c.bridge_ip), "127.0.0.1"])
        paths.storage.mkdir(parents=True, exist_ok=True)
        addr = f"{c.bridge_ip}:{registry.REGISTRY_PORT}"
        paths.config.write_text(registry.render_config(addr, paths.storage, paths.cert, paths.key))
        client = self.registry_client()
        proc = self._registry_daemon.start([str(exe), "serve", str(paths.config)], c.cgroup_name, client.ping,
                                           timeout=15, hint=f"is port {registry.REGISTRY_PORT} taken on "
                                                            f"{c.bridge_ip}? (ss -ltnp)")
        if proc is not None:
            self._procs[proc.pid] = proc
            log.info("lab registry at %s:%d (https, lab CA %s; pid %d)", registry.REGISTRY_NAME,
                     registry.REGISTRY_PORT, paths.ca_cert, proc.pid)

    def _stop_registry(self) -> None:
        self._registry_daemon.stop(self.config.cgroup_name)

    def ensure_images(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """Build (once, cached) and push the lab images; returns key -> ref to pull from a host.

        Needs the lab up (its registry runs with it). E.g. {"postgres":
        "labrepo:5000/library/postgres:17.12", ...}; see homelab/lab/images/catalog.py.
        """
        from homelab.lab.images import publish  # the image builder loads only when asked for

        with self._locked():
            if not self._registry_daemon.pid():
                raise LabError("the lab registry is not running", "bring the lab up first (homelab lab up N)")
            return publish.ensure_published(self.config.cache, self.config.mirror or mirror_url(),
                                            self.registry_client(), list(keys) if keys is not None else None)

    # ---------------------------------------------------------------- down ----

    def _sweep(self) -> None:
        """Kernel objects a crashed run may have left behind, found by this lab's names."""
        c = self.config
        # processes first (whatever still lives in this lab's cgroups), then what they used
        for group_dir in cgroups.find_group_dirs(c.cgroup_name):
            cgroups.cleanup([p for p in group_dir.iterdir() if p.is_dir()], c.cgroup_name)
            try:
                group_dir.rmdir()
            except OSError:
                pass
        for point in mounts_under(self.hosts_dir):
            umount(point)
        for ns in network.netns_list(c.ns_prefix):
            network.netns_remove(ns)
        for link in network.links_with_prefix(c.ns_prefix):
            network.netns_remove(link)
        network.guard_down(c.nft_table)
        network.bridge_down(c.bridge)
        network.router_down(c.router_ns, c.router_links)  # found by prefix above too
        network.guard_down(c.nat_table)
        network.bridge_down(c.nat_bridge)
        remove_tree(self.hosts_dir)

    def _reap(self) -> None:
        """Collect our exited children (nspawn, the repo server) so no zombies pile up."""
        for pid, proc in list(self._procs.items()):
            if proc.poll() is not None:
                del self._procs[pid]

    # ------------------------------------------------------------- helpers ----

    def _host(self, name: str) -> HostDir:
        host_number(name)  # validates the name
        return HostDir(self.hosts_dir / name)

    @staticmethod
    def _suite(hd: HostDir) -> str:
        try:
            return hd.suite
        except OSError:
            return "?"

    def _suite_of_existing(self, name: str) -> str:
        hd = self._host(name)
        if not (hd.path / "suite").exists():
            raise LabError(f"no such lab host: {name}", f"hosts: {', '.join(self.host_names()) or 'none (run up)'}")
        return hd.suite

    @staticmethod
    def _check_suite(suite: str) -> None:
        if suite not in SUITES:
            raise LabError(f"unknown suite {suite!r}", f"use one of: {', '.join(SUITES)}")

    def _require(self) -> None:
        why = missing_requirements(self.config)
        if why:
            raise LabError(why)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One lab operation at a time per instance, across processes (re-entrant in-process)."""
        with self._lock_guard:
            outer = self._lock_depth == 0
            self._lock_depth += 1
        try:
            if outer:
                self.config.dir.mkdir(parents=True, exist_ok=True)
                with file_lock(self.config.dir / ".lock", f"lab {self.config.instance}"):
                    yield
            else:
                yield
        finally:
            with self._lock_guard:
                self._lock_depth -= 1

    def _write_inventory(self) -> None:
        inv = self.inventory()
        kh, cfg = [], ["# generated by homelab lab; use: ssh -F <this file> h1"]
        for h in inv["hosts"]:
            kh += [f"{h['name']},{h['address']} {key}" for key in h["host_keys"]]
            cfg.append(f"Host {h['name']}\n  HostName {h['address']}\n  User root\n  IdentityFile {self.key}\n"
                       f"  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n  StrictHostKeyChecking yes")
        _write_atomic(self.known_hosts, "".join(line + "\n" for line in kh))
        _write_atomic(self.ssh_config, "\n".join(cfg) + "\n")
        _write_atomic(self.inventory_path, json.dumps(inv, indent=2) + "\n")


def _python() -> str:
    """An interpreter for the repo server; a frozen homelab binary cannot run `-m http.server`."""
    if getattr(sys, "frozen", False):
        return shutil.which("python3") or "/usr/bin/python3"
    return sys.executable


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
