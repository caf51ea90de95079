"""The apps diff, per host (pure): config + recipes + pins + what the host showed -> changes.

Per host, in order:
1. Docker from Debian with homelab's daemon.json (compose apps only; Debian 13: Compose v2);
2. per app, its images: a ref without a pin is pinned from what the host already has under
   that name, or pulled once by its tag (the one time a tag is trusted) — then the app's
   deploy is *deferred* to the next pass of the same apply, which reads the pulled image back
   and records the pin;
3. per app, its release: the compose file rendered with pinned image ids; deployed (health
   gate, rollback by itself) when it differs from what runs, with the difference shown;
4. apps that left the config: stopped, data kept (removed only with --purge-data, confirmed).
"""
from __future__ import annotations

import difflib
import hashlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping

from homelab.config.apps import App, AppsConfig
from homelab.config.recipe import Recipe
from homelab.layers.apps import release as rel
from homelab.layers.apps.bundle import REMOTE_DIR, render_load_script
from homelab.layers.apps.docker import DockerSettings, compose_support, render_daemon_json, render_install_script
from homelab.layers.apps.pins import ImagePin, mirrored, pull_ref, split_ref
from homelab.layers.apps.probes import AppFacts, DockerFacts
from homelab.layers.apps.render import render_compose, render_secrets_script, unit_name
from homelab.layers.apps.service import render_service_deploy, render_service_remove, unit_sha
from homelab.model import Change, Op, StateWrite

LAYER = "apps"
NUMERIC_USER = re.compile(r"^[0-9]{1,10}(:[0-9]{1,10})?$")


@dataclass(frozen=True)
class HostInputs:
    host: str
    apps: tuple[App, ...]  # the config's apps on this host
    os: str = ""  # "debian 13" (compute's facts), "" unknown
    docker: DockerFacts | None = None  # None: not probed (host down)
    have: Mapping[str, ImagePin | None] = field(default_factory=dict)  # ref -> what the host has by that name
    running: Mapping[str, AppFacts] = field(default_factory=dict)  # app -> what runs
    services: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # service kind: unit, active, http
    pins: Mapping[str, ImagePin] = field(default_factory=dict)  # ref -> pin (state)
    ids: frozenset[str] = frozenset()  # pinned image ids the host has (under any name)
    bundle: Bundle | None = None  # `apply --bundle FILE`: images shipped from there
    removed: tuple[str, ...] = ()  # apps homelab deployed here that the config no longer names
    purge: bool = False  # --purge-data
    publish_on: tuple[str, ...] = ("127.0.0.1",)  # where `publish` ports listen (the host's addresses)


@dataclass(frozen=True)
class Bundle:
    path: str
    sha256: str
    ids: frozenset[str]


@dataclass
class HostPlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)


def refs_of(recipe: Recipe) -> list[str]:
    return [f"{img.repository}:{img.tag}" for _, img in recipe.images]


def docker_settings(cfg: AppsConfig) -> DockerSettings:
    mirror = cfg.images.mirror
    return DockerSettings(insecure_registries=(mirror,) if mirror and cfg.images.insecure else ())


def _deps(cfg: AppsConfig, app: App) -> dict[str, tuple[App, Recipe]]:
    out = {}
    for alias, name in app.requires:
        other = cfg.app(name)
        if other is not None:
            out[alias] = (other, cfg.recipe_of(other))
    return out


def build_release(cfg: AppsConfig, app: App, pins: Mapping[str, ImagePin],
                  publish_on: tuple[str, ...] = ("127.0.0.1",)) -> rel.Release:
    """The app's release with every image pinned (pure). Raises KeyError for an unpinned ref."""
    recipe = cfg.recipe_of(app)
    deps = _deps(cfg, app)
    images = {key: pins[f"{img.repository}:{img.tag}"].image_id for key, img in recipe.images}
    # the app's HTTP on loopback and on the host's mesh address (ingress may run on another
    # machine; the mesh is the homelab's own network, trusted by every firewall)
    compose = render_compose(app, recipe, images, app.data_dir, app.env_file, deps=deps, http_on=publish_on,
                             publish_on=publish_on, pull_policy="never")
    mirror = cfg.images.mirror
    pinned = tuple(sorted({pins[r].image_id: pins[r] for r in refs_of(recipe)}.values(), key=lambda p: p.ref))
    images_with_pull = tuple((p, pull_ref(p, mirror) if p.digest else "") for p in pinned)
    # a volume is made owned by the container's numeric user ("1000:1000"), else root's
    volumes = tuple(sorted({v.name: (v.name, s.user if s.user and NUMERIC_USER.match(s.user) else None)
                            for s in recipe.services for v in s.volumes if v.source is None}.values()))
    secrets = (render_secrets_script(app, recipe, app.env_file, deps),) if recipe.secrets or deps else ()
    return rel.Release(app.name, app.dir, compose, images_with_pull, volumes, secrets)


def _compose_diff(old: str, new: str, app: str) -> tuple[str, ...]:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"{app} (running)", f"{app} (new)",
                                      lineterm="", n=1))
    return tuple(lines[:60]) + (("  ... (diff cut at 60 lines)",) if len(lines) > 60 else ())


def _changed_services(old: str, new: str) -> list[str]:
    """Services whose block differs: what a deploy recreates (compose restarts only those)."""
    import yaml

    try:
        a = (yaml.safe_load(old.split("\n", 2)[-1] if old.startswith("#") else old) or {}).get("services", {})
        b = (yaml.safe_load(new) or {}).get("services", {})
    except yaml.YAMLError:
        return []
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def plan_host(cfg: AppsConfig, inp: HostInputs) -> HostPlan:
    hp = HostPlan()
    h = inp.host
    compose_apps = [a for a in inp.apps if cfg.recipe_of(a).kind == "compose"]
    if inp.docker is None:
        if inp.apps or inp.removed:
            hp.warnings.append(f"{h}: not planned (not reachable or its probe failed)")
        return hp
    if compose_apps:
        os_id, _, version = inp.os.partition(" ")
        why = compose_support(os_id, version) if inp.os else None
        if why:
            hp.blocked.append(f"{h}: {', '.join(a.name for a in compose_apps)}: {why}")
            return hp
        _plan_docker(hp, cfg, inp)
    for app in inp.apps:
        _plan_app(hp, cfg, inp, app)
    _plan_removals(hp, inp)
    hp.writes.append(StateWrite(("hosts", h), sorted({a.name for a in inp.apps} | set(inp.removed))))
    return hp


def _plan_docker(hp: HostPlan, cfg: AppsConfig, inp: HostInputs) -> None:
    d = inp.docker
    assert d is not None
    settings = docker_settings(cfg)
    want_sha = hashlib.sha256(render_daemon_json(settings).encode()).hexdigest()
    missing = d.missing()
    if not missing and d.daemon_json_sha == want_sha and d.active:
        hp.unchanged.append(f"{inp.host}: Docker {d.compose_version and 'with Compose ' + d.compose_version} running, "
                            "daemon.json as configured")
        return
    why = (f"install {', '.join(missing)}" if missing else
           "write daemon.json (log rotation, live-restore)" if d.daemon_json_sha != want_sha else "start dockerd")
    hp.changes.append(Change(LAYER, inp.host, "create" if missing else "update", f"Docker: {why}",
                             (Op("server.shell", {"commands": [render_install_script(settings)]}),), host=inp.host))


def _plan_app(hp: HostPlan, cfg: AppsConfig, inp: HostInputs, app: App) -> None:
    recipe = cfg.recipe_of(app)
    h = inp.host
    if recipe.kind != "compose":
        _plan_service(hp, inp, app, recipe)
        return
    pins = dict(inp.pins)
    to_pull: list[str] = []
    for ref in refs_of(recipe):
        if ref in pins:
            continue
        have = inp.have.get(ref)
        if have is not None:  # on the host already (pulled earlier, a bundle): pin what it is
            pins[ref] = have
            hp.writes.append(StateWrite(("images", ref), {"image_id": have.image_id, "digest": have.digest}))
        else:
            to_pull.append(ref)
    if to_pull:
        mirror = cfg.images.mirror
        cmds = []
        for ref in to_pull:
            repo, tag = split_ref(ref)
            source = f"{mirrored(repo, mirror)}:{tag}" if mirror else ref
            cmds.append(f"docker pull -q {shlex.quote(source)} >/dev/null" +
                        (f" && docker tag {shlex.quote(source)} {shlex.quote(ref)}" if mirror else ""))
        hp.changes.append(Change(LAYER, f"{app.name}", "create", f"pull {', '.join(to_pull)} (pinned at this first pull)",
                                 (Op("server.shell", {"commands": cmds}),), host=h))
        hp.changes.append(Change(LAYER, app.name, "create", f"deploy {app.name} ({recipe.name} {recipe.upstream_version})",
                                 host=h, deferred="needs its images pinned once pulled"))
        return
    _plan_bundle(hp, inp, app, [pins[r] for r in refs_of(recipe)])
    release = build_release(cfg, app, pins, inp.publish_on)
    facts = inp.running.get(app.name, AppFacts())
    healthy = facts.states and all(s.state == "running" and s.health in ("", "healthy") for s in facts.states.values())
    if facts.release == release.id and healthy:
        hp.unchanged.append(f"{h}: {app.name} runs release {release.id}, healthy")
        return
    detail: tuple[str, ...] = ()
    if facts.release == release.id:
        what, action = "start again (not all services running and healthy)", "update"
    elif facts.release:
        changed = _changed_services(facts.compose, release.compose)
        what = f"update: restarts {', '.join(changed) or 'nothing'} (release {facts.release} -> {release.id})"
        action, detail = "update", _compose_diff(facts.compose, release.compose, app.name)
    else:
        what, action = f"deploy release {release.id}", "create"
    summary = (f"{app.name} ({recipe.name} {recipe.upstream_version}): {what}; health-gated, "
               "rolls back by itself if it fails")
    hp.changes.append(Change(LAYER, app.name, action, summary,
                             (Op("server.shell", {"commands": [rel.render_release_deploy(release)]}),),
                             host=h, detail=detail))


def _plan_service(hp: HostPlan, inp: HostInputs, app: App, recipe: Recipe) -> None:
    seen = inp.services.get(app.name, {})
    want = unit_sha(app, recipe)
    code = seen.get("http", "")
    healthy = recipe.http is None or code == str(recipe.http.expect_status)
    if seen.get("unit") == want and seen.get("active") == "active" and healthy:
        hp.unchanged.append(f"{inp.host}: {app.name} ({recipe.package}) runs as {unit_name(app)}, healthy")
        return
    what = ("install " + (recipe.package or "") + " as " + unit_name(app)) if not seen.get("unit") else \
        ("update " + unit_name(app)) if seen.get("unit") != want else "start again (not active and healthy)"
    hp.changes.append(Change(LAYER, app.name, "create" if not seen.get("unit") else "update",
                             f"{app.name} ({recipe.package} {recipe.upstream_version}, service): {what}; "
                             "health-gated, rolls back by itself if it fails",
                             (Op("server.shell", {"commands": [render_service_deploy(app, recipe)]}),), host=inp.host))


def _plan_bundle(hp: HostPlan, inp: HostInputs, app: App, pins: list[ImagePin]) -> None:
    """Pinned images the host lacks come from the bundle when one is given (else the deploy
    pulls them by digest)."""
    lacking = sorted({p.image_id: p for p in pins if p.image_id not in inp.ids}.values(), key=lambda p: p.ref)
    if not lacking or inp.bundle is None:
        return
    if any(c.target == f"bundle {inp.bundle.sha256[:12]}" for c in hp.changes):
        return  # one load per host and bundle, for all its apps (the file holds them all)
    missing = [p.ref for p in lacking if p.image_id not in inp.bundle.ids]
    if missing:
        hp.warnings.append(f"{inp.host}: bundle {inp.bundle.path} lacks {', '.join(missing)} (the deploy pulls them)")
        return
    remote = f"{REMOTE_DIR}/homelab-bundle-{inp.bundle.sha256[:16]}.tar"
    hp.changes.append(Change(LAYER, f"bundle {inp.bundle.sha256[:12]}", "update",
                             f"load {', '.join(p.ref for p in lacking)} from bundle {inp.bundle.path} (no pull)",
                             (Op("files.put_file", {"src": inp.bundle.path, "dest": remote, "mode": "600"}),
                              Op("server.shell", {"commands": [render_load_script(remote, inp.bundle.sha256, lacking)]})),
                             host=inp.host))


def _plan_removals(hp: HostPlan, inp: HostInputs) -> None:
    for name in inp.removed:
        gone = rel.App(name, ())
        unit = render_service_remove(name)  # whichever kind it was: both are stopped
        if inp.purge:
            hp.changes.append(Change(LAYER, name, "delete", f"{name}: stop and DELETE its data ({gone.dir})",
                                     (Op("server.shell", {"commands": [unit, rel.render_remove_script(gone, purge=True)]}),),
                                     host=inp.host, destructive=True,
                                     writes=(StateWrite(("hosts", inp.host), name, discard=True),)))
        elif inp.running.get(name, AppFacts()).states or inp.services.get(name, {}).get("active") == "active":
            hp.changes.append(Change(LAYER, name, "delete", f"{name}: stop (left the config; data kept in {gone.dir}/data)",
                                     (Op("server.shell", {"commands": [unit, rel.render_remove_script(gone)]}),),
                                     host=inp.host))
        else:
            hp.unchanged.append(f"{inp.host}: {name} stopped, data kept in {gone.dir}/data "
                                "(--purge-data --confirm-delete removes it)")
