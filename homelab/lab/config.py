"""Settings of one lab: every per-lab name derives from one instance number.

Two labs run side by side when their `HOMELAB_LAB_INSTANCE` differ: bridge, subnet, repo
port, nft table, cgroup dir and netns/veth names all follow from it. The package cache
(`HOMELAB_LAB_CACHE`) is shared between labs; the runtime dir (`HOMELAB_LAB_DIR`) is not.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from pathlib import Path
from typing import Mapping

from homelab.errors import HomelabError, UsageError

DEFAULT_SUITE = "trixie"
# Debian major version per suite the lab can build (debootstrap on Debian 12 knows both).
SUITES: dict[str, str] = {"trixie": "13", "bookworm": "12"}

# Baked into each suite's read-only base rootfs: every host has these without apt.
BASE_INCLUDE: tuple[str, ...] = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "openssh-sftp-server", "python3",
    "iproute2", "iputils-ping", "sudo", "ca-certificates", "curl", "procps", "less", "gnupg", "kmod",
)

# What a provisioner may `apt-get install` on a lab host: mirrored with dependencies and
# Recommends into the local repo of each suite. "all" applies to every suite; a suite's own
# key adds to it. Names a suite does not have are skipped at build time. Extend this when the
# provisioner starts installing something new (the cached repo is topped up on the next `up`).
# Never the `wireguard` metapackage: its Recommends pull a whole kernel image.
LAB_PACKAGES: dict[str, tuple[str, ...]] = {
    "all": (
        "caddy", "restic", "docker.io", "wireguard-tools", "wireguard-go", "nftables", "iptables",
        "rsync", "jq", "busybox-static", "python3-venv", "tzdata", "unattended-upgrades", "curl",
        "ca-certificates", "sudo", "openssh-server", "iputils-ping",
        # the lab registry's binary comes from here (homelab/lab/images/registry.py); hosts may run one too
        "docker-registry",
        # apps of the service kind (Debian packages run as systemd units), clients for DB checks
        "syncthing", "radicale", "postgresql-client", "valkey-tools",
        # ACME test server for the ingress layer (Let's Encrypt's Pebble)
        "pebble",
        # mkfs for the storage layer's disks (lab hosts get loop devices: homelab/lab/disks.py)
        "e2fsprogs", "xfsprogs", "btrfs-progs",
        # a terminal multiplexer on a host: the one-off server's TUI test runs tmux there
        "tmux",
    ),
    # bookworm's docker-compose is the old python v1: only trixie gets Compose v2
    # pebble: Let's Encrypt's test ACME server, so ingress proves real ACME in the lab
    "trixie": ("restic-rest-server", "docker-compose", "pebble"),
}

# tool -> Debian package providing it, for the one-line "install this" message
REQUIRED_TOOLS: dict[str, str] = {
    "systemd-nspawn": "systemd-container", "debootstrap": "debootstrap", "apt-ftparchive": "apt-utils",
    "nft": "nftables", "ip": "iproute2", "ssh": "openssh-client", "ssh-keygen": "openssh-client",
    "nsenter": "util-linux", "dpkg-deb": "dpkg",
}
DEPS_PACKAGES: tuple[str, ...] = (
    "debootstrap", "systemd-container", "apt-utils", "iproute2", "nftables", "openssh-client",
    "util-linux", "dpkg-dev",
)

MAX_INSTANCE = 99  # 10.(77+I).0.0/24 and "hl<I>-h<N>" names (<= 15 chars) stay valid
MAX_HOSTS = 200  # hN gets .(10+N)


class LabError(HomelabError):
    """The lab could not do what was asked; the hint says what to try."""


def packages_for(suite: str) -> list[str]:
    """The mirrored package names for one suite, in order, without duplicates."""
    names = [*LAB_PACKAGES.get("all", ()), *LAB_PACKAGES.get(suite, ())]
    return list(dict.fromkeys(names))


def deps_command() -> str:
    """The apt-get line that installs every outer-machine tool the lab needs."""
    return "apt-get install -y " + " ".join(DEPS_PACKAGES)


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise UsageError(f"{name}={raw!r}: should be a number", f"unset {name} or set it to e.g. 0")
    return int(raw)


@dataclass(frozen=True)
class LabConfig:
    """Names, addresses and paths of one lab instance."""

    instance: int
    dir: Path  # runtime state of this lab (hosts' layers, pids, inventory)
    cache: Path  # suite bases + local apt repos, shared by labs
    mirror: str | None = None  # Debian mirror for builds; None = the outer machine's

    def __post_init__(self) -> None:
        if not 0 <= self.instance <= MAX_INSTANCE:
            raise UsageError(f"lab instance {self.instance}: should be 0-{MAX_INSTANCE}",
                             "set HOMELAB_LAB_INSTANCE to a small number")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LabConfig:
        env = os.environ if env is None else env
        instance = _int_env(env, "HOMELAB_LAB_INSTANCE", 0)
        root = Path("/var/lib/homelab-lab")
        return cls(
            instance=instance,
            dir=Path(env.get("HOMELAB_LAB_DIR") or root / str(instance)),
            cache=Path(env.get("HOMELAB_LAB_CACHE") or root / "cache"),
            mirror=env.get("HOMELAB_LAB_MIRROR") or None,
        )

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(f"10.{77 + self.instance}.0.0/24")

    @property
    def bridge(self) -> str:
        return f"hlbr{self.instance}"

    @property
    def bridge_if(self) -> IPv4Interface:
        return IPv4Interface(f"{self.network[1]}/{self.network.prefixlen}")

    @property
    def bridge_ip(self) -> IPv4Address:
        return self.bridge_if.ip

    @property
    def repo_port(self) -> int:
        return 8080 + self.instance

    @property
    def nft_table(self) -> str:
        return f"homelab_lab{self.instance}"

    @property
    def cgroup_name(self) -> str:
        return f"homelab-lab{self.instance}"

    @property
    def ns_prefix(self) -> str:
        # the trailing "-" keeps lab 1's names from matching lab 10's
        return f"hl{self.instance}-"

    def host_address(self, name: str) -> IPv4Address:
        return self.network[10 + host_number(name)]

    # Hosts behind NAT (`Lab.move_behind_nat`) sit on a second bridge whose only way out is the
    # router: a network namespace with a leg on each bridge that masquerades, as a home router
    # does. Nothing on the main bridge can open a connection to them.
    @property
    def nat_network(self) -> IPv4Network:
        return IPv4Network(f"10.{77 + self.instance}.1.0/24")

    @property
    def nat_bridge(self) -> str:
        return f"hlnat{self.instance}"

    @property
    def nat_bridge_if(self) -> IPv4Interface:
        """The outer machine's address on the NAT bridge (like a laptop on the home LAN)."""
        return IPv4Interface(f"{self.nat_network[1]}/{self.nat_network.prefixlen}")

    @property
    def nat_table(self) -> str:
        return f"{self.nft_table}_nat"

    @property
    def router_ns(self) -> str:
        return f"{self.ns_prefix}router"

    @property
    def router_links(self) -> tuple[str, str]:
        """Outer ends of the router's veths: (on the main bridge, on the NAT bridge)."""
        return f"{self.ns_prefix}rwan", f"{self.ns_prefix}rlan"

    @property
    def router_wan(self) -> IPv4Interface:
        return IPv4Interface(f"{self.network[254]}/{self.network.prefixlen}")

    @property
    def router_lan(self) -> IPv4Interface:
        return IPv4Interface(f"{self.nat_network[254]}/{self.nat_network.prefixlen}")

    def nat_address(self, name: str) -> IPv4Address:
        return self.nat_network[10 + host_number(name)]

    def host_ns(self, name: str) -> str:
        return f"{self.ns_prefix}{name}"

    def repo_url(self, suite: str) -> str:
        return f"http://{self.bridge_ip}:{self.repo_port}/{suite}"


_HOST_RE = re.compile(r"^h([1-9][0-9]*)$")


def host_number(name: str) -> int:
    m = _HOST_RE.match(name)
    if not m or int(m.group(1)) > MAX_HOSTS:
        raise UsageError(f"no such lab host name: {name!r}", f"lab hosts are named h1..h{MAX_HOSTS}")
    return int(m.group(1))


def parse_hosts_spec(spec: str) -> dict[str, int]:
    """`"3"` -> {trixie: 3}; `"trixie:3,bookworm:1"` -> both, hosts numbered in that order."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        suite, _, count = part.rpartition(":")
        suite = suite or DEFAULT_SUITE
        if suite not in SUITES or not count.isdigit():
            raise UsageError(f"lab hosts {spec!r}: bad part {part!r}",
                             f"use N or SUITE:N[,SUITE:N], suites: {', '.join(SUITES)}")
        counts[suite] = counts.get(suite, 0) + int(count)
    if sum(counts.values()) < 1:
        raise UsageError(f"lab hosts {spec!r}: asks for no host", "ask for at least one host")
    return counts


def fs_type(path: Path) -> str:
    """Filesystem type of the mount holding `path` (or its nearest existing parent)."""
    path = path.absolute()
    while not path.exists():
        path = path.parent
    best, kind = "", ""
    for mount_point, fstype in _mounts():
        if (str(path) + "/").startswith(mount_point.rstrip("/") + "/") and len(mount_point) >= len(best):
            best, kind = mount_point, fstype
    return kind


def _mounts() -> list[tuple[str, str]]:
    rows = []
    with open("/proc/self/mounts", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            rows.append((unescape_mount(parts[1]), parts[2]))
    return rows


def unescape_mount(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def missing_requirements(config: LabConfig | None = None) -> str | None:
    """One line saying why this machine cannot run the lab, or None when it can."""
    if os.geteuid() != 0:
        return "homelab lab needs root (run it as root or with sudo)"
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"homelab lab needs {', '.join(missing)}; install with: {deps_command()}"
    if not Path("/dev/net/tun").exists():
        return "homelab lab needs /dev/net/tun (wireguard-go in the hosts binds it)"
    config = config or LabConfig.from_env()
    for label, path in (("HOMELAB_LAB_DIR", config.dir), ("HOMELAB_LAB_CACHE", config.cache)):
        if fs_type(path) == "overlay":
            return f"{label} ({path}) is on overlayfs; host layers and docker need a real filesystem"
    return None
