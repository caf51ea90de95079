"""One lab host: an overlay layer over its suite's base, booted by systemd-nspawn.

A host's disk is `hosts/<name>/upper` (+ `docker/`, bind-mounted as /var/lib/docker); its
identity (hostname, /etc/hosts, apt source, host keys, authorized_keys) is written from
outside before boot. Stopping keeps the disk, so the host comes back with the same keys.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Callable, Mapping

from homelab.lab import cgroups
from homelab.lab.config import LabError
from homelab.lab.system import (
    children, is_mounted, kill, make_root_dir, pid_alive, proc_cmdline, proc_comm, read_pid, remove_tree, run,
    umount, wait_gone, write_root_file,
)

NSPAWN = "systemd-nspawn"
# nspawn mounts the cgroup-v1 controllers read-only when it uses no user namespace; dockerd
# and runc in the host must create cgroups, so flip them to rw in the container's mounts.
CGROUP_RW_SCRIPT = ("for c in /sys/fs/cgroup/*/; do mount -o remount,bind,rw \"$c\" 2>/dev/null; done; "
                    "mount -o remount,bind,rw /sys/fs/cgroup 2>/dev/null; true")
# SYSTEMD_SECCOMP=0: runc inside needs keyctl & co ("unable to join session keyring").
# API_VFS_WRITABLE=network: dockerd writes net.* sysctls (IP forwarding).
NSPAWN_ENV = {"SYSTEMD_SECCOMP": "0", "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}


@dataclass(frozen=True)
class HostDir:
    """Files of one host under `<lab dir>/hosts/<name>`."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def upper(self) -> Path:
        return self.path / "upper"

    @property
    def workdir(self) -> Path:
        return self.path / "work"

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def docker(self) -> Path:
        return self.path / "docker"

    @property
    def console(self) -> Path:
        return self.path / "console.log"

    @property
    def nspawn_pid_file(self) -> Path:
        return self.path / "nspawn.pid"

    @property
    def init_pid_file(self) -> Path:
        return self.path / "init.pid"

    @property
    def cgroups_file(self) -> Path:
        return self.path / "cgroups"

    @property
    def suite(self) -> str:
        return (self.path / "suite").read_text().strip()

    def create(self, suite: str) -> None:
        for d in (self.upper, self.workdir, self.root, self.docker):
            d.mkdir(parents=True, exist_ok=True)
        (self.path / "suite").write_text(suite + "\n")

    def public_keys(self) -> list[str]:
        """The host's ssh public keys ("type base64"), read from its disk (works while stopped)."""
        keys = []
        for pub in sorted((self.upper / "etc/ssh").glob("ssh_host_*_key.pub")):
            words = pub.read_text().split()
            if len(words) >= 2:
                keys.append(f"{words[0]} {words[1]}")
        return keys


# --------------------------------------------------------------- identity -------

def render_etc_hosts(name: str, repo_ip: IPv4Address, hosts: Mapping[str, IPv4Address],
                     own_line: str | None = None) -> str:
    """`own_line`: the host's 127.0.1.1 line as it is now (its own name, maybe set by homelab's
    compute layer since), kept when the lab adds the names of newer hosts."""
    lines = ["127.0.0.1 localhost", own_line or f"127.0.1.1 {name}", f"{repo_ip} labrepo"]
    lines += [f"{addr} {host}" for host, addr in hosts.items()]
    return "\n".join(lines) + "\n"


def mount_layer(hd: HostDir, lower: Path) -> None:
    if not is_mounted(hd.root):
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={lower},upperdir={hd.upper},workdir={hd.workdir}", str(hd.root)],
            what=f"{hd.name}: mount overlay")


def write_identity(hd: HostDir, etc_hosts: str, apt_source: str, authorized_key: str) -> None:
    r = hd.root
    write_root_file(r, "etc/hostname", hd.name + "\n")
    write_root_file(r, "etc/hosts", etc_hosts)
    write_root_file(r, "etc/resolv.conf", "# lab host: no DNS server reachable\n")
    write_root_file(r, "etc/apt/sources.list", apt_source + "\n")
    for extra in (r / "etc/apt/sources.list.d").glob("*"):
        if not extra.is_dir():
            extra.unlink()  # only the local repo: nothing else is reachable
    if not (r / "etc/ssh/ssh_host_ed25519_key").exists():
        run(["ssh-keygen", "-q", "-A", "-f", str(r)], what=f"{hd.name}: host keys")
    admin = user_ids(r, "admin")
    for home, owner in (("root", (0, 0)), ("home/admin", admin)):
        make_root_dir(r, f"{home}/.ssh", 0o700, owner)
        write_root_file(r, f"{home}/.ssh/authorized_keys", authorized_key, 0o600, owner)


def user_ids(root: Path, user: str) -> tuple[int, int]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3])
    raise LabError(f"no user {user} in {root}/etc/passwd")


# ------------------------------------------------------------ processes ---------

def nspawn_argv(hd: HostDir, machine: str, netns: str) -> list[str]:
    return [
        NSPAWN, "--boot", "--register=no", "--keep-unit", "--quiet",  # outer PID 1 is not systemd
        f"--directory={hd.root}", f"--machine={machine}", f"--hostname={hd.name}",
        f"--network-namespace-path=/run/netns/{netns}",
        # docker in the host: all capabilities, but module loading and the clock stay outside
        "--capability=all", "--drop-capability=CAP_SYS_MODULE,CAP_SYS_TIME",
        "--resolv-conf=off", "--timezone=off", "--link-journal=no", "--console=passive",
        "--bind=/dev/net/tun",  # wireguard-go
        f"--bind={hd.docker}:/var/lib/docker",  # docker's overlay2 cannot sit on the host's overlay
    ]


def in_host_cgroup(pid: int, group: str, host: str) -> bool:
    """A recorded container init PID is ours only while it lives in the host's cgroup."""
    try:
        return f"/{group}/{host}" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def running_pid(hd: HostDir) -> int | None:
    """The recorded nspawn PID if that process is still the nspawn of this host's root."""
    pid = read_pid(hd.nspawn_pid_file)
    if pid and pid_alive(pid, NSPAWN) and f"--directory={hd.root}" in proc_cmdline(pid):
        return pid
    return None


def start(hd: HostDir, machine: str, netns: str, group: str) -> subprocess.Popen[bytes]:
    """Boot the host in the background, inside its own cgroup dirs."""
    proc, dirs = cgroups.spawn(nspawn_argv(hd, machine, netns), group, hd.name, hd.console,
                               env={**os.environ, **NSPAWN_ENV})
    hd.cgroups_file.write_text("".join(f"{d}\n" for d in dirs))
    hd.nspawn_pid_file.write_text(f"{proc.pid}\n")
    hd.init_pid_file.unlink(missing_ok=True)
    return proc


def console_tail(hd: HostDir, lines: int = 15) -> str:
    try:
        return "\n".join(hd.console.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_ssh(hd: HostDir, address: IPv4Address, ssh_ok: Callable[[], bool], timeout: float = 90) -> float:
    """Wait until sshd accepts the lab key with the expected host key; returns seconds waited."""
    t0 = time.monotonic()
    pid = read_pid(hd.nspawn_pid_file)
    while True:
        if not pid or not pid_alive(pid, NSPAWN):
            raise LabError(f"{hd.name}: systemd-nspawn exited during boot; end of {hd.console}:\n"
                           + console_tail(hd))
        if port_open(address, 22) and ssh_ok():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise LabError(f"{hd.name} ({address}): ssh not answering after {timeout:.0f}s",
                           f"see {hd.console}")
        time.sleep(0.1)


def port_open(address: IPv4Address, port: int) -> bool:
    try:
        with socket.create_connection((str(address), port), timeout=0.5):
            return True
    except OSError:
        return False


def after_boot(hd: HostDir) -> int:
    """Record the container's init PID and make its cgroup mounts writable (docker needs it)."""
    nspawn = read_pid(hd.nspawn_pid_file) or 0
    init = next((p for p in children(nspawn) if proc_comm(p) == "systemd"), None)
    if init is None:
        raise LabError(f"{hd.name}: cannot find the container's init under nspawn pid {nspawn}")
    hd.init_pid_file.write_text(f"{init}\n")
    run(["nsenter", "-t", str(init), "-m", "sh", "-c", CGROUP_RW_SCRIPT], what=f"{hd.name}: cgroups rw")
    return init


def request_poweroff(hd: HostDir) -> None:
    """SIGTERM to nspawn = SIGRTMIN+3 to the host's systemd: an orderly poweroff (~1.5 s)."""
    pid = running_pid(hd)
    if pid:
        kill(pid, signal.SIGTERM)


def stop(hd: HostDir, group: str, timeout: float = 10) -> None:
    """Power the host off (killing it after `timeout`) and unmount its layer; keeps its disk."""
    pid = running_pid(hd)
    init = read_pid(hd.init_pid_file)
    init_ours = bool(init and pid_alive(init, "systemd") and in_host_cgroup(init, group, hd.name))
    if pid:
        kill(pid, signal.SIGTERM)
        if not wait_gone(pid, timeout, NSPAWN):
            if init_ours and init:
                kill(init, signal.SIGKILL)  # ends the whole PID namespace
            time.sleep(0.5)
            kill(pid, signal.SIGKILL)
            wait_gone(pid, 5, NSPAWN)
    elif init_ours and init:
        kill(init, signal.SIGKILL)  # a container init whose nspawn is gone
    hd.nspawn_pid_file.unlink(missing_ok=True)
    hd.init_pid_file.unlink(missing_ok=True)
    if hd.cgroups_file.exists():
        cgroups.cleanup([Path(line) for line in hd.cgroups_file.read_text().split()], group)
        hd.cgroups_file.unlink()
    if is_mounted(hd.root):
        umount(hd.root)


def wipe(hd: HostDir) -> None:
    """Forget the host's disk (after stop): the next boot is pristine, with new host keys."""
    remove_tree(hd.path)
