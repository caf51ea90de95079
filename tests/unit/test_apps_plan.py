"""The apps layer's diff per host (pure): Docker, first pull then pin, deploy, update, removal."""
from __future__ import annotations

from pathlib import Path

from homelab.layers.apps.pins import ImagePin
from homelab.layers.apps.plan import HostInputs, build_release, plan_host
from homelab.layers.apps.probes import AppFacts, DockerFacts
from homelab.provision.apt_lock import APT_GET
from homelab.layers.apps.docker import PACKAGES, render_daemon_json
from homelab.layers.apps.monitor import ServiceState
from homelab.layers.apps.plan import docker_settings
from apps_fixtures import parse

import hashlib

TEXT = """\
apps:
  images: {mirror: "labrepo:5000", insecure: true}
  list:
    - {name: cal, recipe: radicale, machine: pi-1}
    - {name: feeds-db, recipe: postgres, machine: pi-1, variables: {database: feeds, user: feeds}}
"""
ID = "sha256:" + "a" * 64
DIGEST = "sha256:" + "c" * 64


def cfg(tmp_path: Path, text: str = TEXT):  # type: ignore[no-untyped-def]
    f = tmp_path / "c.yaml"
    f.write_text(text)
    return parse(text, f)


def docker_ok(c) -> DockerFacts:  # type: ignore[no-untyped-def]
    sha = hashlib.sha256(render_daemon_json(docker_settings(c)).encode()).hexdigest()
    return DockerFacts(frozenset(PACKAGES), sha, True, "2.26.1")


def inputs(c, **kw) -> HostInputs:  # type: ignore[no-untyped-def]
    base = dict(host="pi-1", apps=c.apps, os="debian 13", docker=docker_ok(c))
    base.update(kw)
    return HostInputs(**base)


def pins(c) -> dict[str, ImagePin]:  # type: ignore[no-untyped-def]
    refs = [f"{i.repository}:{i.tag}" for a in c.apps for _, i in c.recipe_of(a).images]
    return {r: ImagePin(r, "sha256:" + hashlib.sha256(r.encode()).hexdigest(), DIGEST) for r in refs}


def test_fresh_host_installs_docker_pulls_then_defers_the_deploys(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    hp = plan_host(c, inputs(c, docker=DockerFacts()))
    summaries = [ch.summary for ch in hp.changes]
    assert summaries[0].startswith("Docker: install docker.io")
    pulls = [ch for ch in hp.changes if ch.summary.startswith("pull ")]
    assert len(pulls) == 2 and "labrepo:5000/ghcr.io/kozea/radicale:3.7.8" in pulls[0].ops[0].kwargs["commands"][0]
    deferred = [ch for ch in hp.changes if ch.deferred]
    assert {ch.target for ch in deferred} == {"cal", "feeds-db"} and all(not ch.ops for ch in deferred)
    assert hp.writes[-1].path == ("hosts", "pi-1") and hp.writes[-1].value == ["cal", "feeds-db"]


def test_images_on_the_host_are_pinned_and_deployed_in_the_same_pass(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    have = pins(c)
    hp = plan_host(c, inputs(c, have=have))
    pinned = {w.path[1]: w.value for w in hp.writes if w.path[0] == "images"}
    assert set(pinned) == set(have) and all(v["digest"] == DIGEST for v in pinned.values())
    deploys = [ch for ch in hp.changes if "deploy release" in ch.summary]
    assert len(deploys) == 2 and not any(ch.deferred for ch in hp.changes)
    script = deploys[0].ops[0].kwargs["commands"][0]
    assert "up -d --wait" in script and "pull_policy: never" in script
    assert f"labrepo:5000/ghcr.io/kozea/radicale@{DIGEST}" in script  # a host without the id pulls the pin


def test_converged_apps_change_nothing_and_a_variable_restarts_only_its_app(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    p = pins(c)
    running = {}
    for app in c.apps:
        r = build_release(c, app, p)
        running[app.name] = AppFacts(r.id, r.compose, {s.name: ServiceState(s.name, "running", "healthy")
                                                       for s in c.recipe_of(app).services})
    hp = plan_host(c, inputs(c, pins=p, running=running))
    assert hp.changes == [] and any("cal runs release" in u for u in hp.unchanged)
    changed = cfg(tmp_path, TEXT.replace("user: feeds}", "user: news}"))
    hp = plan_host(changed, inputs(changed, pins=p, running=running))
    assert [ch.target for ch in hp.changes] == ["feeds-db"]
    assert "restarts db (release" in hp.changes[0].summary and any("news" in d for d in hp.changes[0].detail)


def test_an_unhealthy_release_is_started_again(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    p = pins(c)
    app = c.apps[0]
    r = build_release(c, app, p)
    running = {app.name: AppFacts(r.id, r.compose, {"radicale": ServiceState("radicale", "exited", "")})}
    hp = plan_host(c, inputs(c, apps=(app,), pins=p, running=running))
    assert [ch.summary.split(": ")[1] for ch in hp.changes] == ["start again (not all services running and healthy); "
                                                                "health-gated, rolls back by itself if it fails"]


def test_a_removed_app_is_stopped_and_its_data_kept_unless_purged(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    p = pins(c)
    running = {"old": AppFacts("abc", "", {"web": ServiceState("web", "running", "")})}
    hp = plan_host(c, inputs(c, apps=(), pins=p, running=running, removed=("old",)))
    assert [ch.summary for ch in hp.changes] == ["old: stop (left the config; data kept in /srv/homelab/old/data)"]
    assert not hp.changes[0].destructive and "rm -rf" not in " ".join(hp.changes[0].ops[0].kwargs["commands"])
    purge = plan_host(c, inputs(c, apps=(), pins=p, running=running, removed=("old",), purge=True))
    assert purge.changes[0].destructive and "rm -rf" in " ".join(purge.changes[0].ops[0].kwargs["commands"])
    stopped = plan_host(c, inputs(c, apps=(), pins=p, removed=("old",)))
    assert stopped.changes == [] and "data kept" in stopped.unchanged[0]


def test_debian_12_is_refused_for_compose_apps_with_the_reason(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    hp = plan_host(c, inputs(c, os="debian 12"))
    assert hp.changes == [] and "Compose v1" in hp.blocked[0]


def test_no_secret_value_in_any_op(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    hp = plan_host(c, inputs(c, have=pins(c)))
    for ch in hp.changes:
        for op in ch.ops:
            text = " ".join(op.kwargs["commands"])
            assert "HOMELAB_SECRET_" not in text or "/dev/urandom" in text  # generated on the host, never given


def test_a_service_kind_app_is_a_hardened_unit_gated_on_its_health(tmp_path: Path) -> None:
    from homelab.layers.apps.service import unit_sha

    c = cfg(tmp_path, "apps:\n  list:\n    - {name: cal, recipe: radicale-service, machine: pi-1}\n")
    hp = plan_host(c, inputs(c, docker=DockerFacts(), os="debian 12"))  # no Docker needed, Debian 12 is fine
    assert len(hp.changes) == 1 and "service): install radicale as homelab-cal.service" in hp.changes[0].summary
    script = hp.changes[0].ops[0].kwargs["commands"][0]
    assert f"{APT_GET} install -y -q radicale" in script and "systemctl disable --now radicale.service" in script
    assert "ProtectSystem=strict" in script and "rolled-back" in script and "/.web/" in script
    app = c.apps[0]
    seen = {"cal": {"unit": unit_sha(app, c.recipe_of(app)), "active": "active", "http": "200"}}
    assert plan_host(c, inputs(c, docker=DockerFacts(), services=seen)).changes == []
    down = {"cal": {**seen["cal"], "http": "000"}}
    assert "start again" in plan_host(c, inputs(c, docker=DockerFacts(), services=down)).changes[0].summary
