"""The ingress diff for one ingress machine (pure): wanted sites + what the host showed -> changes.

In order, on the host:
1. Caddy from Debian (`caddy`), when it is not installed;
2. for apps behind Anubis: Docker (Debian's `docker.io`) when it does not answer; the Anubis
   image pulled once by its tag and pinned (its id in the ingress state, `images`; later
   applies run exactly that id) — the deploys wait for the next pass of the same apply, which
   reads the pulled image back; then one container per app, (re)started when its spec hash
   differs; containers of apps that lost Anubis or left the config are removed;
3. the Caddyfile, installed by ONE script (scripts.py) when its hash differs from the live one.

The Caddyfile never routes a protected app around its Anubis: the site proxies only to
Anubis's loopback port, so while Anubis is missing or down the app answers 502 (fail closed).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Mapping

from homelab.config.ingress import AnubisImage
from homelab.layers.ingress import anubis as an
from homelab.layers.ingress.probes import AnubisFacts, CaddyFacts
from homelab.layers.ingress.render import CaddySettings, Site, render_anubis_env
from homelab.layers.ingress.scripts import render_apply_script
from homelab.model import Change, Op, StateWrite

LAYER = "ingress"


@dataclass(frozen=True)
class Pin:
    image_id: str
    digest: str = ""


@dataclass(frozen=True)
class HostInputs:
    host: str
    sites: tuple[Site, ...]
    settings: CaddySettings
    caddyfile: str
    image: AnubisImage = AnubisImage()
    caddy: CaddyFacts | None = None  # None: not probed (host down)
    anubis: AnubisFacts | None = None
    pin: Pin | None = None  # the Anubis image's, from state


@dataclass
class HostPlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    writes: list[StateWrite] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def anubis_envs(sites: tuple[Site, ...], settings: CaddySettings) -> dict[str, dict[str, str]]:
    return {s.app: render_anubis_env(s, settings) for s in sites if s.anubis is not None}


def plan_host(inp: HostInputs) -> HostPlan:
    hp = HostPlan()
    if inp.caddy is None:
        hp.warnings.append(f"{inp.host}: not planned (not reachable or its probe failed)")
        return hp
    if inp.caddy.version is None:  # claimed in config/ingress.py: compute installs it before this layer
        hp.notes.append(f"{inp.host}: caddy not installed yet (compute's package step installs it)")
    _plan_anubis(hp, inp)
    _plan_caddyfile(hp, inp)
    return hp


def _plan_anubis(hp: HostPlan, inp: HostInputs) -> None:
    envs = anubis_envs(inp.sites, inp.settings)
    facts = inp.anubis or AnubisFacts()
    for app in sorted(set(facts.containers) - set(envs)):
        hp.changes.append(Change(LAYER, f"anubis {app}", "delete", f"{inp.host}: remove Anubis of {app} (no site needs it)",
                                 (Op("server.shell", {"commands": [an.render_remove_script(app)]}),), host=inp.host))
    if not envs:
        return
    h = inp.host
    if inp.anubis is None or not facts.docker:  # docker.io: claimed, installed by compute's package step
        hp.changes.append(Change(LAYER, f"{h} docker", "create", "start Docker for Anubis",
                                 (Op("server.shell", {"commands": ["systemctl enable --now docker"]}),), host=h))
    pin = inp.pin
    image = inp.image.image
    if pin is None and facts.image_id:  # on the host already (an earlier pull): pin what it is
        pin = Pin(facts.image_id, facts.digest)
        hp.writes.append(StateWrite(("images", image), {"image_id": pin.image_id, "digest": pin.digest}))
    if pin is None:
        hp.changes.append(Change(LAYER, "anubis image", "create",
                                 f"{h}: pull {image}" + (f" from {inp.image.mirror}" if inp.image.mirror else "")
                                 + " (pinned at this first pull)",
                                 (Op("server.shell", {"commands": [an.render_pull_script(inp.image.pull_from, image)]}),),
                                 host=h))
        for app in sorted(envs):
            hp.changes.append(Change(LAYER, f"anubis {app}", "create", f"{h}: run Anubis for {app}", host=h,
                                     deferred="needs the Anubis image pinned once pulled"))
        return
    if facts.image_id is not None and facts.image_id != pin.image_id:
        hp.warnings.append(f"{h}: {image} is {facts.image_id[:19]} on the host, pinned {pin.image_id[:19]}: "
                           "the containers run the pinned id")
    for app, env in sorted(envs.items()):
        site = next(s for s in inp.sites if s.app == app)
        assert site.anubis is not None
        want = an.spec_hash(pin.image_id, env)
        have = facts.containers.get(app)
        if have is not None and have.spec == want and have.state == "running":
            hp.unchanged.append(f"{h}: Anubis for {app} runs as configured (difficulty {site.difficulty})")
            continue
        why = ("start" if have is None else "restart (stopped)" if have.spec == want else
               "restart with the new settings")
        hp.changes.append(Change(
            LAYER, f"anubis {app}", "create" if have is None else "update",
            f"{h}: {why} Anubis for {app} ({image}, difficulty {site.difficulty}, key generated on the host)",
            (Op("server.shell", {"commands": [an.render_deploy_script(app, pin.image_id, env, site.anubis.metrics)]}),),
            host=h))


def _plan_caddyfile(hp: HostPlan, inp: HostInputs) -> None:
    assert inp.caddy is not None
    names = ", ".join(s.hostname for s in inp.sites) or "no sites"
    if inp.caddy.caddyfile_sha == sha256(inp.caddyfile) and inp.caddy.active:
        hp.unchanged.append(f"{inp.host}: Caddyfile as planned ({names}), caddy running")
        return
    if inp.caddy.caddyfile_sha == sha256(inp.caddyfile):  # the right file, Caddy stopped
        hp.changes.append(Change(LAYER, f"{inp.host} caddy", "update", f"{inp.host}: start Caddy (Caddyfile as planned)",
                                 (Op("server.shell", {"commands": ["systemctl start caddy"]}),), host=inp.host))
        return
    hp.changes.append(Change(LAYER, f"{inp.host} Caddyfile", "update",
                             f"{inp.host}: install the Caddyfile (sites: {names}); validated on the host, one reload",
                             (Op("server.shell", {"commands": [render_apply_script(inp.caddyfile)]}),),
                             host=inp.host, detail=tuple(inp.caddyfile.splitlines())[:80]))


def pin_of(section: Mapping[str, object], image: str) -> Pin | None:
    found = section.get("images", {})
    rec = found.get(image) if isinstance(found, dict) else None
    if isinstance(rec, dict) and isinstance(rec.get("image_id"), str):
        return Pin(rec["image_id"], str(rec.get("digest", "")))
    return None
