"""HTTP claims -> Caddy sites: grouping per app, hostnames, Anubis and stable Anubis ports."""
from __future__ import annotations

import pytest

from homelab.claims import HttpService, Route
from homelab.config.ingress import AppIngress, IngressConfig, TlsConfig
from homelab.errors import HomelabError
from homelab.layers.ingress.render import AnubisPorts, Site, Upstream
from homelab.layers.ingress.sites import allocate_anubis_ports, plan_sites, route_claims, slot_ports

CFG = IngressConfig(machines=("web-1",), domain="example.org", tls=TlsConfig("acme", "ops@example.org"),
                    apps=(AppIngress("notes", anubis=True, difficulty=5), AppIngress("nas", tls="internal"),
                          AppIngress("wiki", hostname="w.example.org")))


def http(app: str, hosts: tuple[str, ...], port: int, **kw: object) -> HttpService:
    return HttpService("apps", f"apps.{app}", app, hosts, port, **kw)  # type: ignore[arg-type]


def test_claims_become_one_site_per_app() -> None:
    services = [http("photos", ("web-2", "pi-1"), 2283, health_path="/api/ping"), http("notes", ("web-1",), 8080),
                http("nas", ("pi-1",), 5000), http("wiki", ("web-2",), 3000),
                http("blog", ("web-2",), 2368, anubis=True)]
    sites = plan_sites(services, CFG)
    assert sites == [
        Site("blog.example.org", "blog", (Upstream("web-2", 2368),), anubis=slot_ports(0)),
        Site("nas.example.org", "nas", (Upstream("pi-1", 5000),), internal_tls=True),
        Site("notes.example.org", "notes", (Upstream("web-1", 8080),), anubis=slot_ports(1), difficulty=5),
        Site("photos.example.org", "photos", (Upstream("pi-1", 2283), Upstream("web-2", 2283)),
             health_uri="/api/ping"),
        Site("w.example.org", "wiki", (Upstream("web-2", 3000),)),
    ]
    assert route_claims(sites[3:4]) == [Route("ingress", "ingress.apps.photos", "photos.example.org",
                                              ("pi-1", "web-2"), 2283, "/api/ping", False)]


def test_anubis_ports_stay_where_they_were() -> None:
    before = {"notes": slot_ports(3)}
    got = allocate_anubis_ports(["zeta", "notes", "alpha"], before)
    assert got == {"notes": slot_ports(3), "alpha": slot_ports(0), "zeta": slot_ports(1)}
    assert slot_ports(0) == AnubisPorts(8900, 9100, 9300)
    # a removed app frees its slot for the next new one
    assert allocate_anubis_ports(["zeta", "beta"], got) == {"zeta": slot_ports(1), "beta": slot_ports(0)}


def test_conflicts_are_refused_naming_both_sides() -> None:
    cfg = IngressConfig(machines=("h",), domain="example.org", apps=(AppIngress("blog", hostname="wiki.example.org"),))
    with pytest.raises(HomelabError, match="wiki.example.org would serve both blog and wiki"):
        plan_sites([http("blog", ("h",), 1), http("wiki", ("h",), 2)], cfg)
    with pytest.raises(HomelabError, match="several health paths"):
        plan_sites([http("blog", ("h",), 1, health_path="/a"), http("blog", ("g",), 1, health_path="/b")], cfg)
    with pytest.raises(HomelabError, match="has no hostname"):
        plan_sites([http("blog", ("h",), 1)], IngressConfig(machines=("h",)))
