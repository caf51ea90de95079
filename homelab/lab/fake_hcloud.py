"""A stand-in for the Hetzner Cloud API, on 127.0.0.1, for trying cloud configs on lab hosts.

This is NOT Hetzner. It answers the endpoints homelab's `hcloud` calls use (servers,
ssh_keys, actions, server_types, locations, images, pricing, DNS zones with their RRSets:
`fake_hcloud_zones`, and volumes: `fake_hcloud_volumes`) in the real API's shapes, so
the real `hcloud` library talks to it unchanged. When a server is "created", a lab host is
booted (through a HostBackend) and its address is the server's public IPv4; the cloud-init
user data's `ssh_keys` host key and the project SSH keys are installed on that host before
its sshd starts, as cloud-init would, so the first connection is verified like on Hetzner.
Deleting the server stops the lab host. A volume attached to a server becomes a loop device
of its lab host (Lab.attach_disk), at the by-id path the API names.

Switches for testing the unhappy paths:
- `rate_limit(n)`: the next n requests get 429 `rate_limit_exceeded` with Hetzner's
  RateLimit-Limit / -Remaining / -Reset headers;
- `slow_actions(seconds)`: actions stay `running` that long;
- `keep_initializing(name, seconds)`: the server reads `initializing`, with no address, for
  that long from now (or until its host has booted, if that takes longer): a server an
  earlier apply made that is still booting when the next apply starts (a stand-in knob:
  Hetzner's own boot time is what it imitates);
- `readonly_tokens`: tokens that may only GET (`token_readonly` otherwise), like Hetzner's.

Simplifications (documented, on purpose): power off/on only flips the status (the lab host
keeps running); a resize changes the recorded type only; prices are a fixed sample table.
Private host keys from user data are handed to the backend and not kept.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol
from urllib.parse import parse_qs, urlparse

import yaml

if TYPE_CHECKING:
    from homelab.lab.manager import Lab

log = logging.getLogger("homelab.fake_hcloud")

RATE_LIMIT = 3600  # Hetzner's default: requests per hour and project

LOCATIONS: list[dict[str, Any]] = [
    {"id": 1, "name": "fsn1", "description": "Falkenstein DC Park 1", "country": "DE", "city": "Falkenstein",
     "latitude": 50.47612, "longitude": 12.370071, "network_zone": "eu-central"},
    {"id": 2, "name": "nbg1", "description": "Nuremberg DC Park 1", "country": "DE", "city": "Nuremberg",
     "latitude": 49.452102, "longitude": 11.076665, "network_zone": "eu-central"},
    {"id": 3, "name": "hel1", "description": "Helsinki DC Park 1", "country": "FI", "city": "Helsinki",
     "latitude": 60.169855, "longitude": 24.938379, "network_zone": "eu-central"},
]

# name: (cores, memory GB, disk GB, architecture, net EUR/month) — a sample, not today's price list
SERVER_TYPES = {
    "cx22": (2, 4.0, 40, "x86", 3.79),
    "cx32": (4, 8.0, 80, "x86", 6.80),
    "cx42": (8, 16.0, 160, "x86", 16.40),
    "cax11": (2, 4.0, 40, "arm", 3.79),
    "cax21": (4, 8.0, 80, "arm", 6.49),
    "ccx13": (2, 8.0, 80, "x86", 12.49),
}
IPV4_NET = 0.50
VAT = 0.19
BACKUP_PERCENT = "20.00"
IMAGES = [("debian-12", "12"), ("debian-13", "13"), ("ubuntu-24.04", "24.04")]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _money(net: float) -> dict[str, str]:
    return {"net": f"{net:.10f}", "gross": f"{net * (1 + VAT):.10f}"}


def _price(location: str, net_month: float) -> dict[str, Any]:
    return {"location": location, "price_hourly": _money(net_month / 730), "price_monthly": _money(net_month),
            "included_traffic": 21990232555520, "price_per_tb_traffic": _money(1.0)}


@dataclass(frozen=True)
class HostKey:
    private: str  # OpenSSH private key text (from user data); passed on, never stored here
    public: str


class HostBackend(Protocol):
    """Where fake servers run. The lab backend boots a real lab host per server."""

    def boot(self, name: str, image: str, authorized_keys: list[str], host_key: HostKey | None) -> str:
        """Start a host, return its IPv4 address (blocking until it accepts SSH)."""

    def destroy(self, name: str) -> None: ...

    def attach_disk(self, name: str, serial: str, size: int) -> None:
        """Give server `name`'s host a block device of `size` bytes, serial `serial`."""

    def detach_disk(self, name: str, serial: str) -> None: ...

    def resize_disk(self, name: str, serial: str, size: int) -> None:
        """Grow the block device `serial` of server `name`'s host to `size` bytes."""


class NoHosts:
    """Servers with documentation addresses (192.0.2.0/24) and nothing behind them: unit tests."""

    def __init__(self) -> None:
        self.n = itertools.count(10)
        self.booted: dict[str, tuple[list[str], HostKey | None]] = {}
        self.disks: dict[tuple[str, str], int] = {}  # (server, serial) -> bytes

    def boot(self, name: str, image: str, authorized_keys: list[str], host_key: HostKey | None) -> str:
        self.booted[name] = (authorized_keys, host_key)
        return f"192.0.2.{next(self.n)}"

    def destroy(self, name: str) -> None:
        self.booted.pop(name, None)

    def attach_disk(self, name: str, serial: str, size: int) -> None:
        self.disks[(name, serial)] = size

    def detach_disk(self, name: str, serial: str) -> None:
        self.disks.pop((name, serial), None)

    def resize_disk(self, name: str, serial: str, size: int) -> None:
        if (name, serial) in self.disks:
            self.disks[(name, serial)] = size


class LabHosts:
    """Each server is a new lab host (homelab.lab.Lab.add_host): real sshd, real Debian.

    debian-12 images become bookworm hosts, everything else the lab's default suite."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.names: dict[str, str] = {}  # server name -> lab host name

    def boot(self, name: str, image: str, authorized_keys: list[str], host_key: HostKey | None) -> str:
        from homelab.lab import DEFAULT_SUITE

        suite = "bookworm" if image == "debian-12" else DEFAULT_SUITE
        lab_name = self.lab.add_host(suite, host_key=(host_key.private, host_key.public) if host_key else None,
                                     authorized_keys=authorized_keys)
        self.names[name] = lab_name
        return self.lab.hosts[lab_name]

    def destroy(self, name: str) -> None:
        lab_name = self.names.pop(name, None)
        if lab_name is not None:
            self.lab.stop_host(lab_name)

    def attach_disk(self, name: str, serial: str, size: int) -> None:
        self.lab.attach_disk(self.names[name], size, serial=serial)

    def detach_disk(self, name: str, serial: str) -> None:
        from homelab.lab.disks import by_id_path

        if name in self.names:
            self.lab.detach_disk(self.names[name], by_id_path(serial))

    def resize_disk(self, name: str, serial: str, size: int) -> None:
        from homelab.lab.disks import by_id_path

        if name in self.names:
            self.lab.resize_disk(self.names[name], by_id_path(serial), size)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or {}


def host_key_from_user_data(user_data: str | None) -> HostKey | None:
    """The ed25519 host key a #cloud-config `ssh_keys:` block asks for, if any."""
    if not user_data or not user_data.startswith("#cloud-config"):
        return None
    try:
        doc = yaml.safe_load(user_data)
    except yaml.YAMLError:
        return None
    keys = (doc or {}).get("ssh_keys") or {}
    if "ed25519_private" in keys and "ed25519_public" in keys:
        return HostKey(str(keys["ed25519_private"]), str(keys["ed25519_public"]).strip())
    return None


def md5_fingerprint(public_key: str) -> str:
    blob = base64.b64decode(public_key.split()[1])
    d = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


def match_selector(labels: dict[str, str], selector: str) -> bool:
    """Hetzner label selectors: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b); comma = and."""
    for term in re.split(r",(?![^()]*\))", selector):
        term = term.strip()
        if not term:
            continue
        m = re.match(r"^(\S+)\s+(in|notin)\s+\((.*)\)$", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            inside = labels.get(m.group(1)) in values
            if inside != (m.group(2) == "in"):
                return False
        elif "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = re.split(r"==?", term, maxsplit=1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class Action:
    id: int
    command: str
    resources: list[dict[str, Any]]
    started: float
    duration: float
    ready: threading.Event = field(default_factory=threading.Event)  # e.g. the host has booted
    error: dict[str, str] | None = None

    def status(self) -> str:
        if self.error is not None:
            return "error"
        if self.ready.is_set() and time.monotonic() - self.started >= self.duration:
            return "success"
        return "running"

    def to_json(self) -> dict[str, Any]:
        status = self.status()
        return {"id": self.id, "command": self.command, "status": status,
                "progress": 100 if status == "success" else 50,
                "started": datetime.fromtimestamp(time.time() - (time.monotonic() - self.started),
                                                  timezone.utc).isoformat(timespec="seconds"),
                "finished": _now() if status != "running" else None, "resources": self.resources,
                "error": self.error}


class FakeHcloud:
    """The stand-in API: state, switches, and a threaded HTTP server on 127.0.0.1."""

    def __init__(self, token: str, *, backend: HostBackend | None = None, readonly_tokens: Iterable[str] = (),
                 port: int = 0) -> None:
        self.token = token
        self.readonly_tokens = set(readonly_tokens)
        self.backend: HostBackend = backend or NoHosts()
        self.port = port
        self.lock = threading.RLock()
        self.ids = itertools.count(1000)
        self.servers: dict[int, dict[str, Any]] = {}
        self.ssh_keys: dict[int, dict[str, Any]] = {}
        self.actions: dict[int, Action] = {}
        from homelab.lab.fake_hcloud_zones import ZoneStore

        self.dns = ZoneStore(self)  # zones and RRSets
        from homelab.lab.fake_hcloud_volumes import VolumeStore

        self.volumes = VolumeStore(self)
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) for assertions
        self._throttle = 0
        self._slow = 0.0
        self._remaining = RATE_LIMIT
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._boots: list[threading.Thread] = []

    # -------------------------------------------------------------- switches --
    def rate_limit(self, n: int) -> None:
        """Answer the next `n` requests with 429 rate_limit_exceeded."""
        with self.lock:
            self._throttle = n

    def slow_actions(self, seconds: float) -> None:
        """New actions stay `running` for this long (0: finish as soon as their work is done)."""
        with self.lock:
            self._slow = seconds

    def keep_initializing(self, name: str, seconds: float) -> None:
        """Stand-in knob: server `name` reads `initializing` with no public address for `seconds`
        from now, whatever its lab host does meanwhile (see the module docstring)."""
        with self.lock:
            (server,) = [s for s in self.servers.values() if s["name"] == name]
            server["initializing_until"] = time.monotonic() + seconds

    # ------------------------------------------------------------- lifecycle --
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeHcloud:
        fake = self

        class Handler(_Handler):
            api = fake

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-hcloud", daemon=True)
        self._thread.start()
        return self

    def stop(self, destroy_hosts: bool = True) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        for t in self._boots:
            t.join(timeout=300)
        if destroy_hosts:
            for server in list(self.servers.values()):
                self._destroy_host(server["name"])

    def __enter__(self) -> FakeHcloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- helpers --
    def _action(self, command: str, resources: list[dict[str, Any]], ready: bool = True) -> Action:
        a = Action(next(self.ids), command, resources, time.monotonic(), self._slow)
        if ready:
            a.ready.set()
        self.actions[a.id] = a
        return a

    def _server_json(self, s: dict[str, Any]) -> dict[str, Any]:
        if time.monotonic() < s.get("initializing_until", 0.0):  # keep_initializing
            s = {**s, "status": "initializing", "ip": None}
        loc = next(x for x in LOCATIONS if x["name"] == s["location"])
        ipv4 = None if s["ip"] is None else {"id": s["id"] + 1, "ip": s["ip"], "blocked": False,
                                             "dns_ptr": f"static.{s['ip']}.clients.your-server.de"}
        # a /64 per server, as Hetzner gives, from the documentation prefix: nothing routes it
        # (lab hosts have no IPv6); it is there for the AAAA records ingress writes
        ipv6 = None if s["ip"] is None else {"id": s["id"] + 2, "ip": f"2001:db8:{s['id'] % 0x10000:x}::/64",
                                             "blocked": False, "dns_ptr": []}
        return {
            "id": s["id"], "name": s["name"], "status": s["status"], "created": s["created"],
            "public_net": {"ipv4": ipv4, "ipv6": ipv6, "floating_ips": [], "firewalls": []},
            "private_net": [], "server_type": self._type_json(s["type"]),
            "location": loc, "image": self._image_json(s["image"], SERVER_TYPES[s["type"]][3]),
            "iso": None, "rescue_enabled": False, "locked": False,
            "backup_window": "22-02" if s["backups"] else None,
            "outgoing_traffic": 0, "ingoing_traffic": 0, "included_traffic": 21990232555520,
            "protection": {"delete": s["protected"], "rebuild": s["protected"]}, "labels": dict(s["labels"]),
            "volumes": [v["id"] for v in self.volumes.volumes.values() if v["server"] == s["id"]],
            "load_balancers": [], "primary_disk_size": SERVER_TYPES[s["type"]][2],
            "placement_group": None,
        }

    def _type_json(self, name: str) -> dict[str, Any]:
        cores, memory, disk, arch, net = SERVER_TYPES[name]
        ident = list(SERVER_TYPES).index(name) + 1
        return {"id": ident, "name": name, "description": name.upper(), "category": "shared_vcpu",
                "cores": cores, "memory": memory, "disk": disk, "deprecated": False, "deprecation": None,
                "prices": [_price(loc["name"], net) for loc in LOCATIONS], "storage_type": "local",
                "cpu_type": "shared", "architecture": arch,
                "locations": [{"id": loc["id"], "name": loc["name"], "deprecation": None, "available": True,
                               "recommended": True} for loc in LOCATIONS]}

    @staticmethod
    def _image_json(name: str, arch: str = "x86") -> dict[str, Any]:
        version = dict(IMAGES).get(name, "")
        ident = [n for n, _ in IMAGES].index(name) + 1 if name in dict(IMAGES) else 99
        return {"id": ident if arch == "x86" else ident + 100, "type": "system", "status": "available", "name": name,
                "description": name.replace("-", " ").title(), "image_size": None, "disk_size": 5,
                "created": "2025-08-10T00:00:00+00:00", "created_from": None, "bound_to": None,
                "os_flavor": name.split("-")[0], "os_version": version, "rapid_deploy": True,
                "protection": {"delete": False}, "deprecated": None, "deleted": None, "labels": {},
                "architecture": arch}

    def _key_json(self, k: dict[str, Any]) -> dict[str, Any]:
        return dict(k)

    def _find_server(self, ident: str) -> dict[str, Any]:
        s = self.servers.get(int(ident)) if ident.isdigit() else None
        if s is None:
            raise ApiError(404, "not_found", f"server with ID '{ident}' not found")
        return s

    def _resolve_keys(self, refs: list[Any]) -> list[str]:
        out = []
        for ref in refs:
            key = next((k for k in self.ssh_keys.values() if k["id"] == ref or k["name"] == ref), None)
            if key is None:
                raise ApiError(400, "invalid_input", f"ssh key '{ref}' not found")
            out.append(key["public_key"])
        return out

    def _destroy_host(self, name: str) -> None:
        try:
            self.backend.destroy(name)
        except Exception:  # noqa: BLE001 - a stand-in must not die on cleanup
            log.exception("fake hcloud: destroying host %s failed", name)

    # ------------------------------------------------------------- endpoints --
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise ApiError(404, "not_found", "not found")
        parts = parts[1:]
        q = {k: v[0] for k, v in query.items()}
        with self.lock:
            if parts == ["locations"]:
                return 200, self._page("locations", LOCATIONS, q)
            if parts[:1] == ["locations"] and len(parts) == 2:
                return 200, {"location": next(x for x in LOCATIONS if str(x["id"]) == parts[1])}
            if parts == ["server_types"]:
                items = [self._type_json(n) for n in SERVER_TYPES if q.get("name", n) == n]
                return 200, self._page("server_types", items, q)
            if parts == ["images"]:
                items = [self._image_json(n, a) for n, _ in IMAGES for a in ("x86", "arm")
                         if q.get("name", n) == n and query.get("architecture", [a]).count(a)]
                return 200, self._page("images", items, q)
            if parts == ["pricing"]:
                return 200, self._pricing()
            if parts == ["actions"]:
                ids = [int(i) for i in query.get("id", [])]
                return 200, {"actions": [self.actions[i].to_json() for i in ids if i in self.actions]}
            if len(parts) == 2 and parts[0] == "actions" or len(parts) == 4 and parts[2] == "actions" \
                    and parts[3].isdigit():
                a = self.actions.get(int(parts[-1]))
                if a is None:
                    raise ApiError(404, "not_found", f"action with ID '{parts[-1]}' not found")
                return 200, {"action": a.to_json()}
            if parts[:1] == ["ssh_keys"]:
                return self._ssh_keys(method, parts[1:], q, body)
            if parts[:1] == ["servers"]:
                return self._servers(method, parts[1:], q, body)
            if parts[:1] == ["zones"]:
                return self.dns.handle(method, parts[1:], query, body)
            if parts[:1] == ["volumes"]:
                return self.volumes.handle(method, parts[1:], q, body)
        raise ApiError(404, "not_found", f"{method} /{'/'.join(parts)} is not part of this stand-in")

    def _page(self, key: str, items: list[Any], q: dict[str, str]) -> dict[str, Any]:
        per_page = min(50, int(q.get("per_page", 25)))
        page = max(1, int(q.get("page", 1)))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]
        return {key: chunk, "meta": {"pagination": {
            "page": page, "per_page": per_page, "previous_page": page - 1 if page > 1 else None,
            "next_page": page + 1 if page < last else None, "last_page": last, "total_entries": len(items)}}}

    def _pricing(self) -> dict[str, Any]:
        return {"pricing": {
            "currency": "EUR", "vat_rate": f"{VAT * 100:.2f}",
            "image": {"price_per_gb_month": _money(0.011)},
            "floating_ip": {"price_monthly": _money(3.0)}, "floating_ips": [],
            "primary_ips": [{"type": "ipv4", "prices": [
                {"location": loc["name"], "price_hourly": _money(IPV4_NET / 730), "price_monthly": _money(IPV4_NET)}
                for loc in LOCATIONS]}],
            "traffic": {"price_per_tb": _money(1.0)}, "server_backup": {"percentage": BACKUP_PERCENT},
            "volume": {"price_per_gb_month": _money(0.044)}, "load_balancer_types": [],
            "server_types": [{"id": i + 1, "name": n, "prices": [_price(loc["name"], v[4]) for loc in LOCATIONS]}
                             for i, (n, v) in enumerate(SERVER_TYPES.items())],
        }}

    def _ssh_keys(self, method: str, rest: list[str], q: dict[str, str], body: Any) -> tuple[int, Any]:
        if not rest and method == "GET":
            items = [self._key_json(k) for k in self.ssh_keys.values()
                     if q.get("name", k["name"]) == k["name"] and q.get("fingerprint", k["fingerprint"]) == k["fingerprint"]
                     and match_selector(k["labels"], q.get("label_selector", ""))]
            return 200, self._page("ssh_keys", items, q)
        if not rest and method == "POST":
            name, public = (body or {}).get("name") or "", (body or {}).get("public_key") or ""
            if not name or not public or len(public.split()) < 2:
                raise ApiError(400, "invalid_input", "invalid input in fields 'name', 'public_key'",
                               {"fields": [{"name": "name", "messages": ["is required"]}]})
            try:
                fp = md5_fingerprint(public)
            except (ValueError, IndexError):
                raise ApiError(400, "invalid_input", "invalid input in field 'public_key'") from None
            if any(k["fingerprint"] == fp or k["name"] == name for k in self.ssh_keys.values()):
                raise ApiError(409, "uniqueness_error", "SSH key with the same fingerprint already exists",
                               {"fields": [{"name": "public_key"}]})
            key: dict[str, Any] = {"id": next(self.ids), "name": name, "fingerprint": fp, "public_key": public.strip(),
                   "labels": dict(body.get("labels") or {}), "created": _now()}
            self.ssh_keys[key["id"]] = key
            return 201, {"ssh_key": self._key_json(key)}
        if len(rest) == 1 and rest[0].isdigit() and int(rest[0]) in self.ssh_keys:
            key = self.ssh_keys[int(rest[0])]
            if method == "GET":
                return 200, {"ssh_key": self._key_json(key)}
            if method == "PUT":
                key.update({k: v for k, v in (body or {}).items() if k in ("name", "labels")})
                return 200, {"ssh_key": self._key_json(key)}
            if method == "DELETE":
                del self.ssh_keys[key["id"]]
                return 204, None
        raise ApiError(404, "not_found", "ssh key not found")

    def _servers(self, method: str, rest: list[str], q: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body or {}
        if not rest and method == "GET":
            items = [self._server_json(s) for s in sorted(self.servers.values(), key=lambda s: s["id"])
                     if q.get("name", s["name"]) == s["name"] and match_selector(s["labels"], q.get("label_selector", ""))]
            return 200, self._page("servers", items, q)
        if not rest and method == "POST":
            return self._create_server(body)
        s = self._find_server(rest[0])
        res = [{"id": s["id"], "type": "server"}]
        if len(rest) == 1:
            if method == "GET":
                return 200, {"server": self._server_json(s)}
            if method == "PUT":
                if "labels" in body:
                    s["labels"] = dict(body["labels"])
                if "name" in body:
                    s["name"] = body["name"]
                return 200, {"server": self._server_json(s)}
            if method == "DELETE":
                if s["protected"]:
                    raise ApiError(423, "protected", "server is delete protected")
                del self.servers[s["id"]]
                action = self._action("delete_server", res, ready=False)
                self._in_background(s["name"], lambda: self._destroy_host(s["name"]), action)
                return 200, {"action": action.to_json()}
        if len(rest) == 3 and rest[1] == "actions" and method == "POST":
            return 201, {"action": self._server_action(s, rest[2], body, res).to_json()}
        raise ApiError(404, "not_found", "not found")

    def _server_action(self, s: dict[str, Any], name: str, body: dict[str, Any], res: list[dict[str, Any]]) -> Action:
        if name in ("poweroff", "shutdown"):
            s["status"] = "off"
            return self._action("stop_server" if name == "poweroff" else "shutdown_server", res)
        if name == "poweron":
            s["status"] = "running"
            return self._action("start_server", res)
        if name == "change_type":
            new = body.get("server_type")
            if new not in SERVER_TYPES:
                raise ApiError(400, "invalid_input", f"server type '{new}' not found")
            if s["status"] != "off":
                raise ApiError(400, "invalid_input", "server must be powered off to change its type")
            if SERVER_TYPES[new][3] != SERVER_TYPES[s["type"]][3]:
                raise ApiError(400, "invalid_input", "cannot change to a server type of another architecture")
            s["type"] = new
            return self._action("change_server_type", res)
        if name == "change_protection":
            if "delete" in body:
                s["protected"] = bool(body["delete"])
            return self._action("change_protection", res)
        if name in ("enable_backup", "disable_backup"):
            s["backups"] = name == "enable_backup"
            return self._action(name, res)
        raise ApiError(404, "not_found", f"server action '{name}' is not part of this stand-in")

    def _create_server(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, stype, image = body.get("name"), body.get("server_type"), body.get("image")
        location = body.get("location") or "fsn1"
        problems = []
        if not isinstance(name, str) or not re.match(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$", name):
            problems.append("name")
        if stype not in SERVER_TYPES:
            problems.append("server_type")
        if image not in dict(IMAGES):
            problems.append("image")
        if location not in [x["name"] for x in LOCATIONS]:
            problems.append("location")
        if problems or not isinstance(name, str) or not isinstance(image, str):  # isinstance: for the type checker
            raise ApiError(400, "invalid_input", f"invalid input in fields {', '.join(problems)}",
                           {"fields": [{"name": p, "messages": ["is invalid"]} for p in problems]})
        if any(s["name"] == name for s in self.servers.values()):
            raise ApiError(409, "uniqueness_error", "server name is already used", {"fields": [{"name": "name"}]})
        keys = self._resolve_keys(body.get("ssh_keys") or [])
        host_key = host_key_from_user_data(body.get("user_data"))
        sid = next(self.ids)
        s = {"id": sid, "name": name, "type": stype, "location": location, "image": image, "status": "initializing",
             "created": _now(), "ip": None, "labels": dict(body.get("labels") or {}), "protected": False,
             "backups": False}
        self.servers[sid] = s
        res = [{"id": sid, "type": "server"}]
        action = self._action("create_server", res, ready=False)

        def boot() -> None:
            ip = self.backend.boot(name, image, keys, host_key)
            with self.lock:
                s["ip"], s["status"] = ip, "running"

        self._in_background(name, boot, action)
        start = self._action("start_server", res)
        return 201, {"server": self._server_json(s), "action": action.to_json(), "next_actions": [start.to_json()],
                     "root_password": None}

    def _in_background(self, name: str, work: Callable[[], None], action: Action) -> None:
        """Boot/destroy hosts off the request thread; the action runs until the work is done."""
        def run() -> None:
            try:
                work()
            except Exception as exc:  # noqa: BLE001 - becomes the action's error, like Hetzner's
                log.exception("fake hcloud: %s for %s failed", action.command, name)
                action.error = {"code": "action_failed", "message": f"{type(exc).__name__}: {exc}"[:200]}
            finally:
                action.ready.set()

        t = threading.Thread(target=run, name=f"fake-hcloud-{action.command}-{name}", daemon=True)
        self._boots.append(t)
        t.start()

    # ----------------------------------------------------------------- HTTP ---
    def dispatch(self, method: str, raw_path: str, auth: str, body_bytes: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(raw_path)
        headers = {"Content-Type": "application/json"}
        with self.lock:
            self._remaining = max(0, self._remaining - 1)
            throttled = self._throttle > 0
            if throttled:
                self._throttle -= 1
            headers.update({"RateLimit-Limit": str(RATE_LIMIT),
                            "RateLimit-Remaining": "0" if throttled else str(self._remaining),
                            "RateLimit-Reset": str(int(time.time()) + (RATE_LIMIT - self._remaining))})
        try:
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
            if token != self.token and token not in self.readonly_tokens:
                raise ApiError(401, "unauthorized", "unable to authenticate")
            if throttled:
                raise ApiError(429, "rate_limit_exceeded", "limit of 3600 requests per hour reached")
            if method != "GET" and token in self.readonly_tokens:
                raise ApiError(403, "token_readonly", "The token is only allowed to perform GET requests")
            try:
                body = json.loads(body_bytes) if body_bytes else None
            except ValueError:
                raise ApiError(400, "json_error", "invalid JSON input") from None
            status, doc = self.handle(method, url.path, parse_qs(url.query), body)
        except ApiError as exc:
            status, doc = exc.status, {"error": {"code": exc.code, "message": exc.message, "details": exc.details}}
        with self.lock:
            self.requests.append((method, url.path, status))
        return status, headers, (b"" if doc is None else json.dumps(doc).encode())


class _Handler(BaseHTTPRequestHandler):
    api: FakeHcloud
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers, out = self.api.dispatch(self.command, self.path, self.headers.get("Authorization", ""), body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("fake hcloud: " + format, *args)  # never the body: user data holds a private key


def main(argv: list[str] | None = None) -> int:
    """`python -m homelab.lab.fake_hcloud --token T [--lab]`: serve the stand-in until Ctrl-C.

    With --lab every created server is a new host of the running lab (HOMELAB_LAB_INSTANCE),
    so a config with cloud servers can be applied for real on throwaway machines."""
    p = argparse.ArgumentParser(description="A local stand-in for the Hetzner Cloud API (not Hetzner).")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--token", required=True)
    p.add_argument("--lab", action="store_true", help="boot a lab host for each created server")
    args = p.parse_args(argv)
    backend: HostBackend | None = None
    if args.lab:
        from homelab.lab import Lab

        backend = LabHosts(Lab())
    fake = FakeHcloud(args.token, backend=backend, port=args.port).start()
    print(f"stand-in Hetzner API at {fake.url} (export HOMELAB_HCLOUD_ENDPOINT={fake.url})", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
