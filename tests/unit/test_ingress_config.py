"""`ingress:` config: defaults, TLS and DNS modes, per-app overrides, every problem located."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml

from homelab.claims import NeedsPackage, OpenPort
from homelab.config.ingress import LETS_ENCRYPT, AppIngress, IngressConfig, ingress_claims, parse_ingress
from homelab.config.reader import Problems, Section
from homelab.config.yamlpos import load_located

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "ingress.example.yaml"


def parse(text: str) -> tuple[IngressConfig, list[str]]:
    root = load_located(text, "c.yaml")
    problems = Problems("c.yaml")
    cfg = parse_ingress(Section(root.value["ingress"], "ingress", problems))
    return cfg, [p.render() for p in problems.items]


def ok(text: str) -> IngressConfig:
    cfg, problems = parse(text)
    assert problems == []
    return cfg


def test_acme_with_dns_zone_and_app_overrides() -> None:
    cfg = ok("""\
ingress:
  machines: [web-1]
  domain: Example.org
  tls: {mode: acme, email: ops@example.org}
  dns: {provider: hetzner, zone: example.org}
  apps:
    - {name: notes, anubis: true, difficulty: 5}
    - {name: wiki, hostname: wiki.lan.example.org, tls: internal}
""")
    assert cfg.machines == ("web-1",) and cfg.domain == "example.org" and cfg.access_logs
    assert (cfg.tls.mode, cfg.tls.email, cfg.tls.ca, cfg.tls.ca_root) == ("acme", "ops@example.org", LETS_ENCRYPT, None)
    assert (cfg.dns.provider, cfg.dns.zone, cfg.dns.ttl) == ("hetzner", "example.org", 300)
    assert cfg.apps == (AppIngress("notes", None, True, 5, None), AppIngress("wiki", "wiki.lan.example.org", False, 4, "internal"))
    # an app without overrides gets APP.<domain> and the ingress-wide TLS mode
    assert cfg.hostname_of("notes") == "notes.example.org" and cfg.hostname_of("other") == "other.example.org"
    assert cfg.hostname_of("wiki") == "wiki.lan.example.org"
    assert cfg.tls_mode_of("wiki") == "internal" and cfg.tls_mode_of("notes") == "acme"
    assert cfg.app("other") == AppIngress("other")


def test_internal_ca_and_a_private_acme_directory() -> None:
    cfg = ok("ingress:\n  machines: [h1]\n  domain: lab.test\n  tls: {mode: internal}\n  access_logs: false\n")
    assert cfg.tls.mode == "internal" and cfg.dns.provider == "none" and not cfg.access_logs
    cfg = ok("ingress:\n  machines: [h1]\n  tls:\n    email: a@b.test\n    ca: https://10.80.0.11:14000/dir\n"
             "    ca_root: /etc/caddy/pebble-ca.pem\n")
    assert (cfg.tls.ca, cfg.tls.ca_root) == ("https://10.80.0.11:14000/dir", "/etc/caddy/pebble-ca.pem")


def test_every_problem_is_located_with_a_hint() -> None:
    _, problems = parse("""\
ingress:
  machines: [web-1, web-1]
  domain: example.org
  tls: {mode: acmee, ca: "http://x/dir", ca_root: rel/path}
  dns: {provider: hetzner, ttl: 5}
  acces_logs: true
  apps:
    - {name: notes, anubis: true, difficulty: 3}
    - {name: wiki, hostname: notes.example.org}
    - {name: Bad}
    - {name: blog, difficulty: 3}
""")
    assert problems == [
        "c.yaml:2:13: ingress.machines: names a machine twice (hint: list every machine once)",
        "c.yaml:4:15: ingress.tls.mode: 'acmee' is not one of acme, internal (hint: did you mean 'acme'?)",
        "c.yaml:4:26: ingress.tls.ca: 'http://x/dir' is not an https:// URL "
        "(hint: the ACME directory, like https://acme-v02.api.letsencrypt.org/directory)",
        "c.yaml:4:51: ingress.tls.ca_root: 'rel/path' is not an absolute path (hint: like /etc/caddy/acme-ca.pem)",
        "c.yaml:4:8: ingress.tls.email: is required with mode acme "
        "(hint: the CA writes there before a certificate expires; or use mode: internal)",
        "c.yaml:5:33: ingress.dns.ttl: should be an integer 60-86400, got 5",
        "c.yaml:5:8: ingress.dns.zone: is required with provider hetzner "
        "(hint: the DNS zone homelab writes records into, like example.org)",
        "c.yaml:9:30: ingress.apps[1].hostname: 'notes.example.org' is already used by app 'notes' "
        "(hint: every app needs its own hostname)",
        "c.yaml:10:14: ingress.apps[2].name: 'Bad' is not allowed here (hint: the name of an app)",
        "c.yaml:11:32: ingress.apps[3].difficulty: has no effect without anubis: true "
        "(hint: add anubis: true, or remove difficulty)",
        "c.yaml:6:3: ingress.acces_logs: unknown key (hint: did you mean 'access_logs'?)",
    ]


def test_acme_needs_an_email_and_apps_need_a_name() -> None:
    _, problems = parse("ingress:\n  machines: [h1]\n  apps: [{name: notes}]\n")
    assert problems == [
        "c.yaml:2:3: ingress.tls: is required (acme needs an email) "
        "(hint: tls: {mode: acme, email: ops@example.org} or tls: {mode: internal})",
        "c.yaml:3:10: ingress.apps[0].hostname: app 'notes' has no hostname "
        "(hint: give it a hostname, or set ingress.domain)"]
    _, problems = parse("ingress:\n  tls: {mode: internal}\n  domain: a.example.org\n"
                        "  dns: {provider: hetzner, zone: example.net}\n")
    assert problems == [
        "c.yaml:2:3: ingress.machines: names no machine (hint: list the machines that run Caddy, like [web-1])",
        "c.yaml:4:34: ingress.dns.zone: domain 'a.example.org' is not inside zone 'example.net' "
        "(hint: the zone must be the domain or a parent of it)"]


def test_machines_are_cross_checked_against_compute() -> None:
    text = "ingress:\n  machines: [web-1, web2]\n  tls: {mode: internal}\n"
    cfg = ok(text)
    compute = SimpleNamespace(machines=[SimpleNamespace(name="web-1")],
                              hetzner=SimpleNamespace(servers=[SimpleNamespace(name="web-2")]))
    problems = Problems("c.yaml")
    cfg.cross_check(SimpleNamespace(compute=compute), load_located(text, "c.yaml"), problems)
    assert [p.render() for p in problems.items] == [
        "c.yaml:2:21: ingress.machines[1]: 'web2' is not a compute machine or server (hint: did you mean 'web-1'?)"]


def test_the_example_snippet_parses_clean_and_names_every_key() -> None:
    text = EXAMPLE.read_text()
    cfg = ok(text)
    assert cfg.dns.provider == "hetzner" and any(a.anubis for a in cfg.apps)
    doc = yaml.safe_load(text)["ingress"]
    keys = set(doc) | {f"tls.{k}" for k in doc["tls"]} | {f"dns.{k}" for k in doc["dns"]}
    keys |= {f"apps.{k}" for app in doc["apps"] for k in app}
    assert keys >= {"machines", "domain", "tls", "dns", "access_logs", "apps", "tls.mode", "tls.email", "tls.ca",
                    "tls.ca_root", "dns.provider", "dns.zone", "dns.ttl", "apps.name", "apps.hostname",
                    "apps.anubis", "apps.difficulty", "apps.tls"}


def test_ports_claimed_on_ingress_machines_only() -> None:
    cfg = ok("ingress:\n  machines: [web-1, web-2]\n  tls: {mode: internal}\n")
    claims = list(ingress_claims(cfg, None))
    assert [(c.host, c.package) for c in claims if isinstance(c, NeedsPackage)] == [("web-1", "caddy"), ("web-2", "caddy")]
    got = [(c.host, c.proto, c.port, c.path) for c in claims if isinstance(c, OpenPort)]
    assert got == [("web-1", "tcp", 80, "ingress.machines[0]"), ("web-1", "tcp", 443, "ingress.machines[0]"),
                   ("web-1", "udp", 443, "ingress.machines[0]"), ("web-2", "tcp", 80, "ingress.machines[1]"),
                   ("web-2", "tcp", 443, "ingress.machines[1]"), ("web-2", "udp", 443, "ingress.machines[1]")]
    assert all(c.owner == "ingress" for c in claims)
