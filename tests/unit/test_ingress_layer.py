"""The ingress layer: per-host diff (pure), probes' parsers, the glue (sites from claims, upstream
addresses, DNS through the stand-in API), the wizard step and `ca export`'s parsing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from homelab.config import load_config
from homelab.config.ingress import AnubisImage
from homelab.errors import ConfigError, HomelabError
from homelab.hosts import HostTarget
from homelab.lab.fake_hcloud import FakeHcloud
from homelab.layers.base import Observed, RunContext, RunOptions
from homelab.layers.ingress import IngressLayer
from homelab.layers.ingress import anubis as an
from homelab.layers.ingress.cli import parse_pem
from homelab.layers.ingress.plan import HostInputs, Pin, anubis_envs, plan_host, sha256
from homelab.layers.ingress.probes import (AnubisContainer, AnubisFacts, CaddyFacts, nothing_there, parse_anubis,
                                           parse_caddy)
from homelab.layers.ingress.render import AnubisPorts, CaddySettings, Site, Upstream, render_caddyfile
from homelab.model import Health
from homelab.outputs import MeshAddresses
from homelab.probe import ProbeResult
from homelab.state import State

IMAGE_ID = "sha256:" + "ab" * 32
SETTINGS = CaddySettings("web", {}, email="ops@example.org")
PLAIN = Site("cal.example.org", "cal", (Upstream("web", 20001),))
GUARDED = Site("notes.example.org", "notes", (Upstream("web", 20002),), anubis=AnubisPorts(8900, 9100, 9300))


def inputs(sites: tuple[Site, ...], caddy: CaddyFacts | None, anubis: AnubisFacts | None = None,
           pin: Pin | None = None) -> HostInputs:
    return HostInputs("web", sites, SETTINGS, render_caddyfile(sites, SETTINGS), AnubisImage(mirror="labrepo:5000"),
                      caddy, anubis, pin)


def test_a_fresh_machine_gets_docker_started_the_pinned_image_then_anubis() -> None:
    hp = plan_host(inputs((PLAIN, GUARDED), CaddyFacts(), AnubisFacts()))
    assert [(c.target, c.action, bool(c.deferred)) for c in hp.changes] == [
        ("web docker", "create", False), ("anubis image", "create", False),
        ("anubis notes", "create", True), ("web Caddyfile", "update", False)]
    # caddy and docker.io are package claims: compute installs them, ingress installs nothing
    assert not any(op.name == "apt.packages" for c in hp.changes for op in c.ops)
    assert hp.notes == ["web: caddy not installed yet (compute's package step installs it)"]
    assert hp.changes[0].ops[0].kwargs == {"commands": ["systemctl enable --now docker"]}
    pull = hp.changes[1].ops[0].kwargs["commands"][0]
    assert pull == ("docker pull -q labrepo:5000/ghcr.io/techarohq/anubis:v1.27.0 >/dev/null && "
                    "docker tag labrepo:5000/ghcr.io/techarohq/anubis:v1.27.0 ghcr.io/techarohq/anubis:v1.27.0")
    # the Caddyfile is one op: the install script with the rendered file in it
    (op,) = hp.changes[-1].ops
    assert render_caddyfile((PLAIN, GUARDED), SETTINGS) in op.kwargs["commands"][0]


def test_the_image_the_host_has_is_pinned_and_anubis_deployed_from_its_id() -> None:
    hp = plan_host(inputs((GUARDED,), CaddyFacts("2.6.2-9", True, None), AnubisFacts(True, IMAGE_ID, "sha256:" + "cd" * 32)))
    assert [(w.path, w.value) for w in hp.writes] == [
        (("images", "ghcr.io/techarohq/anubis:v1.27.0"), {"image_id": IMAGE_ID, "digest": "sha256:" + "cd" * 32})]
    deploy = next(c for c in hp.changes if c.target == "anubis notes")
    script = deploy.ops[0].kwargs["commands"][0]
    assert f"--label homelab.spec={an.spec_hash(IMAGE_ID, anubis_envs((GUARDED,), SETTINGS)['notes'])}" in script
    assert script.count(IMAGE_ID) == 1 and ":v1.27.0" not in script  # the pinned id, never the tag
    assert "ED25519_PRIVATE_KEY_HEX_FILE=/data/ed25519.key" in script and "http://127.0.0.1:9100/healthz" in script
    # the key is made on the host, never passed: the script only names its path
    assert "od -An -vtx1 -N32 /dev/urandom" in script and "/var/lib/homelab/anubis/notes/ed25519.key" in script


def test_everything_as_planned_changes_nothing() -> None:
    sites = (PLAIN, GUARDED)
    spec = an.spec_hash(IMAGE_ID, anubis_envs(sites, SETTINGS)["notes"])
    hp = plan_host(inputs(sites, CaddyFacts("2.6.2-9", True, sha256(render_caddyfile(sites, SETTINGS))),
                          AnubisFacts(True, IMAGE_ID, "", {"notes": AnubisContainer("notes", "running", spec, 200)}),
                          Pin(IMAGE_ID)))
    assert hp.changes == [] and hp.writes == []
    assert hp.unchanged == ["web: Anubis for notes runs as configured (difficulty 4)",
                            "web: Caddyfile as planned (cal.example.org, notes.example.org), caddy running"]


def test_changed_settings_restart_anubis_and_a_dropped_one_is_removed() -> None:
    harder = Site(GUARDED.hostname, "notes", GUARDED.upstreams, anubis=GUARDED.anubis, difficulty=6)
    old = AnubisFacts(True, IMAGE_ID, "", {"notes": AnubisContainer("notes", "running", "0" * 16, 200),
                                           "gone": AnubisContainer("gone", "running", "1" * 16, 200)})
    hp = plan_host(inputs((harder,), CaddyFacts("2.6.2-9", True, "x"), old, Pin(IMAGE_ID)))
    assert [(c.target, c.action) for c in hp.changes] == [
        ("anubis gone", "delete"), ("anubis notes", "update"), ("web Caddyfile", "update")]
    assert "difficulty 6" in hp.changes[1].summary
    assert hp.changes[0].ops[0].kwargs["commands"][0] == \
        "docker rm -f homelab-anubis-gone >/dev/null 2>&1 || true; rm -rf /var/lib/homelab/anubis/gone"


def test_a_stopped_caddy_with_the_right_file_is_started_and_an_unreachable_host_not_planned() -> None:
    hp = plan_host(inputs((PLAIN,), CaddyFacts("2.6.2-9", False, sha256(render_caddyfile((PLAIN,), SETTINGS)))))
    assert [(c.summary, c.ops[0].kwargs["commands"]) for c in hp.changes] == [
        ("web: start Caddy (Caddyfile as planned)", ["systemctl start caddy"])]
    down = plan_host(inputs((PLAIN,), None))
    assert down.changes == [] and down.warnings == ["web: not planned (not reachable or its probe failed)"]


def test_probe_parsers() -> None:
    """Caddy's and Anubis's facts come from the host's batched answers (probe.batch_groups):
    dpkg-query, systemctl show, sha256sum, docker image inspect, docker ps + inspect."""
    from homelab.layers.ingress.scripts import LIVE

    caddy = {"ingress.caddy.package": ProbeResult(0, "caddy ii  2.6.2-9\ncurl ii  8.14\n"),
             "ingress.caddy.unit": ProbeResult(0, "Id=caddy.service\nLoadState=loaded\nActiveState=active\n"
                                                  "UnitFileState=enabled\n"),
             "ingress.caddy.sha": ProbeResult(0, f"{'ab' * 32}  {LIVE}\n")}
    assert parse_caddy(caddy) == CaddyFacts("2.6.2-9", True, "ab" * 32)
    assert parse_caddy(nothing_there()) == CaddyFacts(None, False, None)
    assert parse_caddy({**caddy, "ingress.caddy.unit": ProbeResult(124, "")}) is None  # timed out: unknown
    image = "ghcr.io/techarohq/anubis:v1.27.0"
    rows = [{"Labels": {"homelab.anubis": "notes", "homelab.spec": "0123456789abcdef"}, "State": "running"},
            {"Labels": {"homelab.anubis": "", "homelab.spec": "",  # another container of the host
                        "com.docker.compose.project": "cal"}, "State": "running"}]
    anubis = {"ingress.anubis.image": ProbeResult(0, f'{IMAGE_ID} ["{image}"] '
                                                     f'["{image.split(":")[0]}@sha256:{"ef" * 32}"]\n'),
              "ingress.anubis.containers": ProbeResult(0, "docker answers\n" + "\n".join(map(json.dumps, rows))),
              "ingress.anubis.healthz": ProbeResult(0, "notes 200\n")}
    assert parse_anubis(anubis, image) == AnubisFacts(
        True, IMAGE_ID, "sha256:" + "ef" * 32, {"notes": AnubisContainer("notes", "running", "0123456789abcdef", 200)})
    assert parse_anubis(nothing_there(), image) == AnubisFacts()  # docker did not answer
    assert parse_anubis({**anubis, "ingress.anubis.containers": ProbeResult(124, "")}, image) is None


# ------------------------------------------------------------------ the glue --

CONFIG = """\
version: 1
privilege: {{ssh_key: {key}, use_agent: false, hcloud_token: {{env: HL_TEST_TOKEN}}}}
compute:
  machines:
    - {{name: web, address: 10.0.0.1{web}}}
    - {{name: pi, address: 10.0.0.2}}
ingress:
  machines: [web]
  domain: example.org
  tls: {{mode: acme, email: ops@example.org}}
{dns}
apps:
  list:
    - {{name: cal, recipe: radicale, machine: web, port: 20001}}
    - {{name: notes, recipe: radicale, machine: pi, port: 20002, anubis: true}}
"""


def context(tmp_path: Path, dns: str = "", endpoint: str | None = None, web: str = "") -> RunContext:
    key = tmp_path / "id_ed25519"
    key.write_text("unused\n")
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(key=key, dns=dns, web=web))
    cfg = load_config(path)
    ctx = RunContext(cfg, State(tmp_path / "c.state.json"), RunOptions(api_endpoint=endpoint))
    for m in cfg.machines:
        ctx.add_host(HostTarget(m.name, m.address, ipv6=m.ipv6))
    return ctx


def fresh(layer: IngressLayer) -> dict[str, dict[str, ProbeResult]]:
    return {"web": nothing_there()}


def test_sites_come_from_the_apps_claims_and_remote_apps_are_dialled_over_the_mesh(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = IngressLayer()
    ctx.outputs.publish(MeshAddresses({"web": "10.100.0.1", "pi": "10.100.0.2"}))
    plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
    caddyfile = next(c for c in plan.changes if c.target == "web Caddyfile").ops[0].kwargs["commands"][0]
    assert "cal.example.org {" in caddyfile and "reverse_proxy 127.0.0.1:20001" in caddyfile
    # notes is behind Anubis: the site goes to Anubis only, Anubis's target is the mesh address
    routes = [ln for ln in caddyfile.splitlines() if "reverse_proxy" in ln]
    assert "\treverse_proxy 127.0.0.1:8900 {" in routes and not any("20002" in ln for ln in routes)
    deploy = next(c for c in plan.changes if c.target == "anubis notes")
    assert deploy.deferred  # first the image is pulled and pinned
    assert not any("no mesh address" in w for w in plan.warnings)
    assert plan.notes == ("DNS record to create by hand: cal.example.org. 300 IN A 10.0.0.1",
                          "DNS record to create by hand: notes.example.org. 300 IN A 10.0.0.1",
                          "web: caddy not installed yet (compute's package step installs it)")
    assert any(w.path == ("anubis_ports",) and w.value == {"notes": [8900, 9100, 9300]} for w in plan.writes)


def test_without_a_mesh_the_plan_says_the_machine_address_is_used(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = IngressLayer()
    plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
    assert any(w.startswith("no mesh address for pi: ingress dials notes at 10.0.0.2") for w in plan.warnings), \
        plan.warnings
    ctx.state.section("ingress")["images"] = {"ghcr.io/techarohq/anubis:v1.27.0": {"image_id": IMAGE_ID}}
    plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
    script = next(c for c in plan.changes if c.target == "anubis notes").ops[0].kwargs["commands"][0]
    assert "TARGET=http://10.0.0.2:20002" in script


def test_ingress_hosts_and_ingress_machines_on_one_machine_conflict(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    text = ctx.config.path.read_text().replace("compute:", "permissions:\n  users: [{name: ops, sudo: true, "
                                               "keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl]}]\n"
                                               "  firewall: {ingress_hosts: [web]}\ncompute:")
    ctx.config.path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(ctx.config.path)
    assert ("ingress.machines[0]", "web: tcp port 80 is claimed by permissions (ingress) and by ingress "
            "(HTTP (ACME http-01, redirect to HTTPS))") in [(p.path, p.message) for p in err.value.problems]


def test_dns_records_through_the_stand_in_api_then_nothing_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcloud import Client

    monkeypatch.setenv("HL_TEST_TOKEN", "tok")
    with FakeHcloud("tok") as fake:
        Client("tok", api_endpoint=fake.url).zones.create(name="example.org", mode="primary")
        ctx = context(tmp_path, "  dns: {provider: hetzner, zone: example.org}", fake.url)
        ctx.outputs.publish(MeshAddresses({"web": "10.100.0.1", "pi": "10.100.0.2"}))
        layer = IngressLayer()
        plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
        records = [c for c in plan.changes if c.target.startswith("dns ")]
        assert [c.summary for c in records] == ["DNS example.org: + cal A 10.0.0.1 (ttl 300)",
                                                "DNS example.org: + notes A 10.0.0.1 (ttl 300)"]
        assert all(c.host is None for c in records)  # API changes: the layer applies them itself
        for c in records:
            list(layer.apply_change(ctx, c))
        again = IngressLayer()
        observed = again.observe(ctx, fresh(again))
        plan = again.diff(ctx, observed)
        assert not [c for c in plan.changes if c.target.startswith("dns ")]
        assert "DNS example.org: cal A 10.0.0.1 is set" in plan.unchanged
        dns = [m for m in again.status(ctx, observed) if m.subject == "dns"]
        assert [(m.name, m.health) for m in dns] == [("cal A", Health.OK), ("notes A", Health.OK)]


def test_a_machine_with_ipv6_gets_aaaa_records_in_the_plan_and_the_stand_in_zone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hcloud import Client
    from hcloud.zones import Zone

    layer = IngressLayer()
    ctx = context(tmp_path, web=", ipv6: 2001:db8::1")
    plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
    assert [n for n in plan.notes if n.startswith("DNS")] == [
        "DNS record to create by hand: cal.example.org. 300 IN A 10.0.0.1",
        "DNS record to create by hand: cal.example.org. 300 IN AAAA 2001:db8::1",
        "DNS record to create by hand: notes.example.org. 300 IN A 10.0.0.1",
        "DNS record to create by hand: notes.example.org. 300 IN AAAA 2001:db8::1"]
    monkeypatch.setenv("HL_TEST_TOKEN", "tok")
    with FakeHcloud("tok") as fake:
        api = Client("tok", api_endpoint=fake.url)
        api.zones.create(name="example.org", mode="primary")
        ctx = context(tmp_path, "  dns: {provider: hetzner, zone: example.org}", fake.url, web=", ipv6: 2001:db8::1")
        plan = layer.diff(ctx, layer.observe(ctx, fresh(layer)))
        records = [c for c in plan.changes if c.target.startswith("dns ")]
        assert [c.summary for c in records] == [
            "DNS example.org: + cal A 10.0.0.1 (ttl 300)", "DNS example.org: + cal AAAA 2001:db8::1 (ttl 300)",
            "DNS example.org: + notes A 10.0.0.1 (ttl 300)", "DNS example.org: + notes AAAA 2001:db8::1 (ttl 300)"]
        for c in records:
            list(layer.apply_change(ctx, c))
        zone = api.zones.get_rrset_all(Zone(name="example.org"), type=["AAAA"])
        assert sorted((r.name, tuple(x.value for x in r.records or [])) for r in zone) == [
            ("cal", ("2001:db8::1",)), ("notes", ("2001:db8::1",))]
        again = IngressLayer()
        assert not [c for c in again.diff(ctx, again.observe(ctx, fresh(again))).changes if c.target.startswith("dns ")]


def test_status_fails_closed_without_anubis_and_reports_caddy(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = IngressLayer()
    probed = {"web": {**nothing_there(), "ingress.caddy.package": ProbeResult(0, "caddy ii 2.6.2-9\n"),
                      "ingress.caddy.unit": ProbeResult(0, "Id=caddy.service\nActiveState=active\n"),
                      "ingress.caddy.sha": ProbeResult(0, f"{'0' * 64}  /etc/caddy/Caddyfile\n"),
                      "ingress.anubis.containers": ProbeResult(0, "docker answers\n"),
                      "ingress.certs": ProbeResult(0, "cert cal.example.org none\n"),
                      "ingress.https": ProbeResult(0, "https cal.example.org 502 0.01\n")}}
    got = {(m.subject, m.name): (m.health, m.reason) for m in layer.status(ctx, layer.observe(ctx, probed))}
    assert got[("web", "caddy")] == (Health.OK, "caddy 2.6.2-9 running")
    assert got[("web", "caddyfile")][0] is Health.WARN
    assert got[("notes", "anubis")] == (Health.FAIL, "no Anubis on web: the app answers 502")
    assert got[("cal.example.org", "certificate")][0] is Health.FAIL
    assert got[("cal.example.org", "https")][0] is Health.FAIL


def test_the_wizard_step_writes_a_section_the_parser_takes() -> None:
    from homelab.tui.wizard.steps.ingress import STEP
    from homelab.tui.wizard.yaml_text import emit

    assert STEP.render({"enabled": False, "machines": "web"}) == ()
    text = "\n".join(emit(STEP.render({**STEP.defaults(), "enabled": True, "machines": "web, pi",
                                       "domain": "example.org", "tls.mode": "internal",
                                       "tls.email": "ignored@example.org"})))
    assert "machines: [web, pi]" in text and "mode: internal" in text and "email" not in text and "dns" not in text
    one = "\n".join(emit(STEP.render({**STEP.defaults(), "enabled": True, "machines": "web"})))
    assert "machines: [web]" in one  # one machine, typed or picked: still the list the parser wants


def test_ca_export_takes_the_one_certificate() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
    assert parse_pem(f"noise\n{pem}\ntrailing") == pem + "\n"
    with pytest.raises(HomelabError):
        parse_pem("no internal CA yet")
