"""Layer 6 mechanics on real Debian 13 hosts with Docker: health gate, rollback, pins, bundles.

The app is a hand-written 2-service compose project on the lab's python image (`docker
import` of images/python.tar, so it is pinned by image id only: no registry digest): `api`
(http.server on a data volume, a secret in its environment) and `web` (published on
127.0.0.1:8080, depends on a healthy api). A "broken update" gives `web` a command that never
answers its healthcheck. Scripts run the way the layer will run them: one `sh -s` over
homelab's own SSH connection. Run with LAB_HOSTS=trixie:2 (h1 deploys; h2 gets images only
from a bundle: it never imports or pulls anything).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.hosts import HostTarget
from homelab.layers.apps import bundle, monitor, pins
from homelab.layers.apps.docker import DockerSettings, PortBinding, render_install_script
from homelab.layers.apps.release import (
    App, Healthcheck, Outcome, Secret, Service, Volume, parse_outcome, release_id, render_compose,
    render_deploy_script, render_remove_script, render_rollback_script,
)
from homelab.ssh import Connection

pytestmark = pytest.mark.lab

PY_GET = "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)"
IMAGE = "lab/python:3.13"


def make_app(pin: pins.ImagePin, greeting: str = "hello", broken: bool = False) -> App:
    api = Service("api", pin, ("python3", "-m", "http.server", "9000", "-d", "/data"),
                  environment={"DB_PASSWORD": "${secret.db_password}", "API_TOKEN": "${secret.api_token}"},
                  volumes=(Volume("api", "/data"),), init=True,
                  healthcheck=Healthcheck(("python3", "-c", PY_GET, "http://127.0.0.1:9000/")))
    command = ("python3", "-c", "import time; time.sleep(3600)") if broken else ("python3", "-m", "http.server", "8000")
    web = Service("web", pin, command, environment={"GREETING": greeting}, ports=(PortBinding(8080, 8000),),
                  depends_on=("api",), init=True,
                  healthcheck=Healthcheck(("python3", "-c", PY_GET, "http://127.0.0.1:8000/"), retries=3))
    return App("demo", (api, web), secrets=(Secret("db_password"), Secret("api_token", "hex", 40)), wait_timeout=30)


class Host:
    """One lab host over homelab's SSH; every script's output is kept (searched for secrets)."""

    def __init__(self, lab: Any, name: str) -> None:
        target = HostTarget(name, str(lab.address(name)), key_path=str(lab.key))
        self.conn, _ = Connection.open(target, pinned=lab.host_key(name), accept_new=None, use_agent=False)
        self.outputs: list[str] = []

    def sh(self, script: str, timeout: float = 300) -> tuple[int, str, str]:
        r = self.conn.run_script(script, timeout=timeout)
        self.outputs += [r.stdout, r.stderr]
        return r.rc, r.stdout, r.stderr

    def ok(self, script: str) -> str:
        rc, out, err = self.sh(script)
        assert rc == 0, f"exit {rc}: {out}\n{err}"
        return out

    def deploy(self, app: App) -> Outcome:
        return parse_outcome(*self.sh(render_deploy_script(app)))

    def started(self) -> dict[str, str]:
        out = self.ok("docker inspect -f '{{.Name}} {{.State.StartedAt}}' demo-api-1 demo-web-1")
        return dict(line.lstrip("/").split() for line in out.splitlines())

    def http(self) -> str:
        return self.ok("curl -s -o /dev/null -w '%{http_code}' --max-time 5 http://127.0.0.1:8080/ || true")


@pytest.fixture(scope="module")
def hosts(lab: Any) -> Iterator[dict[str, Host]]:
    if len(lab.host_names()) < 2 or any(lab.suite(n) != "trixie" for n in ("h1", "h2")):
        pytest.skip("needs two Debian 13 lab hosts: LAB_HOSTS=trixie:2")
    lab.reset("h1", "h2")  # as every module: an earlier one may have hardened them (no root login)
    hs = {n: Host(lab, n) for n in ("h1", "h2")}
    for h in hs.values():
        h.ok(render_install_script(DockerSettings()))
    url = lab.inventory()["hosts"][0]["images"]["python"]
    hs["h1"].ok(f"docker image inspect {IMAGE} >/dev/null 2>&1 || curl -fsS {url} | docker import - {IMAGE} >/dev/null")
    yield hs
    for h in hs.values():
        h.conn.close()


@pytest.fixture(scope="module")
def pin(hosts: dict[str, Host], tmp_path_factory: pytest.TempPathFactory) -> pins.ImagePin:
    """Recorded in a lock file the first time, then read back from it (as every later apply does)."""
    lock_file = pins.lock_path(tmp_path_factory.mktemp("cfg") / "config.yaml")
    line = hosts["h1"].ok(f"docker image inspect --format '{{{{.Id}}}} {{{{json .RepoDigests}}}}' {IMAGE}")
    seen = pins.parse_inspect(IMAGE, line)
    lock, moves = pins.record(pins.load_lock(lock_file), {IMAGE: seen})
    assert [m.ref for m in moves] == [IMAGE] and seen.digest == ""  # docker import: no registry digest
    pins.save_lock(lock_file, lock)
    again, moves = pins.record(pins.load_lock(lock_file), {IMAGE: seen})
    assert moves == [] and again[IMAGE] == seen
    return again[IMAGE]


def test_docker_daemon_config_is_ours_and_second_run_changes_nothing(hosts: dict[str, Host]) -> None:
    h = hosts["h1"]
    assert h.ok("docker info --format '{{.LoggingDriver}} {{.LiveRestoreEnabled}}'").strip() == "local true"
    out = h.ok(render_install_script(DockerSettings()))
    assert "changed" not in out and out.strip().startswith("2.")


def test_deploy_two_services_healthy(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    app = make_app(pin)
    got = h.deploy(app)
    assert got.status == "deployed" and got.release == release_id(render_compose(app)), got
    states, code = monitor.parse_status(h.ok(monitor.render_status_probe("demo", (8080, "/"))))
    mons = monitor.app_monitors("demo", {"api": pin.image_id, "web": pin.image_id}, states, code)
    assert [(m.subject, m.name, m.health.value) for m in mons if m.health.value != "OK"] == []
    assert {m.subject for m in mons} == {"demo.api", "demo.web", "demo"}
    # published on loopback only: the other host cannot reach the container port
    assert h.ok("docker ps --format '{{.Ports}}' --filter name=demo-web-1").strip() == "127.0.0.1:8080->8000/tcp"
    rc, _, _ = hosts["h2"].sh("curl -s -o /dev/null --max-time 3 http://h1:8080/")
    assert rc != 0
    mode = h.ok("stat -c '%a %U' /srv/homelab/demo/secrets.env; readlink /srv/homelab/demo/current").split("\n")
    assert mode[0] == "600 root" and mode[1] == f"releases/{got.release}"


def test_identical_redeploy_restarts_nothing(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    before = h.started()
    got = h.deploy(make_app(pin))
    assert got.status == "unchanged", got
    assert h.started() == before


def test_one_env_change_restarts_only_that_service(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    before = h.started()
    got = h.deploy(make_app(pin, greeting="bonjour"))
    assert got.status == "deployed", got
    after = h.started()
    assert after["demo-api-1"] == before["demo-api-1"] and after["demo-web-1"] != before["demo-web-1"]
    assert "GREETING=bonjour" in h.ok("docker inspect -f '{{join .Config.Env \"\\n\"}}' demo-web-1")


def test_update_that_never_gets_healthy_rolls_back_by_itself(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    good = release_id(render_compose(make_app(pin, greeting="bonjour")))
    got = h.deploy(make_app(pin, greeting="bonjour", broken=True))
    assert got.status == "rolled-back" and got.running == good, got
    assert "demo-web-1 is unhealthy" in got.detail and "health: exit 1" in got.detail
    assert h.http() == "200"
    assert h.ok("readlink /srv/homelab/demo/current").strip() == f"releases/{good}"
    # the previous release answers again: web runs http.server, not the broken command
    assert "http.server" in h.ok("docker inspect -f '{{json .Config.Cmd}}' demo-web-1")


def test_rollback_by_hand_and_releases_kept(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    first = release_id(render_compose(make_app(pin)))
    got = parse_outcome(*h.sh(render_rollback_script(make_app(pin))))
    assert got.status == "rolled-back" and got.running == first, got
    assert h.http() == "200"
    assert "GREETING=hello" in h.ok("docker inspect -f '{{join .Config.Env \"\\n\"}}' demo-web-1")
    order = h.ok("cat /srv/homelab/demo/releases/order").split()
    assert first in order and len(order) <= 3
    # three more releases: only the last three are kept on disk
    for g in ("a", "b", "c"):
        assert h.deploy(make_app(pin, greeting=g)).status == "deployed"
    kept = h.ok("cd /srv/homelab/demo/releases && ls -d */ | tr -d /").split()
    assert sorted(kept) == sorted(release_id(render_compose(make_app(pin, greeting=g))) for g in ("a", "b", "c"))


def test_no_secret_in_any_output_or_release_file(hosts: dict[str, Host]) -> None:
    h = hosts["h1"]
    values = [line.split("=", 1)[1] for line in h.conn.run_script("cat /srv/homelab/demo/secrets.env").stdout.split()]
    assert len(values) == 2 and len(values[0]) == 32 and len(values[1]) == 40
    files = h.ok("cat /srv/homelab/demo/releases/*/compose.yaml /srv/homelab/demo/releases/*/release.json "
                 "/srv/homelab/demo/deploy.log")
    for v in values:
        leaks = [out[max(0, out.find(v) - 300):out.find(v) + 50] for out in h.outputs if v in out]
        assert leaks == [] and v not in files
    # the container got them through compose's interpolation
    env = h.ok("docker inspect -f '{{join .Config.Env \"\\n\"}}' demo-api-1")
    assert f"DB_PASSWORD={values[0]}" in env.split("\n")


def test_remove_keeps_data_and_purge_deletes_it(hosts: dict[str, Host], pin: pins.ImagePin) -> None:
    h = hosts["h1"]
    h.ok("echo kept > /srv/homelab/demo/data/api/note.txt")
    app = make_app(pin)
    assert h.ok(render_remove_script(app)).startswith("removed")
    assert h.ok("docker ps -a -q --filter label=com.docker.compose.project=demo").strip() == ""
    assert h.ok("cat /srv/homelab/demo/data/api/note.txt").strip() == "kept"
    # deployed again, the same data and secrets are there
    assert h.deploy(app).status == "deployed"
    assert h.ok("docker exec demo-api-1 python3 -c 'print(open(\"/data/note.txt\").read())'").strip() == "kept"
    assert h.ok(render_remove_script(app, purge=True)).strip() == "purged"
    assert h.ok("[ -e /srv/homelab/demo ] && echo there || echo gone").strip() == "gone"


def test_bundle_feeds_a_host_that_cannot_pull(hosts: dict[str, Host], pin: pins.ImagePin, tmp_path: Path) -> None:
    h1, h2 = hosts["h1"], hosts["h2"]
    app = make_app(pin)
    # h2 has neither the image nor a registry: the deploy says so and changes nothing
    got = h2.deploy(app)
    assert got.status == "image-missing" and IMAGE in got.detail, got
    out = tmp_path / "images.tar"
    ids = bundle.create_bundle([pin], out, source=h1.conn)
    assert ids == {pin.image_id}
    assert bundle.ship_bundle(h2.conn, out, [pin]) is True
    assert bundle.ship_bundle(h2.conn, out, [pin]) is False  # it has them now: nothing shipped
    assert h2.ok("ls /var/tmp | grep -c homelab-bundle || true").strip() == "0"
    # pinned with a registry digest as well: an image present by id is used, never pulled (a
    # loaded image has no RepoDigests, and h2 has no registry)
    got = h2.deploy(make_app(replace(pin, digest="sha256:" + "1" * 64)))
    assert got.status == "deployed", got
    assert h2.http() == "200"
    h2.ok(render_remove_script(app, purge=True))
    # a pin whose image the bundle does not hold is refused before anything is sent
    other = replace(pin, ref="lab/other:1", image_id="sha256:" + "0" * 64)
    with pytest.raises(Exception, match="does not hold"):
        bundle.ship_bundle(h2.conn, out, [other])
    assert json.loads(pins.render_lock({IMAGE: pin}))["images"][IMAGE]["image_id"] == pin.image_id
