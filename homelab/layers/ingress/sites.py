"""From route claims to Caddy sites (pure): one site per hostname, its upstreams, TLS and Anubis.

A route claim (the layer contract's `Route(owner, path, hostname, host, upstream_port,
anubis)`) says "app OWNER serves on HOST:PORT". Routes of one app on several machines become
one load-balanced site. The ingress config adds what the person chose per app: hostname
(default APP.<domain>), Anubis and its difficulty, and internal or ACME TLS.

Anubis ports are allocated once and kept (the caller passes what state remembers): a new app
must not shift the ports of running Anubis instances and restart them.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol

from homelab.config.ingress import IngressConfig
from homelab.errors import HomelabError
from homelab.layers.ingress.render import AnubisPorts, Site, Upstream

# Anubis listens on loopback of the ingress machine: slot i uses these bases + i
ANUBIS_BIND_BASE, ANUBIS_METRICS_BASE, ANUBIS_INNER_BASE = 8900, 9100, 9300
ANUBIS_SLOTS = 100


class RouteClaim(Protocol):
    owner: str  # the app that serves it
    hostname: str | None  # None: the ingress config decides
    host: str  # machine the app runs on
    upstream_port: int
    anubis: bool


@dataclass(frozen=True)
class Route:
    """A route claim as this module reads it (the contract's Route has these fields too)."""

    owner: str
    host: str
    upstream_port: int
    hostname: str | None = None
    anubis: bool = False
    path: str = ""


def slot_ports(i: int) -> AnubisPorts:
    return AnubisPorts(ANUBIS_BIND_BASE + i, ANUBIS_METRICS_BASE + i, ANUBIS_INNER_BASE + i)


def allocate_anubis_ports(apps: Iterable[str], previous: Mapping[str, AnubisPorts]) -> dict[str, AnubisPorts]:
    """Ports per protected app: kept from `previous`, new apps in the lowest free slot."""
    wanted = sorted(set(apps))
    out = {a: previous[a] for a in wanted if a in previous}
    used = {p.bind - ANUBIS_BIND_BASE for p in out.values()}
    free = (i for i in range(ANUBIS_SLOTS) if i not in used)
    for app in wanted:
        if app not in out:
            slot = next(free, None)
            if slot is None:
                raise HomelabError(f"Anubis for {app}: all {ANUBIS_SLOTS} slots are taken")
            out[app] = slot_ports(slot)
    return out


def plan_sites(routes: Iterable[RouteClaim], cfg: IngressConfig,
               previous_ports: Mapping[str, AnubisPorts] | None = None) -> list[Site]:
    """Sites sorted by hostname. Refuses a hostname claimed by two apps, or an app without one."""
    by_app: dict[str, list[RouteClaim]] = defaultdict(list)
    for r in routes:
        by_app[r.owner].append(r)
    hostnames: dict[str, str] = {}
    protected: list[str] = []
    resolved: dict[str, tuple[str, tuple[Upstream, ...], bool]] = {}
    for app, claims in sorted(by_app.items()):
        names = {c.hostname for c in claims if c.hostname}
        if len(names) > 1:
            raise HomelabError(f"ingress: app {app} claims several hostnames ({', '.join(sorted(names))})",
                               "one hostname per app; set ingress.apps[].hostname")
        host = cfg.app(app).hostname or (names.pop() if names else None) or cfg.hostname_of(app)
        if host is None:
            raise HomelabError(f"ingress: app {app} has no hostname", "set ingress.domain or ingress.apps[].hostname")
        if host in hostnames:
            raise HomelabError(f"ingress: {host} is claimed by {hostnames[host]} and {app}",
                               "give one of them another hostname in ingress.apps")
        hostnames[host] = app
        anubis = cfg.app(app).anubis or any(c.anubis for c in claims)
        if anubis:
            protected.append(app)
        ups = tuple(sorted({Upstream(c.host, c.upstream_port) for c in claims}, key=lambda u: (u.host, u.port)))
        resolved[app] = (host, ups, anubis)
    ports = allocate_anubis_ports(protected, previous_ports or {})
    sites = [Site(host, app, ups, internal_tls=cfg.tls_mode_of(app) == "internal",
                  anubis=ports.get(app) if anubis else None, difficulty=cfg.app(app).difficulty)
             for app, (host, ups, anubis) in resolved.items()]
    return sorted(sites, key=lambda s: s.hostname)
