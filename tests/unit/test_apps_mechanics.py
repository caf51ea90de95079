"""Layer 6 mechanics, pure parts: daemon.json, compose files and host scripts (golden), pins,
bundle manifests, deploy outcomes and monitors.

Regenerate golden files after an intended change with HOMELAB_UPDATE_GOLDEN=1 and review the
diff like code. Rendered shell scripts are also checked with `sh -n`.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from golden import GOLDEN_ROOT, assert_golden
import yaml

from homelab.errors import HomelabError
from homelab.layers.apps import bundle, docker, monitor, pins, release
from homelab.layers.apps.docker import DockerSettings, PortBinding
from homelab.layers.apps.release import App, Healthcheck, Secret, Service, Volume
from homelab.model import Health

GOLDEN = GOLDEN_ROOT / "apps"
ID = "sha256:" + "a" * 64
ID2 = "sha256:" + "b" * 64
DIGEST = "sha256:" + "c" * 64
PG = pins.ImagePin("postgres:17.6", ID, DIGEST)
WEB = pins.ImagePin("ghcr.io/miniflux/miniflux:2.2.6", ID2, "sha256:" + "d" * 64)


def golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


def sh_syntax_ok(script: str) -> None:
    proc = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def sample_app(**kw: object) -> App:
    db = Service("db", PG, environment={"POSTGRES_PASSWORD": "${secret.db_password}", "POSTGRES_USER": "miniflux"},
                 volumes=(Volume("pgdata", "/var/lib/postgresql/data", owner="999:999"),),
                 healthcheck=Healthcheck(("pg_isready", "-U", "miniflux"), interval_s=5, retries=10, start_period_s=10))
    web = Service("web", WEB, environment={
        "DATABASE_URL": "postgres://miniflux:${secret.db_password}@db/miniflux?sslmode=disable",
        "PRICE": "5$ a month", "ADMIN_PASSWORD": "${secret.admin}"},
        ports=(PortBinding(8080, 8080), PortBinding(8081, 8080, "10.100.0.2")), depends_on=("db",),
        healthcheck=Healthcheck(("/usr/bin/miniflux", "-healthcheck", "auto")), user="1000:1000")
    args = dict(name="miniflux", services=(db, web), secrets=(Secret("db_password"), Secret("admin", "base64", 18)),
                mesh_addresses=("10.100.0.2",))
    args.update(kw)
    return App(**args)  # type: ignore[arg-type]


# ------------------------------------------------------------------ docker.py ----

@pytest.mark.parametrize("name,settings", [
    ("daemon-default.json", DockerSettings()),
    ("daemon-mirror.json", DockerSettings(log_driver="json-file", log_max_size="50m", log_max_file=5,
                                          registry_mirrors=("http://labrepo:5000",), insecure_registries=("labrepo:5000",))),
])
def test_daemon_json_golden(name: str, settings: DockerSettings) -> None:
    text = docker.render_daemon_json(settings)
    golden(name, text)
    assert json.loads(text)["live-restore"] is True


def test_daemon_json_refuses_unknown_driver_and_size() -> None:
    with pytest.raises(HomelabError, match="log driver"):
        docker.render_daemon_json(DockerSettings(log_driver="syslog"))
    with pytest.raises(HomelabError, match="not a size"):
        docker.render_daemon_json(DockerSettings(log_max_size="lots"))


def test_install_script_golden_and_valid_sh() -> None:
    text = docker.render_install_script(DockerSettings())
    golden("install-docker.sh", text)
    sh_syntax_ok(text)


def test_compose_support_needs_debian_13() -> None:
    assert docker.compose_support("debian", "13") is None
    reason = docker.compose_support("debian", "12")
    assert reason and "Compose v1" in reason and "Debian 13" in reason
    assert docker.compose_support("ubuntu", "24.04")


def test_parse_compose_version() -> None:
    assert docker.parse_compose_version("2.26.1-4") == (2, 26, 1)
    assert docker.parse_compose_version("Docker Compose version v2.29.7") == (2, 29, 7)
    assert docker.parse_compose_version("docker-compose version 1.29.2, build unknown") is None


def test_ports_bind_loopback_or_mesh_never_everywhere() -> None:
    assert PortBinding(8080, 80).render() == "127.0.0.1:8080:80/tcp"
    assert PortBinding(53, 53, "10.100.0.2", "udp").render(("10.100.0.2",)) == "10.100.0.2:53:53/udp"
    assert PortBinding(80, 80, "::1").render() == "[::1]:80:80/tcp"
    for bad in ("0.0.0.0", "::"):
        with pytest.raises(HomelabError, match="every interface"):
            PortBinding(80, 80, bad).render()
    with pytest.raises(HomelabError, match="neither loopback nor a mesh"):
        PortBinding(80, 80, "192.168.1.5").render(("10.100.0.2",))
    assert docker.publish_problems({"a": ["0.0.0.0:80->80/tcp", "127.0.0.1:81->81/tcp"], "b": [":::80->80/tcp"]}) == [
        "a: 0.0.0.0:80->80/tcp is published on every address", "b: :::80->80/tcp is published on every address"]


# ----------------------------------------------------------------- release.py ----

def test_compose_file_golden() -> None:
    text = release.render_compose(sample_app())
    golden("compose-miniflux.yaml", text)
    doc = yaml.safe_load(text)
    web = doc["services"]["web"]
    assert web["image"] == ID2 and web["pull_policy"] == "never"
    assert web["environment"]["DATABASE_URL"] == "postgres://miniflux:${HOMELAB_SECRET_DB_PASSWORD}@db/miniflux?sslmode=disable"
    assert web["environment"]["PRICE"] == "5$$ a month"  # a literal $ survives compose's interpolation
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert web["ports"] == ["127.0.0.1:8080:8080/tcp", "10.100.0.2:8081:8080/tcp"]


def test_release_id_is_the_content() -> None:
    a = release.release_id(release.render_compose(sample_app()))
    assert a == release.release_id(release.render_compose(sample_app()))
    assert a != release.release_id(release.render_compose(sample_app(wait_timeout=5, data_root="/data")))
    assert len(a) == 12


def test_compose_refuses_bad_references_and_names() -> None:
    with pytest.raises(HomelabError, match=r"names no secret"):
        release.compose_value("${secret.nope}", {})
    with pytest.raises(HomelabError, match="process list"):
        release.render_compose(App("a", (Service("s", PG, command=("--password", "${secret.x}")),),
                                   secrets=(Secret("x"),)))
    with pytest.raises(HomelabError, match="not a service"):
        release.render_compose(App("a", (Service("s", PG, depends_on=("db",)),)))
    for bad in ("Bad", "a b", "../etc", ""):
        with pytest.raises(HomelabError, match="not allowed"):
            release.render_compose(App(bad, (Service("s", PG),)))


def test_deploy_script_golden_and_valid_sh() -> None:
    text = release.render_deploy_script(sample_app())
    golden("deploy-miniflux.sh", text)
    sh_syntax_ok(text)
    assert "up -d --wait --wait-timeout 120 --remove-orphans" in text
    # secrets: generated with builtins from /dev/urandom, never echoed
    assert "printf 'HOMELAB_SECRET_DB_PASSWORD=%s\\n' \"$(tr -dc A-Za-z0-9 </dev/urandom | head -c 32)\"" in text
    assert "echo \"$HOMELAB_SECRET" not in text and "umask 077" in text
    # a pulled image must be the pinned one
    assert f"docker pull -q postgres@{DIGEST}" in text and f"= {ID} ]" in text


def test_local_only_image_is_not_pulled() -> None:
    app = App("a", (Service("s", pins.ImagePin("lab/python:3.13", ID)),))
    text = release.render_deploy_script(app)
    assert "docker pull" not in text and f"exit {release.IMAGE_MISSING}" in text


def test_rollback_and_remove_scripts_golden_and_valid_sh() -> None:
    app = sample_app()
    for name, text in (("rollback-miniflux.sh", release.render_rollback_script(app)),
                       ("remove-miniflux.sh", release.render_remove_script(app)),
                       ("remove-purge-miniflux.sh", release.render_remove_script(app, purge=True))):
        golden(name, text)
        sh_syntax_ok(text)
    assert " down -v" not in release.render_remove_script(app, purge=True)
    assert "rm -rf" not in release.render_remove_script(app)


@pytest.mark.parametrize("rc,out,err,status,running", [
    (0, "deployed abc\n", "", "deployed", "abc"),
    (0, "unchanged abc\n", "", "unchanged", "abc"),
    (3, "rolled-back new old\n", "container x is unhealthy", "rolled-back", "old"),
    (0, "rolled-back cur prev\n", "", "rolled-back", "prev"),
    (4, "rollback-failed new old\n", "boom", "rollback-failed", ""),
    (1, "failed new\n", "x", "failed", ""),
    (5, "", "image a (sha256:..) is not on this host", "image-missing", ""),
    (6, "", "no release before none", "no-previous", ""),
    (255, "", "", "failed", ""),
])
def test_parse_outcome(rc: int, out: str, err: str, status: str, running: str) -> None:
    got = release.parse_outcome(rc, out, err)
    assert (got.status, got.running) == (status, running)
    assert got.ok == (status in ("deployed", "unchanged"))
    if status == "rolled-back" and rc == 3:
        assert "unhealthy" in got.detail


# -------------------------------------------------------------------- pins.py ----

def test_split_and_normalize_refs() -> None:
    assert pins.split_ref("postgres:17.6") == ("postgres", "17.6")
    assert pins.split_ref("labrepo:5000/a/b:1") == ("labrepo:5000/a/b", "1")
    with pytest.raises(HomelabError, match="repository:tag"):
        pins.split_ref("postgres")
    assert pins.normalize_repository("postgres") == "docker.io/library/postgres"
    assert pins.normalize_repository("syncthing/syncthing") == "docker.io/syncthing/syncthing"
    assert pins.normalize_repository("ghcr.io/a/b") == "ghcr.io/a/b"


def test_mirror_mapping_keeps_paths() -> None:
    assert pins.mirrored("syncthing/syncthing", "labrepo:5000") == "labrepo:5000/syncthing/syncthing"
    assert pins.mirrored("docker.io/library/postgres", "labrepo:5000") == "labrepo:5000/library/postgres"
    assert pins.mirrored("ghcr.io/miniflux/miniflux", "m:5000") == "m:5000/ghcr.io/miniflux/miniflux"
    assert pins.pull_ref(PG) == f"postgres@{DIGEST}"
    assert pins.pull_ref(PG, "m:5000") == f"m:5000/library/postgres@{DIGEST}"


def test_parse_inspect_takes_the_pulled_repositorys_digest() -> None:
    line = f'{ID} ["other/repo@sha256:{"e" * 64}","postgres@{DIGEST}"]'
    assert pins.parse_inspect("postgres:17.6", line) == PG
    assert pins.parse_inspect("lab/python:3.13", f"{ID} []") == pins.ImagePin("lab/python:3.13", ID, "")
    mirror = f'{ID} ["m:5000/library/postgres@{DIGEST}"]'
    assert pins.parse_inspect("postgres:17.6", mirror, "m:5000/library/postgres:17.6").digest == DIGEST
    with pytest.raises(HomelabError, match="unexpected"):
        pins.parse_inspect("postgres:17.6", "Error: No such image")


def test_pull_probe_round_trip() -> None:
    script = pins.render_pull_probe(["postgres:17.6"], "m:5000")
    sh_syntax_ok(script)
    assert "docker pull -q m:5000/library/postgres:17.6" in script and "docker tag m:5000/library/postgres:17.6 postgres:17.6" in script
    out = (f'pin postgres:17.6 m:5000/library/postgres:17.6 {ID} ["m:5000/library/postgres@{DIGEST}"]\n'
           "pull-failed ghcr.io/a/b:1\n")
    got, failed = pins.parse_pull_probe(out)
    assert got == {"postgres:17.6": PG} and failed == ["ghcr.io/a/b:1"]


def test_record_never_moves_a_pin_and_update_does_deliberately() -> None:
    moved = pins.ImagePin("postgres:17.6", ID2, "sha256:" + "f" * 64)
    lock, moves = pins.record({}, {"postgres:17.6": PG})
    assert lock == {"postgres:17.6": PG} and [m.describe() for m in moves] == [f"postgres:17.6: pinned {DIGEST}"]
    lock2, moves = pins.record(lock, {"postgres:17.6": moved})
    assert lock2 == lock and moves == []  # the tag moved upstream; the pin did not
    lock3, move = pins.update(lock, "postgres:17.6", moved)
    assert lock3["postgres:17.6"] == moved and move is not None
    assert move.describe() == f"postgres:17.6: {DIGEST} -> sha256:{'f' * 64}"
    assert pins.update(lock3, "postgres:17.6", moved) == (lock3, None)


def test_lock_file_round_trip_atomic(tmp_path: Path) -> None:
    cfg = tmp_path / "home.yaml"
    path = pins.lock_path(cfg)
    assert path.name == "home.images.lock"
    assert pins.load_lock(path) == {}
    lock = {"postgres:17.6": PG, "lab/python:3.13": pins.ImagePin("lab/python:3.13", ID2)}
    pins.save_lock(path, lock)
    assert pins.load_lock(path) == lock
    golden("images.lock", path.read_text())
    pins.save_lock(path, {"postgres:17.6": PG})
    assert path.with_name(path.name + ".prev").exists()  # the previous version kept, like state
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_damaged_lock_is_refused_with_a_hint() -> None:
    with pytest.raises(HomelabError, match="not JSON"):
        pins.parse_lock("{")
    with pytest.raises(HomelabError, match="version"):
        pins.parse_lock('{"version": 9}')
    with pytest.raises(HomelabError, match="damaged") as exc:
        pins.parse_lock('{"version": 1, "images": {"postgres:17.6": {"image_id": "sha256:short"}}}')
    assert "apps update" in exc.value.hint
    with pytest.raises(HomelabError, match="pinned by id only"):
        _ = pins.ImagePin("lab/python:3.13", ID).pull_ref


# ------------------------------------------------------------------ bundle.py ----

def test_bundle_ids_from_both_manifest_layouts() -> None:
    oci = json.dumps([{"Config": f"blobs/sha256/{'a' * 64}", "RepoTags": ["postgres:17.6"]}])
    old = json.dumps([{"Config": f"{'b' * 64}.json", "RepoTags": None}])
    assert bundle.bundle_ids(oci) == {ID} and bundle.bundle_ids(old) == {ID2}


def test_read_bundle_ids_from_an_archive(tmp_path: Path) -> None:
    import io
    import tarfile
    path = tmp_path / "b.tar"
    data = json.dumps([{"Config": f"blobs/sha256/{'a' * 64}"}]).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert bundle.read_bundle_ids(path) == {ID}
    (tmp_path / "junk.tar").write_text("nope")
    with pytest.raises(HomelabError, match="not a `docker save` archive"):
        bundle.read_bundle_ids(tmp_path / "junk.tar")


def test_bundle_scripts() -> None:
    save = bundle.render_save_script([WEB, PG], "/var/tmp/x.tar")
    load = bundle.render_load_script("/var/tmp/x.tar", "ab" * 32, [PG])
    for s in (save, load):
        sh_syntax_ok(s)
    assert "docker save -o /var/tmp/x.tar ghcr.io/miniflux/miniflux:2.2.6 postgres:17.6\n" in save
    assert save.strip().endswith("chown \"${SUDO_USER:-root}\" /var/tmp/x.tar")  # fetched as the login user
    assert f"docker tag {ID} postgres:17.6" in save
    assert "trap 'rm -f /var/tmp/x.tar' EXIT" in load and "sha256sum" in load
    assert bundle.parse_missing(f"missing {ID}\nother\n") == {ID}


# ----------------------------------------------------------------- monitor.py ----

def _row(project: str, service: str, state: str, health: str, image: str, restarts: int, started: str,
         oneoff: str = "False") -> dict[str, object]:
    """A container row as probe.container_format prints it."""
    return {"Labels": {"com.docker.compose.project": project, "com.docker.compose.service": service,
                       "com.docker.compose.oneoff": oneoff},
            "State": state, "Health": health, "Image": image, "RestartCount": restarts, "StartedAt": started}


INSPECT = "\n".join(json.dumps(r) for r in (
    _row("miniflux", "db", "running", "healthy", ID, 0, "2026-12-01T10:00:00Z"),
    _row("miniflux", "web", "running", "unhealthy", ID, 4, "2026-12-01T10:05:00Z"),
))


def probe_output(http: str = "200", inspect: str = INSPECT) -> str:
    return f"--homelab-section inspect\n{inspect}\n--homelab-section http\n{http}\n"


def test_status_probe_reads_no_environment() -> None:
    script = monitor.render_status_probe("miniflux", (8080, "/healthcheck"))
    sh_syntax_ok(script)
    assert "docker inspect -f " in script and ".Config.Env" not in script
    assert "label=com.docker.compose.project=miniflux" in script and "compose.oneoff=False" in script
    assert "http://127.0.0.1:8080/healthcheck" in script
    assert "docker compose" not in script  # the plugin's start costs ~90 ms a run
    from homelab.layers.apps.probes import containers_probe

    every = containers_probe()  # every container of the host: asked once with the ingress layer's
    assert every.batch == ("containers", monitor.CONTAINER_LABELS) and ".Config.Env" not in every.command


def test_parse_status_and_containers_of_all_projects() -> None:
    states, code = monitor.parse_status(probe_output())
    assert code == 200
    assert states["web"] == monitor.ServiceState("web", "running", "unhealthy", ID, 4, "2026-12-01T10:05:00Z")
    assert states["db"].health == "healthy"
    assert monitor.parse_status(probe_output(http="000"))[1] is None
    from homelab.layers.apps.probes import parse_host_containers
    from homelab.probe import ProbeResult

    other = json.dumps(_row("cal", "radicale", "exited", "", ID2, 1, ""))
    run = json.dumps(_row("cal", "radicale", "exited", "", ID2, 0, "", oneoff="True"))  # a `compose run`
    anubis = json.dumps({"Labels": {"homelab.anubis": "cal"}, "State": "running"})  # not a compose container
    # a container removed between `ps` and `inspect`: docker's error line is skipped
    mixed = "\n".join(["docker answers", INSPECT, "Error response from daemon: No such container: 0123abcd",
                        other, run, anubis])
    projects = parse_host_containers(ProbeResult(0, mixed))
    assert set(projects) == {"miniflux", "cal"} and projects["cal"]["radicale"].state == "exited"
    assert projects["cal"]["radicale"].restarts == 1  # the one-off container is not the service
    assert projects["miniflux"] == states
    assert parse_host_containers(ProbeResult(124, mixed)) == {}


def test_app_monitors() -> None:
    states, code = monitor.parse_status(probe_output())
    mons = monitor.app_monitors("miniflux", {"db": ID, "web": ID2, "worker": ID}, states, code,
                                restarts_before={"db": 0, "web": 1})
    got = {(m.subject, m.name): (m.health, m.reason) for m in mons}
    assert got[("miniflux.db", "running")] == (Health.OK, "running, healthy")
    assert got[("miniflux.web", "running")] == (Health.FAIL, "running, unhealthy")
    assert got[("miniflux.web", "restarts")] == (Health.WARN, "restarted 3 time(s) since the last check")
    assert got[("miniflux.db", "image")][0] == Health.OK
    assert got[("miniflux.web", "image")] == (Health.FAIL, f"runs {ID[:19]}, pinned {ID2[:19]}")
    assert got[("miniflux.worker", "running")][0] == Health.FAIL
    assert got[("miniflux", "http")] == (Health.OK, "HTTP 200")
    bad = monitor.app_monitors("m", {}, {}, 502)
    assert [(m.health, m.reason) for m in bad] == [(Health.FAIL, "HTTP 502, expected 200")]


# ----------------------------------------------------------------- probes.py ----

def test_images_probe_is_one_inspect_matched_back_by_tag() -> None:
    from homelab.layers.apps.probes import images_probe, parse_image_ids, parse_images
    from homelab.probe import ProbeResult

    probe = images_probe(["postgres:17.6", "ghcr.io/miniflux/miniflux:2.2.6", "valkey/valkey:8.1"], [ID])
    assert probe.command.count("docker ") == 1
    sh_syntax_ok(probe.command)
    # what docker prints: Hub images in their short form, a mirror's tag beside it; the missing
    # valkey gives no line (its error goes to /dev/null)
    out = (f'{ID} ["labrepo:5000/library/postgres:17.6","postgres:17.6"] '
           f'["labrepo:5000/library/postgres@sha256:{"a" * 64}"]\n'
           f'{ID2} ["ghcr.io/miniflux/miniflux:2.2.6"] ["ghcr.io/miniflux/miniflux@sha256:{"b" * 64}"]\n'
           f'{ID} ["labrepo:5000/library/postgres:17.6","postgres:17.6"] []\n')
    refs = ["postgres:17.6", "ghcr.io/miniflux/miniflux:2.2.6", "valkey/valkey:8.1"]
    have = parse_images(ProbeResult(0, out), refs)
    assert have["valkey/valkey:8.1"] is None
    pg, mf = have["postgres:17.6"], have["ghcr.io/miniflux/miniflux:2.2.6"]
    assert pg is not None and pg.image_id == ID and pg.digest == ""  # no digest from docker.io itself
    assert mf is not None and mf.image_id == ID2 and mf.digest == "sha256:" + "b" * 64
    assert parse_image_ids(ProbeResult(0, out)) == {ID, ID2}
    assert parse_images(ProbeResult(124, out), refs) == {r: None for r in refs}  # timed out: nothing known


def test_docker_probe_takes_composes_version_from_its_package() -> None:
    """Docker's facts are batched questions: its packages, unit and daemon.json's hash are asked
    with every other layer's (one dpkg-query, one systemctl show, one sha256sum per host)."""
    from homelab.layers.apps.docker import DAEMON_JSON
    from homelab.layers.apps.probes import docker_probes, parse_docker
    from homelab.probe import ProbeResult

    probes = docker_probes()
    assert {p.batch[0] for p in probes.values() if p.batch} == {"packages", "units", "sha256"}
    assert not any("docker compose" in p.command for p in probes.values())
    out = {"apps.docker.packages": ProbeResult(0, "docker.io ii  26.1.5+dfsg1-9+b9\ndocker-compose ii  2.26.1-4\n"
                                                  "caddy ii  2.6.2-9\n"),
           "apps.docker.unit": ProbeResult(0, "Id=docker.service\nLoadState=loaded\nActiveState=active\n"),
           "apps.docker.daemon": ProbeResult(0, f"{'c' * 64}  {DAEMON_JSON}\n")}
    facts = parse_docker(out)
    assert facts is not None and facts.compose_version == "2.26.1-4" and facts.active
    assert facts.installed == {"docker.io", "docker-compose"} and facts.daemon_json_sha == "c" * 64
    assert parse_docker({**out, "apps.docker.unit": ProbeResult(124, "")}) is None