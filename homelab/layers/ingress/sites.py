"""From the apps' HTTP claims to Caddy sites (pure): one site per hostname, upstreams, TLS, Anubis.

An `HttpService` claim (homelab.claims) says "app APP serves HTTP on PORT of HOSTS". An app
on several machines becomes one load-balanced site. The ingress config adds what the person
chose per app: hostname (default APP.<domain>), Anubis and its difficulty, internal or ACME
TLS. `route_claims` gives the resulting `Route`s (for conflict checks and other layers).

Anubis ports are allocated once and kept (the caller passes what state remembers): a new app
must not shift the ports of running Anubis instances and restart them.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from homelab.claims import HttpService, Route
from homelab.config.ingress import IngressConfig
from homelab.errors import HomelabError
from homelab.layers.ingress.render import AnubisPorts, Site, Upstream

# Anubis listens on loopback of the ingress machine: slot i uses these bases + i
ANUBIS_BIND_BASE, ANUBIS_METRICS_BASE, ANUBIS_INNER_BASE = 8900, 9100, 9300
ANUBIS_SLOTS = 100
LAYER = "ingress"


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


def plan_sites(services: Iterable[HttpService], cfg: IngressConfig,
               previous_ports: Mapping[str, AnubisPorts] | None = None) -> list[Site]:
    """Sites sorted by hostname. Refuses a hostname two apps would share, or an app without one."""
    by_app: dict[str, list[HttpService]] = defaultdict(list)
    for svc in services:
        by_app[svc.app].append(svc)
    hostnames: dict[str, str] = {}
    resolved: dict[str, tuple[str, tuple[Upstream, ...], bool, str]] = {}
    for app, claims in sorted(by_app.items()):
        host = cfg.hostname_of(app)
        if host is None:
            raise HomelabError(f"ingress: app {app} has no hostname", "set ingress.domain or ingress.apps[].hostname")
        if host in hostnames:
            raise HomelabError(f"ingress: {host} would serve both {hostnames[host]} and {app}",
                               "give one of them another hostname in ingress.apps")
        hostnames[host] = app
        health = {c.health_path for c in claims}
        if len(health) > 1:
            raise HomelabError(f"ingress: app {app} names several health paths ({', '.join(sorted(health))})")
        ups = tuple(sorted({Upstream(h, c.port) for c in claims for h in c.hosts}, key=lambda u: (u.host, u.port)))
        anubis = cfg.app(app).anubis or any(c.anubis for c in claims)
        resolved[app] = (host, ups, anubis, health.pop())
    ports = allocate_anubis_ports([a for a, r in resolved.items() if r[2]], previous_ports or {})
    sites = [Site(host, app, ups, internal_tls=cfg.tls_mode_of(app) == "internal",
                  anubis=ports.get(app) if anubis else None, difficulty=cfg.app(app).difficulty, health_uri=health)
             for app, (host, ups, anubis, health) in resolved.items()]
    return sorted(sites, key=lambda s: s.hostname)


def route_claims(sites: Iterable[Site]) -> list[Route]:
    """The routes ingress serves, one per site and upstream port."""
    out = []
    for site in sites:
        for port in sorted({u.port for u in site.upstreams}):
            hosts = tuple(sorted({u.host for u in site.upstreams if u.port == port}))
            out.append(Route(LAYER, f"ingress.apps.{site.app}", site.hostname, hosts, port, site.health_uri,
                             site.anubis is not None))
    return out
