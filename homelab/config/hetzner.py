"""`compute.hetzner:` (layer 3): Hetzner Cloud servers homelab creates, resizes and deletes.

Every identifier here ends up in an API call, a label, a hostname or a shell command on the
new server, so each is checked against a strict pattern. Names are shared with adopted
machines (`compute.machines`): one name, one host.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from homelab.config.reader import NAME, Section
from homelab.config.yamlpos import show

SERVER_TYPE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")  # cx22, cax11, ccx13
LOCATION = re.compile(r"^[a-z][a-z0-9-]{1,15}$")  # fsn1, nbg1, hel1, ash, hil, sin
IMAGE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # debian-13, ubuntu-24.04, or an id
# Hetzner label rules: key = optional DNS-subdomain prefix + "/" + name (63 chars), value may be empty
LABEL_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
LABEL_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$")

# Labels homelab sets itself: a server carrying both is ours (and only then ever changed or deleted).
MANAGED_BY = "managed-by"
CLUSTER_LABEL = "homelab/cluster"
SERVER_LABEL = "homelab/server"
DISK_LABEL = "homelab/disk"  # on volumes: the storage.disks name it is for
RESERVED_PREFIXES = ("homelab/", "hetzner.cloud/")

DEFAULT_ENDPOINT = "https://api.hetzner.cloud/v1"


@dataclass(frozen=True)
class Server:
    """One Hetzner Cloud server as the config wants it."""

    name: str
    type: str
    location: str
    image: str = "debian-13"
    labels: tuple[tuple[str, str], ...] = ()  # the user's own labels (ours are added on top)
    protection: bool = True  # delete + rebuild protection
    backups: bool = False  # Hetzner backups: +20 % of the server price


@dataclass(frozen=True)
class HetznerConfig:
    servers: tuple[Server, ...] = ()
    api_endpoint: str | None = None  # None: the real API (or HOMELAB_HCLOUD_ENDPOINT)
    ssh_key_name: str = "homelab-operator"  # name of the operator key uploaded to Hetzner
    cluster: str = "homelab"  # value of the homelab/cluster label: which servers this config owns
    action_timeout: int = 600  # seconds an API action (create, resize ...) may take
    ssh_timeout: int = 180  # seconds a new server has to answer SSH

    def selector(self) -> str:
        """Label selector for the servers this config owns."""
        return f"{MANAGED_BY}=homelab,{CLUSTER_LABEL}={self.cluster}"

    def labels_for(self, server: Server) -> dict[str, str]:
        """All labels a server carries: the user's plus ours."""
        out = dict(server.labels)
        out.update({MANAGED_BY: "homelab", CLUSTER_LABEL: self.cluster, SERVER_LABEL: server.name})
        return out

    def server(self, name: str) -> Server | None:
        return next((s for s in self.servers if s.name == name), None)

    def volume_labels(self, server: str, disk: str) -> dict[str, str]:
        """The labels of a volume homelab makes for `disk` on `server` (ours, like a server's)."""
        return {MANAGED_BY: "homelab", CLUSTER_LABEL: self.cluster, SERVER_LABEL: server, DISK_LABEL: disk}


def volume_name(server: str, disk: str) -> str:
    """The Hetzner name of the volume for `disk` on `server` (names are unique per project)."""
    return f"{server}-{disk}"


def _label_key_ok(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not LABEL_PREFIX.match(prefix)):
        return False
    return bool(LABEL_NAME.match(name))


def parse_labels(sec: Section, key: str) -> tuple[tuple[str, str], ...]:
    node = sec.raw(key)
    if node is None or node.value is None:
        return ()
    path = sec.sub(key)
    if not isinstance(node.value, dict):
        sec.fail(node, path, "should be a mapping of label: value", "like {role: web}")
        return ()
    out: list[tuple[str, str]] = []
    for k, vnode in node.value.items():
        v = vnode.value
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)
        if not _label_key_ok(k):
            sec.fail(vnode, f"{path}.{k}", "is not a valid Hetzner label key",
                     "letters, digits, '-', '_', '.', up to 63 characters, optional 'prefix/'", key=True)
        elif k == MANAGED_BY or k.startswith(RESERVED_PREFIXES):
            sec.fail(vnode, f"{path}.{k}", "is reserved", "homelab sets managed-by and homelab/* labels itself",
                     key=True)
        elif not isinstance(v, str) or not LABEL_VALUE.match(v):
            sec.fail(vnode, f"{path}.{k}", f"{show(v)} is not a valid label value",
                     "up to 63 letters, digits, '-', '_', '.', starting and ending with a letter or digit")
        else:
            out.append((k, v))
    return tuple(sorted(out))


def parse_server(sec: Section) -> Server | None:
    name = sec.text("name", required=True, pattern=NAME, hint="lowercase letters, digits and '-', like 'web-1'")
    stype = sec.text("type", required=True, pattern=SERVER_TYPE, hint="a Hetzner server type like cx22 or cax11")
    location = sec.text("location", required=True, pattern=LOCATION, hint="a Hetzner location like fsn1, nbg1, hel1")
    image = sec.text("image", "debian-13", pattern=IMAGE, hint="an image name like debian-13")
    labels = parse_labels(sec, "labels")
    protection = sec.flag("protection", True)
    backups = sec.flag("backups", False)
    sec.done(["name", "type", "location", "image", "labels", "protection", "backups"])
    if not sec.ok or name is None or stype is None or location is None:
        return None
    return Server(name=name, type=stype, location=location, image=image or "debian-13", labels=labels,
                  protection=protection, backups=backups)


def check_endpoint(sec: Section, key: str) -> str | None:
    """https anywhere; plain http only to this machine (the token travels with every request)."""
    url = sec.text(key)
    if url is None:
        return None
    parsed = urlparse(url)
    host = parsed.hostname or ""
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parsed.scheme not in ("https", "http") or not host:
        sec.fail(sec.raw(key), sec.sub(key), f"{show(url)} is not an http(s) URL", "like https://api.hetzner.cloud/v1")
        return None
    if parsed.scheme == "http" and not loopback:
        sec.fail(sec.raw(key), sec.sub(key), "plain http is allowed only to this machine (127.0.0.1)",
                 "the API token is sent with every request: use https")
        return None
    return url.rstrip("/")


def parse_hetzner(sec: Section, machine_names_seen: dict[str, str]) -> HetznerConfig:
    """`machine_names_seen` maps adopted machine names to their config path (names must not clash)."""
    servers = sec.unique_items("servers", parse_server, seen=dict(machine_names_seen),
                               hint="every machine and server needs its own name")
    endpoint = check_endpoint(sec, "api_endpoint")
    key_name = sec.text("ssh_key_name", "homelab-operator", pattern=NAME, hint="like 'homelab-operator'")
    cluster = sec.text("cluster", "homelab", pattern=NAME, hint="lowercase letters, digits and '-', like 'home-prod'")
    action_timeout = sec.integer("action_timeout", 600, lo=1, hi=3600)
    ssh_timeout = sec.integer("ssh_timeout", 180, lo=1, hi=3600)
    sec.done(["servers", "api_endpoint", "ssh_key_name", "cluster", "action_timeout", "ssh_timeout"])
    return HetznerConfig(servers=tuple(servers), api_endpoint=endpoint, ssh_key_name=key_name or "homelab-operator",
                         cluster=cluster or "homelab", action_timeout=action_timeout or 600,
                         ssh_timeout=ssh_timeout or 180)
