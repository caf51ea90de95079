"""Layer 5, ingress: glue between the engine and the pure parts (sites, render, plan, dns, monitors).

- Sites come from the apps' `HttpService` claims (`ctx.config.claims`), never from the apps
  layer's config; an upstream on another machine is dialled at its mesh address
  (`MeshAddresses`), or — without a mesh — at the machine's own address, which the plan says.
- Every ingress machine gets the same sites; its Caddyfile differs only where an app runs on
  that machine itself (loopback).
- DNS: A/AAAA records of every hostname to the ingress machines' addresses (and their `ipv6`). With `dns.provider:
  hetzner` they are written through the Cloud API's zones (token `privilege.hcloud_token`,
  endpoint override like compute's); otherwise the plan lists them for a person.

State section "ingress": `images` — the Anubis image's pin (ref -> image id, digest),
recorded at its first pull, like the apps layer's pins (kept here: layers do not share state
sections); `anubis_ports` — the loopback ports of each protected app's Anubis, kept across
changes so adding an app never restarts the others.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar, Iterator, Mapping

from homelab.claims import HttpService
from homelab.config.ingress import LETS_ENCRYPT, IngressConfig
from homelab.errors import HomelabError
from homelab.events import Event
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.ingress import dns
from homelab.layers.ingress.monitors import LAYER, ingress_monitors
from homelab.layers.ingress.plan import HostInputs, anubis_envs, pin_of, plan_host, sha256
from homelab.layers.ingress.probes import (anubis_probes, caddy_probes, cert_probe, https_probe, parse_anubis,
                                           parse_caddy)
from homelab.layers.ingress.render import AnubisPorts, CaddySettings, Site, render_caddyfile
from homelab.layers.ingress.sites import plan_sites
from homelab.layers.ingress.upstreams import balanced_targets, upstream_monitors, upstream_probe
from homelab.model import Change, Health, LayerPlan, Monitor, StateWrite
from homelab.outputs import MeshAddresses
from homelab.probe import AnyProbe, ProbeResult


class IngressLayer(Layer):
    name: ClassVar[str] = "ingress"

    def __init__(self) -> None:
        self._zones: Any = None  # one HcloudZones per run (a layer instance lives for one run)
        self._dns: dict[str, dns.RecordChange] = {}  # Change.target -> the record change it carries

    @staticmethod
    def config(ctx: RunContext) -> IngressConfig | None:
        cfg: IngressConfig | None = ctx.config.get("ingress")
        return cfg

    def enabled(self, ctx: RunContext) -> bool:
        return self.config(ctx) is not None

    def targets(self, ctx: RunContext) -> list[HostTarget]:
        cfg = self.config(ctx)
        machines = set(cfg.machines) if cfg else set()
        return [h for h in ctx.live_hosts() if h.name in machines]

    # -------------------------------------------------------------- wanted ---
    def sites(self, ctx: RunContext) -> list[Site]:
        cfg = self.config(ctx)
        assert cfg is not None
        previous = {app: AnubisPorts(*ports) for app, ports in
                    ctx.state.section(self.name).get("anubis_ports", {}).items()}
        return plan_sites(ctx.config.claims.of(HttpService), cfg, previous)

    def _addresses(self, ctx: RunContext, sites: list[Site]) -> tuple[dict[str, str], list[str]]:
        """How an ingress machine dials each app machine: its mesh address, else its own address."""
        mesh = ctx.outputs.get(MeshAddresses)
        found = dict(mesh.addresses) if mesh is not None else {}
        notes = []
        cfg = self.config(ctx)
        machines = cfg.machines if cfg else ()
        for host in sorted({u.host for s in sites for u in s.upstreams}):
            if host in found or host not in ctx.hosts or all(m == host for m in machines):
                continue  # (an app on the only ingress machine is reached on loopback)
            found[host] = ctx.hosts[host].address
            apps = ", ".join(sorted({s.app for s in sites if any(u.host == host for u in s.upstreams)}))
            notes.append(f"no mesh address for {host}: ingress dials {apps} at {ctx.hosts[host].address} "
                         "(the apps layer publishes ports on loopback and the mesh only; add a mesh)")
        return found, notes

    def settings(self, ctx: RunContext, host: str, addresses: Mapping[str, str]) -> CaddySettings:
        cfg = self.config(ctx)
        assert cfg is not None
        acme = cfg.tls.mode == "acme" or any(a.tls == "acme" for a in cfg.apps)
        return CaddySettings(host, addresses, email=cfg.tls.email if acme else None,
                             acme_ca=cfg.tls.ca if acme and cfg.tls.ca != LETS_ENCRYPT else None,
                             acme_ca_root=cfg.tls.ca_root if acme else None, access_logs=cfg.access_logs)

    def _metrics_ports(self, sites: list[Site]) -> dict[str, int]:
        return {s.app: s.anubis.metrics for s in sites if s.anubis is not None}

    # --------------------------------------------------------------- probes ---
    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, AnyProbe]:
        cfg = self.config(ctx)
        if cfg is None or host.name not in cfg.machines:
            return {}
        try:
            sites = self.sites(ctx)
        except HomelabError:  # diff reports it; probe what can be probed
            sites = []
        names = [s.hostname for s in sites]
        status = ctx.command == "status"  # Anubis's /healthz, TLS handshakes and requests per site: only
        # the monitors read them, and each is a curl on the host at every no-op
        out: dict[str, AnyProbe] = {**caddy_probes(), **anubis_probes(
            cfg.anubis.image, self._metrics_ports(sites) if status else {})}
        if status:
            out |= {"ingress.certs": cert_probe(names), "ingress.https": https_probe(names)}
        targets = self._balanced(ctx, host.name, sites) if status else []
        if targets:  # each copy of a load-balanced app, asked as Caddy asks it
            out["ingress.upstreams"] = upstream_probe(targets)
        return out

    def _balanced(self, ctx: RunContext, host: str, sites: list[Site]) -> list[Any]:
        """The copies of load-balanced apps, as `host` dials them (none when an address is missing)."""
        try:
            return balanced_targets(sites, self.settings(ctx, host, self._addresses(ctx, sites)[0]))
        except HomelabError:  # no address for a machine: the plan says why
            return []

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        cfg = self.config(ctx)
        if cfg is None or cfg.dns.provider != "hetzner" or cfg.dns.zone is None:
            return Observed(hosts=probed)
        return Observed(hosts=probed, api=dns.observe_records(self.zones(ctx), cfg.dns.zone))

    def zones(self, ctx: RunContext) -> Any:
        if self._zones is None:
            from homelab.providers.hcloud_api import open_api  # lazy: no hcloud without a DNS provider
            from homelab.providers.hcloud_zones import HcloudZones

            self._zones = HcloudZones(open_api(ctx.secret(ctx.config.privilege.token_source),
                                               ctx.options.api_endpoint, None))
        return self._zones

    # ----------------------------------------------------------------- diff ---
    def dns_plan(self, ctx: RunContext, observed: Observed, sites: list[Site]) -> tuple[dns.DnsPlan, list[str]]:
        cfg = self.config(ctx)
        assert cfg is not None
        known = {n: (t.address, t.ipv6) for n, t in ctx.hosts.items()}
        ipv4, ipv6, warnings = dns.record_addresses(cfg.machines, known)
        hostnames = [s.hostname for s in sites]
        if cfg.dns.provider != "hetzner" or cfg.dns.zone is None:
            return dns.plan_by_hand(hostnames, ipv4, ipv6, cfg.dns.ttl), warnings
        cluster = getattr(ctx.config.compute.hetzner, "cluster", None) or "homelab"
        wanted, manual = dns.wanted_records(hostnames, cfg.dns.zone, ipv4, ipv6, cfg.dns.ttl, cluster)
        return dns.plan_records(wanted, observed.api or [], zone=cfg.dns.zone, cluster=cluster,
                                manual=manual), warnings

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        cfg = self.config(ctx)
        assert cfg is not None
        sites = self.sites(ctx)
        addresses, notes = self._addresses(ctx, sites)
        changes: list[Change] = []
        unchanged: list[str] = []
        warnings: list[str] = list(notes)
        writes = [StateWrite(("anubis_ports",), {s.app: [s.anubis.bind, s.anubis.metrics, s.anubis.inner]
                                                 for s in sites if s.anubis is not None})]
        record_plan, dns_warnings = self.dns_plan(ctx, observed, sites)
        warnings += dns_warnings + list(record_plan.conflicts)
        self._dns = {}
        for rc in record_plan.changes:
            target = f"dns {rc.rrset.name} {rc.rrset.type}"
            self._dns[target] = rc
            changes.append(Change(self.name, target, rc.action, f"DNS {record_plan.zone}: {rc.summary}",
                                  destructive=False))
        unchanged += [f"DNS {record_plan.zone}: {line}" for line in record_plan.unchanged]
        manual = [f"DNS record to create by hand: {line}" for line in record_plan.manual]
        section = ctx.state.section(self.name)
        for host in self.targets(ctx):
            results = observed.hosts.get(host.name, {})
            settings = self.settings(ctx, host.name, addresses)
            hp = plan_host(HostInputs(
                host.name, tuple(sites), settings, render_caddyfile(sites, settings), cfg.anubis,
                parse_caddy(results) if results else None,
                parse_anubis(results, cfg.anubis.image) if results else None, pin_of(section, cfg.anubis.image)))
            changes += hp.changes
            unchanged += hp.unchanged
            warnings += hp.warnings
            writes += hp.writes
            manual += hp.notes
        for name in cfg.machines:
            if name not in ctx.hosts:
                warnings.append(f"{name}: not reachable yet; its Caddy is not planned")
        return LayerPlan(self.name, tuple(changes), tuple(unchanged), tuple(warnings), notes=tuple(manual),
                         writes=tuple(writes))

    def apply_change(self, ctx: RunContext, change: Change) -> Iterator[Event]:
        cfg = self.config(ctx)
        rc = self._dns.get(change.target)
        if rc is None or cfg is None or cfg.dns.zone is None:
            raise HomelabError(f"{change.summary}: not a DNS change this run planned", "run plan again")
        dns.apply_records(self.zones(ctx), dns.DnsPlan(cfg.dns.zone, (rc,)))
        return
        yield  # pragma: no cover

    # --------------------------------------------------------------- status ---
    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        cfg = self.config(ctx)
        assert cfg is not None
        try:
            sites = self.sites(ctx)
        except HomelabError as exc:
            return [Monitor(self.name, "ingress", "sites", Health.FAIL, exc.message)]
        addresses, _ = self._addresses(ctx, sites)
        out: list[Monitor] = []
        now = time.time()
        probes = {s.hostname for s in sites}
        for name in cfg.machines:
            results = observed.hosts.get(name)
            if not results:
                why = ctx.failed_hosts.get(name, "not reachable")
                out.append(Monitor(LAYER, name, "caddy", Health.UNKNOWN, why))
                continue
            out += self._host_monitors(ctx, name, results, sites, addresses)
            certs = cert_probe(sorted(probes)).value(results.get("ingress.certs")) or {}
            https = https_probe(sorted(probes)).value(results.get("ingress.https")) or {}
            suffix = f" @{name}" if len(cfg.machines) > 1 else ""
            for m in ingress_monitors(probes, certs, https, now, [s.hostname for s in sites if s.internal_tls]):
                out.append(Monitor(m.layer, m.subject + suffix, m.name, m.health, m.reason, m.checked_at))
            targets = self._balanced(ctx, name, sites)
            out += upstream_monitors(targets, upstream_probe(targets).value(results.get("ingress.upstreams")), suffix)
        try:
            record_plan, _ = self.dns_plan(ctx, observed, sites)
        except HomelabError as exc:
            return out + [Monitor(LAYER, "dns", "records", Health.UNKNOWN, exc.message)]
        out += dns_monitors(record_plan)
        return out

    def _host_monitors(self, ctx: RunContext, name: str, results: Mapping[str, ProbeResult], sites: list[Site],
                       addresses: Mapping[str, str]) -> list[Monitor]:
        caddy = parse_caddy(results)
        if caddy is None:
            return [Monitor(LAYER, name, "caddy", Health.UNKNOWN, "probe timed out")]
        settings = self.settings(ctx, name, addresses)
        try:
            want = sha256(render_caddyfile(sites, settings))
        except HomelabError:  # a site without an upstream: the plan says why
            want = ""
        out = [Monitor(LAYER, name, "caddy", Health.OK if caddy.active else Health.FAIL,
                       f"caddy {caddy.version} running" if caddy.active else
                       ("not installed" if caddy.version is None else "caddy is not running")),
               Monitor(LAYER, name, "caddyfile", Health.OK if caddy.caddyfile_sha == want else Health.WARN,
                       "as planned" if caddy.caddyfile_sha == want else "differs from the plan (apply installs it)")]
        cfg = self.config(ctx)
        assert cfg is not None
        facts = parse_anubis(results, cfg.anubis.image)
        for app in sorted(anubis_envs(tuple(sites), settings)):
            c = facts.containers.get(app) if facts else None
            if c is None:
                out.append(Monitor(LAYER, app, "anubis", Health.FAIL, f"no Anubis on {name}: the app answers 502"))
            elif c.healthz == 200:
                out.append(Monitor(LAYER, app, "anubis", Health.OK, f"{c.state}, /healthz 200"))
            else:
                out.append(Monitor(LAYER, app, "anubis", Health.FAIL,
                                   f"{c.state}, /healthz {c.healthz or 'no answer'}: the app answers 502"))
        return out


def dns_monitors(plan: dns.DnsPlan) -> list[Monitor]:
    """Wanted records vs the zone: one monitor per record, named "NAME TYPE" (a hostname has an
    A and an AAAA record when its machine has IPv6); by hand: one monitor saying so."""
    if plan.zone is None:
        return [Monitor(LAYER, "dns", "records", Health.UNKNOWN,
                        f"no DNS provider: {len(plan.manual)} record(s) to keep by hand (see plan)")]

    def record(line: str) -> str:  # "cal A 10.0.0.1 is set" -> "cal A"
        return " ".join(line.split(" ", 2)[:2])

    out = [Monitor(LAYER, "dns", record(line), Health.OK, line) for line in plan.unchanged]
    for c in plan.changes:
        name = f"{c.rrset.name} {c.rrset.type}"
        if c.action == "delete":
            out.append(Monitor(LAYER, "dns", name, Health.WARN, f"{c.summary}: apply removes it"))
        else:
            out.append(Monitor(LAYER, "dns", name, Health.FAIL, f"{c.summary}: not in the zone as planned"))
    out += [Monitor(LAYER, "dns", record(c), Health.FAIL, c) for c in plan.conflicts]
    return out
