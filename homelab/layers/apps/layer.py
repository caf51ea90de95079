"""Layer 6, apps: glue between the engine and the pure per-host diff (plan.py).

State section "apps": `images` — the pin of every image ref, recorded the first time it is
pulled (like a pinned host key: every later apply on any host runs exactly that image; `homelab
apps update` moves it deliberately); `hosts` — which apps homelab deployed on each host, so an
app that leaves the config is stopped there (its data kept).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

from homelab.config.apps import App, AppsConfig
from homelab.hosts import HostTarget
from homelab.layers.apps.monitor import ServiceState, app_monitors
from homelab.layers.apps.pins import ImagePin
from homelab.layers.apps.bundle import read_bundle_ids, sha256_file
from homelab.layers.apps.service import parse_service, service_monitors, service_probe, unit_state_probe
from homelab.layers.apps.plan import Bundle, HostInputs, build_release, plan_host, refs_of
from homelab.layers.apps.probes import (
    AppFacts, app_probe, containers_probe, docker_probes, images_probe, parse_app, parse_docker,
    parse_host_containers, parse_image_ids, parse_images,
)
from homelab.layers.base import Layer, Observed, RunContext
from homelab.model import Change, Health, LayerPlan, Monitor
from homelab.outputs import HostFacts, MeshAddresses
from homelab.probe import AnyProbe, ProbeResult


def pins_of(section: Mapping[str, Any]) -> dict[str, ImagePin]:
    return {ref: ImagePin(ref, v["image_id"], v.get("digest", ""))
            for ref, v in section.get("images", {}).items() if isinstance(v, dict) and "image_id" in v}


def _http(cfg: AppsConfig, app: App) -> tuple[int, str] | None:
    recipe = cfg.recipe_of(app)
    if recipe.http is None or app.port is None:
        return None
    return app.port, recipe.http.health_path


class AppsLayer(Layer):
    name: ClassVar[str] = "apps"

    @staticmethod
    def config(ctx: RunContext) -> AppsConfig:
        return ctx.config.get("apps") or AppsConfig()

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("apps") is not None or bool(ctx.state.section(self.name).get("hosts"))

    def _on(self, ctx: RunContext, host: str) -> tuple[list[App], list[str]]:
        """(the config's apps on host, apps homelab deployed there that the config dropped)."""
        cfg = self.config(ctx)
        mine = [a for a in cfg.apps if host in a.machines]
        deployed = ctx.state.section(self.name).get("hosts", {}).get(host, [])
        return mine, sorted(set(deployed) - {a.name for a in mine})

    def targets(self, ctx: RunContext) -> list[HostTarget]:
        return [h for h in ctx.live_hosts() if any(self._on(ctx, h.name))]

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, AnyProbe]:
        mine, removed = self._on(ctx, host.name)
        if not mine and not removed:
            return {}
        cfg = self.config(ctx)
        refs = self._refs(cfg, mine)
        pins = pins_of(ctx.state.section(self.name))
        ids = sorted({pins[r].image_id for r in refs if r in pins})
        out: dict[str, AnyProbe] = {**docker_probes(), "apps.images": images_probe(refs, ids),
                                    "apps.containers": containers_probe()}
        status = ctx.command == "status"  # a compose app's HTTP answer and data size: monitors only
        for app in mine:
            recipe = cfg.recipe_of(app)
            out[f"apps.app.{app.name}"] = (service_probe(app, recipe) if recipe.kind == "service"
                                           else app_probe(app.dir, _http(cfg, app) if status else None, data=status))
        for name in removed:  # it may have been either kind: look for both
            out[f"apps.app.{name}"] = app_probe(App(name, name, host.name).dir, None, data=False)
            out[f"apps.unit.{name}"] = unit_state_probe(name)
        return out

    @staticmethod
    def _refs(cfg: AppsConfig, apps: list[App]) -> list[str]:
        return sorted({r for a in apps for r in refs_of(cfg.recipe_of(a))})

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        bundle = None
        if ctx.options.bundle:  # `apply --bundle FILE`: what it holds, read once
            path = Path(ctx.options.bundle).resolve()
            bundle = Bundle(str(path), sha256_file(path), frozenset(read_bundle_ids(path)))
        return Observed(hosts=probed, api=bundle)

    def _inputs(self, ctx: RunContext, observed: Observed, host: HostTarget) -> HostInputs:
        mine, removed = self._on(ctx, host.name)
        results = observed.hosts.get(host.name, {})
        cfg = self.config(ctx)
        running = {}
        services = {}
        projects = parse_host_containers(results.get("apps.containers"))
        for name in removed:
            services[name] = parse_service(results.get(f"apps.unit.{name}"))
        for name in [a.name for a in mine] + removed:
            app = cfg.app(name)
            if app is not None and cfg.recipe_of(app).kind == "service":
                services[name] = parse_service(results.get(f"apps.app.{name}"))
                continue
            facts = parse_app(results.get(f"apps.app.{name}"), projects.get(name, {}))
            if facts is not None:
                running[name] = facts
        facts_out = ctx.outputs.get(HostFacts, host.name)
        return HostInputs(
            host=host.name, apps=tuple(mine), os=facts_out.os if facts_out else "",
            docker=parse_docker(results) if results else None,
            have=parse_images(results.get("apps.images"), self._refs(cfg, mine)),
            ids=parse_image_ids(results.get("apps.images")),
            bundle=observed.api, running=running, services=services,
            pins=pins_of(ctx.state.section(self.name)), removed=tuple(removed),
            purge=ctx.options.purge_data, publish_on=self._publish_on(ctx, host.name))

    @staticmethod
    def _publish_on(ctx: RunContext, host: str) -> tuple[str, ...]:
        """Where the host's app ports listen: loopback, and its mesh address when it has one."""
        mesh = ctx.outputs.get(MeshAddresses)
        return ("127.0.0.1", mesh.addresses[host]) if mesh is not None and host in mesh.addresses else ("127.0.0.1",)

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        cfg = self.config(ctx)
        changes: list[Change] = []
        same: list[str] = []
        warnings: list[str] = []
        blocked: list[str] = []
        writes = []
        for host in self.targets(ctx):
            hp = plan_host(cfg, self._inputs(ctx, observed, host))
            changes += hp.changes
            same += hp.unchanged
            warnings += hp.warnings
            blocked += hp.blocked
            writes += hp.writes
        for app in cfg.apps:
            for machine in app.machines:
                if machine not in ctx.hosts:
                    warnings.append(f"{app.name}: machine {machine} is not reachable yet; not planned")
        return LayerPlan(self.name, tuple(changes), tuple(same), tuple(warnings), tuple(blocked),
                         writes=tuple(writes))

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        cfg = self.config(ctx)
        pins = pins_of(ctx.state.section(self.name))
        out: list[Monitor] = []
        projects = {name: parse_host_containers(results.get("apps.containers"))  # once per host
                    for name, results in observed.hosts.items() if results}
        for app in cfg.apps:
            for machine in app.machines:
                out += self._app_status(ctx, cfg, pins, observed, app, machine, projects.get(machine, {}))
        return out

    def _app_status(self, ctx: RunContext, cfg: AppsConfig, pins: Mapping[str, ImagePin], observed: Observed,
                    app: App, machine: str, projects: Mapping[str, Mapping[str, ServiceState]]) -> list[Monitor]:
        """One copy's monitors; a copy of an app on several machines is named APP@MACHINE.
        `projects`: its machine's compose projects, parsed once for all its apps."""
        subject = f"{app.name}@{machine}" if app.also_on else app.name
        out: list[Monitor] = []
        results = observed.hosts.get(machine)
        if not results:
            why = ctx.failed_hosts.get(machine, "not reachable")
            out.append(Monitor(self.name, subject, "running", Health.UNKNOWN, f"{machine}: {why}"))
            return out
        recipe = cfg.recipe_of(app)
        if recipe.kind == "service":
            out += service_monitors(app.name, recipe, parse_service(results.get(f"apps.app.{app.name}")))
            return out
        facts = parse_app(results.get(f"apps.app.{app.name}"), projects.get(app.name, {})) or AppFacts()
        try:
            release = build_release(cfg, app, pins, self._publish_on(ctx, machine))
        except KeyError:
            out.append(Monitor(self.name, subject, "running", Health.FAIL, "not deployed yet (apply pulls and pins it)"))
            return out
        expected = {}
        ids = {ref: pin.image_id for ref, pin in pins.items()}
        for svc in recipe.services:
            img = recipe.image(svc.image or "")
            if img is not None:
                expected[svc.name] = ids.get(f"{img.repository}:{img.tag}", "")
        out += app_monitors(subject, expected, facts.states, facts.http,
                            recipe.http.expect_status if recipe.http and app.port else None)
        if facts.data_bytes is not None:
            out.append(Monitor(self.name, subject, "data", Health.OK,
                               f"{facts.data_bytes / 1e6:.1f} MB in {app.data_dir}"))
        out.append(Monitor(self.name, subject, "release", Health.OK if facts.release == release.id else Health.WARN,
                           f"release {facts.release or 'none'}" + ("" if facts.release == release.id
                                                                   else f", config wants {release.id}")))
        return out
