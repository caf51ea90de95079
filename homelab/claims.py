"""Claims: what one layer needs of the others, declared from the config alone (pure).

A layer never reads another layer's config or state. Instead, at config time, each layer
says what it needs — a port opened in the firewall, an HTTP route at ingress, a path backed
up, a package installed — and the layer that owns the resource builds from the claims:
the firewall from `OpenPort`s, ingress from `Route`s, storage from `BackupPath`s, one apt
transaction per host from `NeedsPackage`s. Every claim names its owner (a layer id) and the
config path it comes from, so a conflict is a config error pointing at both sides.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, TypeVar


@dataclass(frozen=True)
class Claim:
    owner: str  # layer id
    path: str  # dotted config path the claim comes from, e.g. "mesh.port"


@dataclass(frozen=True)
class OpenPort(Claim):
    """Let `proto` `port` in on `host` (from `source`, an IP network, or anywhere)."""

    host: str
    proto: str  # tcp | udp
    port: int
    port_end: int | None = None  # a range port..port_end
    source: str | None = None
    why: str = ""
    forwarded: bool = False  # also for container ports Docker publishes (DNAT-ed, forwarded)

    @property
    def ports(self) -> str:
        return f"{self.port}-{self.port_end}" if self.port_end else str(self.port)

    def overlaps(self, other: OpenPort) -> bool:
        if (self.host, self.proto) != (other.host, other.proto):
            return False
        return self.port <= (other.port_end or other.port) and other.port <= (self.port_end or self.port)


@dataclass(frozen=True)
class TrustInterface(Claim):
    """Accept everything arriving on `interface` of `host` (the mesh's own network)."""

    host: str
    interface: str
    why: str = ""


@dataclass(frozen=True)
class HttpService(Claim):
    """An app serves HTTP on `port` of each of `hosts` (loopback or mesh address); ingress
    gives it a hostname (its own config decides which) and turns it into a `Route`."""

    app: str
    hosts: tuple[str, ...]
    port: int
    health_path: str = "/"
    anubis: bool = False  # the app's config asks for Anubis in front of it


@dataclass(frozen=True)
class Route(Claim):
    """Serve `hostname` at ingress, proxied to `upstream_port` of the app on `hosts`."""

    hostname: str
    hosts: tuple[str, ...]
    upstream_port: int
    health_path: str = "/"
    anubis: bool = False


@dataclass(frozen=True)
class BackupPath(Claim):
    """Back up `paths` (absolute, on the host) of `app` on `host`; `dump` (a recipe's DumpSpec)
    streams a database first; `stop` names what to quiesce for a consistent copy; `home` is a
    compose app's project directory (the drill starts its scratch database from that project)."""

    host: str
    app: str
    paths: tuple[str, ...]
    dump: Any = None
    stop: tuple[str, ...] = ()
    home: str = ""


@dataclass(frozen=True)
class NeedsPackage(Claim):
    """Debian package `package` on `host`. Compute installs every claim of a host in one apt
    transaction before the layers above run; they only assume their packages.

    `only_if`: a read-only shell test run on the host; the package is wanted only where it
    succeeds (wireguard-go only where the kernel has no WireGuard module)."""

    host: str
    package: str
    only_if: str = ""


@dataclass(frozen=True)
class NeedsVolume(Claim):
    """A Hetzner Cloud volume attached to server `host`, for the disk `disk` (compute makes it,
    billing prices it, storage formats and mounts it)."""

    host: str
    disk: str
    size_gb: int
    protection: bool = True


@dataclass(frozen=True)
class Conflict:
    message: str
    path: str  # where to point the error
    other_path: str
    hint: str = ""


C = TypeVar("C", bound=Claim)


@dataclass(frozen=True)
class Claims:
    """Every claim of a config, with lookups by kind and host."""

    items: tuple[Claim, ...] = ()
    _index: dict[type, tuple[Claim, ...]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        index: dict[type, list[Claim]] = {}
        for claim in self.items:
            index.setdefault(type(claim), []).append(claim)
        self._index.update({k: tuple(v) for k, v in index.items()})

    def of(self, kind: type[C], host: str | None = None) -> list[C]:
        found = [c for c in self._index.get(kind, ()) if isinstance(c, kind)]
        if host is not None:
            found = [c for c in found if getattr(c, "host", None) == host]
        return found

    def __iter__(self) -> Iterator[Claim]:
        return iter(self.items)


def find_conflicts(claims: Iterable[Claim]) -> list[Conflict]:
    """Two owners claiming one port on one host, or one hostname routed twice (pure)."""
    out: list[Conflict] = []
    ports = [c for c in claims if isinstance(c, OpenPort)]
    for i, a in enumerate(ports):
        for b in ports[i + 1:]:
            # the same port opened twice for the same owner and reason is harmless (a rule
            # listed twice); two different owners on one port is a real clash
            if a.overlaps(b) and a.owner != b.owner:
                out.append(Conflict(
                    f"{a.host}: {a.proto} port {a.ports} is claimed by {a.owner} ({a.why or a.path}) "
                    f"and by {b.owner} ({b.why or b.path})", b.path, a.path,
                    f"give one of them another port (the other is at {a.path})"))
    routes: dict[str, Route] = {}
    for c in claims:
        if isinstance(c, Route):
            first = routes.setdefault(c.hostname, c)
            if first is not c:
                out.append(Conflict(f"hostname {c.hostname} is routed twice ({first.path} and {c.path})",
                                    c.path, first.path, "every app needs its own hostname"))
    return out
