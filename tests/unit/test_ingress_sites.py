"""Route claims -> Caddy sites: grouping per app, hostnames, Anubis and stable Anubis ports."""
from __future__ import annotations

import pytest

from homelab.config.ingress import AppIngress, IngressConfig, TlsConfig
from homelab.errors import HomelabError
from homelab.layers.ingress.render import AnubisPorts, Site, Upstream
from homelab.layers.ingress.sites import Route, allocate_anubis_ports, plan_sites, slot_ports

CFG = IngressConfig(machines=("web-1",), domain="example.org", tls=TlsConfig("acme", "ops@example.org"),
                    apps=(AppIngress("notes", anubis=True, difficulty=5), AppIngress("nas", tls="internal"),
                          AppIngress("wiki", hostname="w.example.org")))


def test_routes_become_one_site_per_app() -> None:
    routes = [Route("photos", "web-2", 2283), Route("photos", "pi-1", 2283), Route("photos", "web-2", 2283),
              Route("notes", "web-1", 8080), Route("nas", "pi-1", 5000), Route("wiki", "web-2", 3000),
              Route("blog", "web-2", 2368, hostname="blog.example.net", anubis=True)]
    assert plan_sites(routes, CFG) == [
        Site("blog.example.net", "blog", (Upstream("web-2", 2368),), anubis=slot_ports(0)),
        Site("nas.example.org", "nas", (Upstream("pi-1", 5000),), internal_tls=True),
        Site("notes.example.org", "notes", (Upstream("web-1", 8080),), anubis=slot_ports(1), difficulty=5),
        Site("photos.example.org", "photos", (Upstream("pi-1", 2283), Upstream("web-2", 2283))),
        Site("w.example.org", "wiki", (Upstream("web-2", 3000),)),
    ]


def test_anubis_ports_stay_where_they_were() -> None:
    before = {"notes": slot_ports(3)}
    got = allocate_anubis_ports(["zeta", "notes", "alpha"], before)
    assert got == {"notes": slot_ports(3), "alpha": slot_ports(0), "zeta": slot_ports(1)}
    assert slot_ports(0) == AnubisPorts(8900, 9100, 9300)
    # a removed app frees its slot for the next new one
    assert allocate_anubis_ports(["zeta", "beta"], got) == {"zeta": slot_ports(1), "beta": slot_ports(0)}


def test_conflicts_are_refused_naming_both_sides() -> None:
    with pytest.raises(HomelabError, match="w.example.org is claimed by blog and wiki"):
        plan_sites([Route("blog", "h", 1, hostname="w.example.org"), Route("wiki", "h", 2)], CFG)
    with pytest.raises(HomelabError, match="several hostnames"):
        plan_sites([Route("blog", "h", 1, hostname="a.example.org"), Route("blog", "g", 1, hostname="b.example.org")], CFG)
    with pytest.raises(HomelabError, match="has no hostname"):
        plan_sites([Route("blog", "h", 1)], IngressConfig(machines=("h",)))
