"""Docker on an apps host: Debian's packages, the daemon.json homelab owns, published ports.

Why Debian 13 only for compose apps: Debian 13's `docker-compose` (2.26) is Compose v2, a CLI
plugin (`docker compose`) with `up --wait` — the health gate every deploy relies on. Debian
12's `docker-compose` is Compose v1 (1.29, Python): no `--wait`, no `ps --format json`, and it
is unmaintained upstream since 2023. Installing v2 on Debian 12 would mean Docker's own apt
repository, which homelab does not add (offline sites, the lab). So the plan refuses a compose
app on Debian 12 with that reason instead of half-working.

Published ports bind to 127.0.0.1 or a mesh address, never to all addresses: Docker's own
iptables rules for a published port run before the host firewall's input chain, so
`0.0.0.0:8080:80` would be reachable from everywhere whatever nftables says.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Mapping

from homelab.config.apps import COMPOSE_PACKAGES
from homelab.errors import HomelabError
from homelab.provision.apt_lock import APT_GET

DAEMON_JSON = "/etc/docker/daemon.json"
PACKAGES = COMPOSE_PACKAGES  # the apps' package claims (homelab/config/apps.py)
MIN_COMPOSE = (2, 20)  # `up --wait-timeout` arrived in 2.17; 2.20 also gives `ps --format json` per line
LOG_DRIVERS = ("local", "json-file")


@dataclass(frozen=True)
class DockerSettings:
    """What homelab writes to daemon.json (defaults: rotated local logs, live restore)."""

    log_driver: str = "local"  # "local": compressed, rotated by default; "json-file" for `docker logs` tools
    log_max_size: str = "10m"  # per file
    log_max_file: int = 3  # files kept per container
    live_restore: bool = True  # containers keep running while dockerd restarts (package upgrades)
    registry_mirrors: tuple[str, ...] = ()  # pull-through mirrors for Docker Hub images only (Docker's rule)
    insecure_registries: tuple[str, ...] = ()  # host:port served over plain http (a lab or LAN mirror)


def render_daemon_json(settings: DockerSettings) -> str:
    """daemon.json text; the same settings always give the same bytes (compared by hash on the host)."""
    if settings.log_driver not in LOG_DRIVERS:
        raise HomelabError(f"docker log driver {settings.log_driver!r} is not supported",
                           f"use one of {', '.join(LOG_DRIVERS)}")
    if not re.fullmatch(r"[1-9][0-9]*[kmg]", settings.log_max_size):
        raise HomelabError(f"docker log max size {settings.log_max_size!r} is not a size", "write it like 10m")
    doc: dict[str, object] = {
        "log-driver": settings.log_driver,
        "log-opts": {"max-size": settings.log_max_size, "max-file": str(settings.log_max_file)},
        "live-restore": settings.live_restore,
    }
    if settings.registry_mirrors:
        doc["registry-mirrors"] = list(settings.registry_mirrors)
    if settings.insecure_registries:
        doc["insecure-registries"] = list(settings.insecure_registries)
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def compose_support(os_id: str, version: str) -> str | None:
    """None when compose apps can run on this OS, else the reason the plan shows."""
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if os_id == "debian" and major >= 13:
        return None
    if os_id == "debian":
        return (f"Debian {version}'s docker-compose is Compose v1 (no `up --wait` health gate); "
                "compose apps need Debian 13 (docker-compose 2.26, Compose v2)")
    return f"{os_id} {version}: compose apps are supported on Debian 13 only (packages {', '.join(PACKAGES)})"


def parse_compose_version(text: str) -> tuple[int, ...] | None:
    """`docker compose version --short` or the long form -> (2, 26, 1); None if not v2."""
    m = re.search(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not m or "docker-compose version 1." in text:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def render_install_script(settings: DockerSettings) -> str:
    """Install the packages and write daemon.json; dockerd restarts only when the file changed.

    Prints `docker changed` when something was done, nothing otherwise (a second run is silent)."""
    text = render_daemon_json(settings)
    pkgs = " ".join(PACKAGES)
    return "\n".join([
        "set -eu",
        f"[ \"$(dpkg-query -W -f='${{db:Status-Abbrev}}\\n' {pkgs} 2>/dev/null | grep -c '^ii')\" = {len(PACKAGES)} ] || "
        f"{{ {APT_GET} update -qq && DEBIAN_FRONTEND=noninteractive {APT_GET} install -y -q {pkgs} >/dev/null; "
        "echo 'docker changed: installed'; }",
        "mkdir -p /etc/docker",
        f"trap 'rm -f {DAEMON_JSON}.new' EXIT",  # a write that failed half-way (a full disk) leaves no .new
        f"cat > {DAEMON_JSON}.new <<'HOMELAB_EOF'",
        text.rstrip("\n"),
        "HOMELAB_EOF",
        f"if cmp -s {DAEMON_JSON}.new {DAEMON_JSON}; then rm {DAEMON_JSON}.new; else",
        f"  mv {DAEMON_JSON}.new {DAEMON_JSON}",
        "  systemctl restart docker",  # log options apply at start; live-restore keeps containers up
        "  echo 'docker changed: daemon.json'",
        "fi",
        "systemctl is-active -q docker || { systemctl start docker; echo 'docker changed: started'; }",
        "docker compose version --short",
    ]) + "\n"


def check_bind_address(address: str, allowed: tuple[str, ...] = ()) -> str:
    """The address a container port is published on: loopback, or one of `allowed` (mesh addresses)."""
    try:
        ip = ip_address(address)
    except ValueError:
        raise HomelabError(f"publish address {address!r} is not an IP address",
                           "use 127.0.0.1 or the host's mesh address") from None
    if ip.is_unspecified:
        raise HomelabError(f"publish address {address} would expose the port on every interface, past the firewall",
                           "use 127.0.0.1 (ingress reaches it) or the host's mesh address")
    if not ip.is_loopback and address not in allowed:
        raise HomelabError(f"publish address {address} is neither loopback nor a mesh address of this host",
                           f"use 127.0.0.1{' or ' + ', '.join(allowed) if allowed else ''}")
    return address


@dataclass(frozen=True)
class PortBinding:
    """A container port published on the host: `address:host_port:container_port/proto`."""

    host_port: int
    container_port: int
    address: str = "127.0.0.1"
    protocol: str = "tcp"

    def render(self, allowed: tuple[str, ...] = ()) -> str:
        addr = check_bind_address(self.address, allowed)
        host = f"[{addr}]" if ":" in addr else addr
        return f"{host}:{self.host_port}:{self.container_port}/{self.protocol}"


def publish_problems(ports_by_container: Mapping[str, list[str]]) -> list[str]:
    """From `docker ps --format '{{.Names}} {{.Ports}}'`: containers published on all addresses."""
    bad = []
    for name, ports in ports_by_container.items():
        for p in ports:
            if p.startswith(("0.0.0.0:", ":::", "[::]:")):
                bad.append(f"{name}: {p} is published on every address")
    return bad
