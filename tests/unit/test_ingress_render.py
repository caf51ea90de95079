"""The Caddyfile per case (golden files, each validated by Debian's caddy 2.6.2 in the lab
test) and Anubis's environment.

Regenerate the golden files after an intended change with HOMELAB_UPDATE_GOLDEN=1 and
review the diff like code.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.errors import HomelabError
from homelab.layers.ingress.render import (AnubisPorts, CaddySettings, Site, Upstream, render_anubis_env,
                                           render_caddyfile, render_env_file)

from golden import assert_golden as golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ingress"
MESH = {"web-1": "10.100.0.1", "web-2": "10.100.0.2", "pi-1": "10.100.0.3"}
ACME = CaddySettings("web-1", MESH, email="ops@example.org")
ANUBIS = AnubisPorts(bind=8923, metrics=9923, inner=18923)

CASES: dict[str, tuple[list[Site], CaddySettings]] = {
    # one app on the ingress machine itself: loopback, no balancing
    "local-app": ([Site("notes.example.org", "notes", (Upstream("web-1", 8080),))], ACME),
    # Let's Encrypt by default; an app elsewhere by its mesh address; one app on two machines
    # balanced with health checks; an internal name with Caddy's own CA; no access logs
    "mesh-and-balanced": ([
        Site("wiki.example.org", "wiki", (Upstream("web-2", 3000),)),
        Site("photos.example.org", "photos", (Upstream("web-2", 2283), Upstream("pi-1", 2283)), health_uri="/api/ping"),
        Site("nas.home.example.org", "nas", (Upstream("pi-1", 5000),), internal_tls=True),
    ], CaddySettings("web-1", MESH, email="ops@example.org", access_logs=False)),
    # Anubis in front: one upstream (Anubis targets the app) and two (Anubis targets a loopback balancer)
    "anubis": ([
        Site("notes.example.org", "notes", (Upstream("web-1", 8080),), anubis=ANUBIS, difficulty=5),
        Site("git.example.org", "git", (Upstream("web-1", 3000), Upstream("web-2", 3000)),
             anubis=AnubisPorts(8924, 9924, 18924)),
    ], ACME),
    # the lab: ACME against Pebble, whose TLS root Caddy must trust
    "pebble": ([Site("app.lab.test", "app", (Upstream("h2", 8080),))],
               CaddySettings("h2", {"h2": "10.100.0.2"}, email="ops@lab.test",
                             acme_ca="https://pebble.lab.test:14000/dir", acme_ca_root="/etc/caddy/acme-ca.pem")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_caddyfile_matches_golden(case: str) -> None:
    sites, settings = CASES[case]
    golden(GOLDEN / f"{case}.Caddyfile", render_caddyfile(sites, settings))


def test_order_of_routes_does_not_change_the_file() -> None:
    sites, settings = CASES["mesh-and-balanced"]
    flipped = [Site(s.hostname, s.app, tuple(reversed(s.upstreams)), s.internal_tls, s.anubis, s.difficulty,
                    s.health_uri) for s in reversed(sites)]
    assert render_caddyfile(flipped, settings) == render_caddyfile(sites, settings)


def test_fail_closed_no_route_to_a_protected_app_but_through_anubis() -> None:
    text = render_caddyfile(*CASES["anubis"])
    notes = text[text.index("notes.example.org {"):]
    notes = notes[:notes.index("\n}\n")]
    assert "reverse_proxy 127.0.0.1:8923 {" in notes and "8080" not in notes and "handle_errors" not in text
    # the balancer Anubis targets listens on loopback only, never on a public name
    assert "http://:18924 {\n\tbind 127.0.0.1\n" in text


def test_refuses_what_cannot_be_routed() -> None:
    with pytest.raises(HomelabError, match="h9 has no mesh address"):
        render_caddyfile([Site("a.example.org", "a", (Upstream("h9", 80),))], ACME)
    with pytest.raises(HomelabError, match="has no upstream"):
        render_caddyfile([Site("a.example.org", "a", ())], ACME)
    with pytest.raises(HomelabError, match="routed twice"):
        render_caddyfile([Site("a.example.org", "a", (Upstream("web-1", 1),)),
                          Site("a.example.org", "b", (Upstream("web-1", 2),))], ACME)


def test_anubis_env_is_explicit_and_holds_no_secret() -> None:
    sites, settings = CASES["anubis"]
    notes, git = sorted(sites, key=lambda s: s.app, reverse=True)
    assert render_anubis_env(notes, settings) == {
        "BIND": "127.0.0.1:8923", "BIND_NETWORK": "tcp", "TARGET": "http://127.0.0.1:8080",
        "METRICS_BIND": "127.0.0.1:9923", "METRICS_BIND_NETWORK": "tcp", "DIFFICULTY": "5",
        "ED25519_PRIVATE_KEY_HEX_FILE": "/data/ed25519.key", "COOKIE_DOMAIN": "notes.example.org",
        "REDIRECT_DOMAINS": "notes.example.org", "POLICY_FNAME": "/data/policy.yaml", "SERVE_ROBOTS_TXT": "false"}
    # several upstreams: Anubis targets Caddy's loopback balancer
    assert render_anubis_env(git, settings)["TARGET"] == "http://127.0.0.1:18924"
    env_file = render_env_file(render_anubis_env(git, settings))
    assert env_file.splitlines()[0] == "BIND=127.0.0.1:8924" and env_file.endswith("TARGET=http://127.0.0.1:18924\n")
    with pytest.raises(HomelabError, match="not behind Anubis"):
        render_anubis_env(CASES["local-app"][0][0], ACME)
    with pytest.raises(HomelabError, match="cannot carry"):
        render_env_file({"X": "a b"})
