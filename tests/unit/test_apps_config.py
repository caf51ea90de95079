"""The apps section: entries, variables, wiring, ports; every error located with a hint."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.claims import BackupPath, HttpService, NeedsPackage, OpenPort
from homelab.config.apps import PORT_BASE, PORT_SPAN, apps_claims, derived_port
from homelab.errors import ConfigError
from tests.unit.apps_fixtures import Hosts, parse

STACK = """\
apps:
  list:
    - name: feeds-db
      recipe: postgres
      machine: pi-1
    - name: feeds
      recipe: miniflux
      machine: pi-1
      variables: {base_url: "https://feeds.example.org/"}
      requires: {db: feeds-db}
    - name: syncthing
      machine: pi-2
    - name: cal
      recipe: radicale-service
      machine: pi-2
      port: 5232
"""


def errors(text: str, tmp_path: Path, hosts: tuple[str, ...] = ("pi-1", "pi-2")) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(text, tmp_path / "c.yaml", hosts)
    return [p.render().replace(str(tmp_path), "T") for p in exc.value.problems]


def test_stack_parses_with_defaults_and_wiring(tmp_path: Path) -> None:
    apps = parse(STACK, tmp_path / "c.yaml")
    feeds = apps.app("feeds")
    assert feeds is not None and feeds.requires == (("db", "feeds-db"),)
    assert feeds.values() == {"base_url": "https://feeds.example.org/", "admin_username": "admin"}
    assert apps.app("syncthing").recipe == "syncthing"  # recipe defaults to the name
    assert apps.app("feeds-db").port is None  # postgres serves no HTTP
    assert apps.app("cal").port == 5232  # a service-kind unit listens where its command says
    assert feeds.port == derived_port("feeds") and PORT_BASE <= feeds.port < PORT_BASE + PORT_SPAN
    assert feeds.data_dir == "/srv/homelab/feeds/data" and feeds.env_file == "/srv/homelab/feeds/secrets.env"


def test_derived_port_does_not_move_when_apps_are_added_or_reordered(tmp_path: Path) -> None:
    first = parse(STACK, tmp_path / "c.yaml").app("feeds").port
    more = STACK.replace("  list:\n", "  list:\n    - {name: radicale, machine: pi-1}\n    - {name: notes, recipe: radicale, machine: pi-1}\n")
    assert parse(more, tmp_path / "c.yaml").app("feeds").port == first


def test_claims(tmp_path: Path) -> None:
    apps = parse(STACK, tmp_path / "c.yaml")
    claims = list(apps_claims(apps, Hosts("pi-1", "pi-2")))
    http = {c.app: c for c in claims if isinstance(c, HttpService)}
    assert http["feeds"].port == apps.app("feeds").port and http["feeds"].health_path == "/healthcheck"
    assert http["feeds"].hosts == ("pi-1",) and "feeds-db" not in http
    backups = {c.app: c for c in claims if isinstance(c, BackupPath)}
    assert backups["feeds-db"].paths == () and backups["feeds-db"].dump.command[:5] == (
        "pg_dump", "--username", "app", "--dbname", "app")  # the app's values, filled in
    assert backups["syncthing"].paths == ("/srv/homelab/syncthing/data/sync",)
    assert backups["syncthing"].stop == ("syncthing",)
    assert backups["cal"].paths == ("/srv/homelab/cal/data/collections", "/srv/homelab/cal/data/config")
    assert "feeds" not in backups  # miniflux keeps everything in its database
    # the drill's scratch database: the compose project it comes from, and when it takes the restore
    assert backups["feeds-db"].home == "/srv/homelab/feeds-db" and backups["cal"].home == ""
    assert backups["feeds-db"].dump.ready == ("pg_isready", "--host", "127.0.0.1", "--username", "app", "--dbname", "app")
    packages = {(c.host, c.package) for c in claims if isinstance(c, NeedsPackage)}
    assert packages == {("pi-1", "docker.io"), ("pi-1", "docker-cli"), ("pi-1", "docker-compose"),
                        ("pi-2", "docker.io"), ("pi-2", "docker-cli"), ("pi-2", "docker-compose"), ("pi-2", "radicale")}
    ports = {(c.host, c.proto, c.port, c.forwarded) for c in claims if isinstance(c, OpenPort)}
    assert ports == {("pi-2", "tcp", 22000, True), ("pi-2", "udp", 22000, True)}


def test_a_dump_without_ready_waits_for_the_services_health_check(tmp_path: Path) -> None:
    apps = parse("apps:\n  list:\n    - {name: cache, recipe: valkey, machine: pi-1}\n", tmp_path / "c.yaml")
    claim = next(c for c in apps_claims(apps, Hosts("pi-1")) if isinstance(c, BackupPath))
    assert claim.dump.ready == ("valkey-cli", "ping") and claim.home == "/srv/homelab/cache"


def test_images_and_recipe_dirs(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    src = (Path(__file__).resolve().parents[2] / "recipes" / "radicale.yaml").read_text()
    (mine / "radicale.yaml").write_text(src.replace("Small CalDAV", "My CalDAV"))
    text = "apps:\n  recipe_dirs: [mine]\n  images: {mirror: \"labrepo:5000\", insecure: true}\n" \
           "  list:\n    - {name: radicale, machine: pi-1}\n"
    apps = parse(text, tmp_path / "c.yaml")
    assert apps.recipe_dirs == (mine.resolve(),)
    assert apps.images.mirror == "labrepo:5000" and apps.images.insecure
    assert apps.recipes["radicale"].description.startswith("My CalDAV")  # yours overrides the shipped one


def test_unknown_keys_recipe_machine_variables(tmp_path: Path) -> None:
    text = """\
apps:
  recipe_dir: [x]
  list:
    - name: feeds
      recipe: minflux
      machine: pi-1
    - name: sync
      recipe: syncthing
      machine: pi-3
      prot: 8000
    - name: cal
      recipe: radicale
      machine: pi-1
      variables: {auth_typ: none}
    - name: db
      recipe: postgres
      machine: pi-1
      variables: {database: 5}
"""
    assert errors(text, tmp_path) == [
        "T/c.yaml:2:3: apps.recipe_dir: unknown key (hint: did you mean 'recipe_dirs'?)",
        "T/c.yaml:5:7: apps.list[0].recipe: no recipe 'minflux' (hint: did you mean 'miniflux'?)",
        "T/c.yaml:10:7: apps.list[1].prot: unknown key (hint: did you mean 'port'?)",
        "T/c.yaml:14:19: apps.list[2].variables.auth_typ: recipe 'radicale' has no variable 'auth_typ' "
        "(hint: did you mean 'auth_type'?)",
        "T/c.yaml:18:29: apps.list[3].variables.database: should be a string, not an integer "
        "(hint: name of the database created on first start (POSTGRES_DB))",
    ]


def test_machine_cross_check(tmp_path: Path) -> None:
    text = "apps:\n  list:\n    - name: sync\n      recipe: syncthing\n      machine: pi-3\n"
    assert errors(text, tmp_path, ("pi-1", "nas")) == [
        "T/c.yaml:5:16: apps.list[0].machine: no machine or server named 'pi-3' (hint: did you mean 'pi-1'?)"]


def test_required_variable_and_duplicate_name(tmp_path: Path) -> None:
    mine = tmp_path / "r"
    mine.mkdir()
    src = (Path(__file__).resolve().parents[2] / "recipes" / "radicale.yaml").read_text()
    (mine / "needy.yaml").write_text(src.replace("name: radicale", "name: needy").replace(
        "    type: string\n    default: htpasswd\n", "    type: string\n    required: true\n"))
    text = "apps:\n  recipe_dirs: [r]\n  list:\n    - {name: a, recipe: needy, machine: pi-1}\n" \
           "    - name: b\n      recipe: needy\n      machine: pi-1\n      variables: {}\n" \
           "    - {name: a, recipe: radicale, machine: pi-2}\n"
    assert errors(text, tmp_path) == [
        "T/c.yaml:4:7: apps.list[0].variables.auth_type: is required (hint: recipe 'needy': "
        "[auth] type: htpasswd (users in the config volume's 'users' file), none, denyall, ...)",
        "T/c.yaml:8:7: apps.list[1].variables.auth_type: is required (hint: recipe 'needy': "
        "[auth] type: htpasswd (users in the config volume's 'users' file), none, denyall, ...)",
        "T/c.yaml:9:14: apps.list[2].name: 'a' is already used by apps.list[0] (hint: every app needs its own name)",
    ]


def test_requires_wiring_errors(tmp_path: Path) -> None:
    text = """\
apps:
  list:
    - {name: pg, recipe: postgres, machine: pi-1}
    - {name: pg2, recipe: postgres, machine: pi-2}
    - {name: sync, recipe: syncthing, machine: pi-1}
    - {name: a, recipe: miniflux, machine: pi-1}
    - {name: b, recipe: miniflux, machine: pi-1, requires: {db: sync}}
    - {name: c, recipe: miniflux, machine: pi-1, requires: {db: pg2}}
    - {name: d, recipe: miniflux, machine: pi-1, requires: {db: pgg, cache: pg}}
"""
    assert errors(text, tmp_path) == [
        "T/c.yaml:6:7: apps.list[3].requires.db: needs an app of recipe 'postgres' (hint: add requires: {db: pg})",
        "T/c.yaml:7:65: apps.list[4].requires.db: app 'sync' runs recipe 'syncthing', not 'postgres' "
        "(hint: apps of recipe 'postgres': pg, pg2)",
        "T/c.yaml:8:65: apps.list[5].requires.db: app 'pg2' runs on pi-2, not on pi-1 "
        "(hint: an app and what it requires share one machine (its Docker network and env files))",
        "T/c.yaml:9:65: apps.list[6].requires.db: no app named 'pgg' (to fill 'db': an app of recipe "
        "'postgres') (hint: did you mean 'pg'?)",
        "T/c.yaml:9:70: apps.list[6].requires.cache: recipe 'miniflux' has no requirement 'cache' "
        "(hint: known keys: db)",
    ]


def test_port_conflicts_and_misplaced_port(tmp_path: Path) -> None:
    text = """\
apps:
  list:
    - {name: s1, recipe: syncthing, machine: pi-1, port: 21000}
    - {name: s2, recipe: syncthing, machine: pi-1, port: 21000}
    - {name: s3, recipe: syncthing, machine: pi-2}
    - {name: s4, recipe: syncthing-service, machine: pi-2, port: 9000}
    - {name: db, recipe: postgres, machine: pi-2, port: 9001}
    - {name: r, recipe: radicale, machine: pi-1, port: 80}
"""
    assert errors(text, tmp_path) == [
        "T/c.yaml:4:14: apps.list[1].name: pi-1: tcp port 22000 (s2 syncthing sync) is already taken by "
        "s1 (syncthing sync) (hint: run one of them on another machine (the recipe fixes this port))",
        "T/c.yaml:4:14: apps.list[1].name: pi-1: udp port 22000 (s2 syncthing sync_quic) is already taken by "
        "s1 (syncthing sync_quic) (hint: run one of them on another machine (the recipe fixes this port))",
        "T/c.yaml:4:58: apps.list[1].port: pi-1: tcp port 21000 (s2 http) is already taken by s1 (http) "
        "(hint: give one of them another port:)",
        "T/c.yaml:6:66: apps.list[3].port: recipe 'syncthing-service' listens on 8384 itself "
        "(hint: its command sets the port; drop port here)",
        "T/c.yaml:7:51: apps.list[4].port: recipe 'postgres' serves no HTTP (hint: drop port)",
        "T/c.yaml:8:56: apps.list[5].port: should be an integer 1024-65535, got 80",
    ]


def test_broken_recipe_reported_in_its_own_file(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "bad.yaml").write_text("name: bad\ndescription: x\n")
    text = "apps:\n  recipe_dirs: [r, missing]\n  list:\n    - {name: x, recipe: bad, machine: pi-1}\n" \
           "    - {name: y, recipe: bad, machine: pi-1}\n  images: {insecure: true, mirror: \"Bad Host\"}\n"
    got = errors(text, tmp_path)
    assert got[0] == "T/c.yaml:2:20: apps.recipe_dirs[1]: no directory 'T/missing' " \
                     "(hint: paths are relative to the config file's directory)"
    assert "T/c.yaml:6:36: apps.images.mirror: 'Bad Host' is not allowed here " \
           "(hint: a registry host[:port], like registry.lan:5000)" in got
    recipe_problems = [p for p in got if p.startswith("T/r/bad.yaml:")]
    assert recipe_problems and any("homepage: is required" in p for p in recipe_problems)
    assert len([p for p in got if "sources: is required" in p]) == 1  # a broken recipe is reported once
