"""Recipes: every shipped recipe parses clean; errors are located with hints; the catalog."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config.recipe import parse_recipe
from homelab.config.recipe_catalog import Catalog, UnknownRecipe, shipped_dir
from homelab.errors import ConfigError

GOOD = """\
name: demo
description: a demo app
homepage: https://example.org/
upstream_version: "1.0.0"
sources: [https://example.org/docs]
memory_mb: 64
variables:
  domain: {type: hostname, required: true}
  port: {type: integer, default: 8080}
secrets:
  token: {kind: token, length: 32}
images:
  app: {repository: example/app, tag: "1.0.0"}
services:
  app:
    image: app
    environment:
      URL: https://${var.domain}/
      TOKEN: ${secret.token}
      HOME_DIR: ${app.data}
      PRICE: "$$5"
    volumes:
      data: /data
      cache: {path: /cache, kind: cache}
    ports:
      http: 8080
    healthcheck:
      http: {path: /health, port: http}
http:
  port: http
  health_path: /health
"""


def problems(text: str, name: str = "r.yaml") -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_recipe(text, name)
    return [p.render() for p in exc.value.problems]


def with_line(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


def test_shipped_recipes_parse_clean() -> None:
    cat = Catalog()
    names = cat.names()
    for must in ["vaultwarden", "jellyfin", "immich", "paperless-ngx", "nextcloud", "home-assistant",
                 "audiobookshelf", "freshrss", "uptime-kuma", "forgejo", "miniflux", "syncthing", "radicale",
                 "postgres", "valkey", "syncthing-service", "radicale-service"]:
        assert must in names
    for name in names:
        r = cat.load(name)  # raises with every problem if a recipe is broken
        assert r.name == name and r.sources and r.memory_mb > 0
        for _, image in r.images:
            assert image.tag != "latest"


def test_service_kind_and_lab_interfaces() -> None:
    cat = Catalog()
    st = cat.load("syncthing-service")
    assert st.kind == "service" and st.package == "syncthing" and st.images == ()
    svc = st.services[0]
    assert svc.command[0] == "/usr/bin/syncthing" and svc.user == "syncthing"
    assert [v.path for v in svc.volumes] == [None, None]
    pg = cat.load("postgres")
    db = pg.service("db")
    assert db is not None and db.volumes[0].path == "/var/lib/postgresql/data" and db.port("postgres").port == 5432
    assert pg.backup.volumes == () and pg.backup.dump is not None and pg.backup.dump.command[0] == "pg_dump"
    assert dict(pg.provides)["password"] == "${secret.password}"
    mf = cat.load("miniflux")
    assert [(r.recipe, r.alias) for r in mf.requires] == [("postgres", "db")]
    assert set(mf.requires[0].keys) == {"user", "password", "host", "port", "database"}


def test_good_recipe_values() -> None:
    r = parse_recipe(GOOD, "demo.yaml")
    assert str(r.image("app")) == "example/app:1.0.0"
    svc = r.services[0]
    assert dict(svc.environment)["PRICE"] == "$$5"
    assert [(v.name, v.path, v.kind) for v in svc.volumes] == [("data", "/data", "data"), ("cache", "/cache", "cache")]
    assert r.backup.volumes == ("data",)  # default: every data/config volume, never a cache
    assert svc.healthcheck is not None and svc.healthcheck.form == "http" and svc.healthcheck.port == "http"
    assert r.http is not None and r.http.service == "app"
    assert r.variable("port").default == 8080 and r.variable("domain").required


def test_unknown_key_with_suggestion() -> None:
    text = with_line("memory_mb: 64", "memory_mb: 64\nmemroy: 1")
    assert problems(text) == ["r.yaml:7:1: memroy: unknown key (hint: did you mean 'memory_mb'?)"]
    text = with_line("    image: app\n", "    image: app\n    enviroment: {}\n")
    assert problems(text) == ["r.yaml:17:5: services.app.enviroment: unknown key (hint: did you mean 'environment'?)"]


def test_bad_reference_is_located_at_the_reference() -> None:
    text = with_line("URL: https://${var.domain}/", "URL: https://${var.nope}/")
    assert problems(text) == [
        "r.yaml:18:20: services.app.environment.URL: no variable 'nope' for ${var.nope} (hint: known keys: domain, port)"]
    text = with_line("TOKEN: ${secret.token}", "TOKEN: ${secret.tokn}")
    assert problems(text) == ["r.yaml:19:14: services.app.environment.TOKEN: no secret 'tokn' for ${secret.tokn} "
                              "(hint: did you mean 'token'?)"]
    text = with_line("HOME_DIR: ${app.data}", "HOME_DIR: ${dep.db.url} ${ap.data} $HOME")
    assert problems(text) == [
        "r.yaml:20:17: services.app.environment.HOME_DIR: no requirement 'db' for ${dep.db.url} "
        "(hint: declare it under requires:)",
        "r.yaml:20:31: services.app.environment.HOME_DIR: unknown reference ${ap.data} (hint: did you mean 'app'?)",
        "r.yaml:20:42: services.app.environment.HOME_DIR: a lone '$' "
        "(hint: write $$ for a literal dollar, or ${var.NAME} for a value)"]


def test_wrong_types() -> None:
    text = with_line("port: {type: integer, default: 8080}", "port: {type: integer, default: eighty}")
    assert problems(text) == ["r.yaml:9:34: variables.port.default: should be an integer, not a string"]
    text = with_line("memory_mb: 64", "memory_mb: lots")
    assert problems(text) == ["r.yaml:6:12: memory_mb: should be an integer 16-1048576, not a string ('lots')"]
    text = with_line('tag: "1.0.0"', "tag: 1.10")
    assert problems(text) == ["r.yaml:13:39: images.app.tag: 1.1 was read as a number (hint: quote it: \"1.1\")"]
    text = with_line('tag: "1.0.0"', "tag: latest")
    assert problems(text) == ["r.yaml:13:39: images.app.tag: 'latest' is not a pin (hint: name the version, e.g. \"1.34.3\")"]


def test_missing_image_key() -> None:
    text = with_line("    image: app\n", "    image: ap\n")
    assert problems(text) == [
        "r.yaml:13:3: images.app: no service uses this image (hint: drop it, or name it in a service's image:)",
        "r.yaml:16:12: services.app.image: no image 'ap' in images: (hint: did you mean 'app'?)"]


def test_duplicate_port() -> None:
    text = with_line("      http: 8080\n", "      http: 8080\n      admin: 8080\n")
    assert problems(text) == ["r.yaml:27:14: services.app.ports.admin: port 8080/tcp is already named 'http' "
                              "(hint: list each port once per service)"]


def test_health_port_and_backup_refs() -> None:
    text = with_line("http: {path: /health, port: http}", "http: {path: /health, port: web}")
    assert problems(text) == ["r.yaml:28:35: services.app.healthcheck.http.port: the service has no port 'web' "
                              "(hint: known keys: http)"]
    text = GOOD + "backup:\n  volumes: [cache, dta]\n"
    assert problems(text) == [
        "r.yaml:33:13: backup.volumes[0]: 'cache' is not homelab's to back up "
        "(hint: caches and directories with a source (yours) are never backed up)",
        "r.yaml:33:20: backup.volumes[1]: no volume 'dta' in any service (hint: did you mean 'data'?)"]


def test_all_problems_at_once_and_kind_rules() -> None:
    text = with_line("memory_mb: 64", "kind: service\npackage: Not_A_Package\nmemory_mb: 64")
    got = problems(text)
    assert any("package: 'Not_A_Package' is not allowed here" in p for p in got)
    assert any("images: a service-kind recipe has no images" in p for p in got)
    assert any("services.app.image: a service-kind recipe runs a Debian package" in p for p in got)
    assert "r.yaml:25:13: services.app.volumes.data: should be a mapping, not a string " \
           "(hint: e.g. {path: /data, kind: data})" in got
    fixed = text.replace("      data: /data\n", "").replace("{path: /cache, kind: cache}", "{kind: cache}")
    fixed = fixed.replace("images:\n  app: {repository: example/app, tag: \"1.0.0\"}\n", "").replace("    image: app\n", "")
    assert problems(fixed.replace("Not_A_Package", "demo")) == [
        "r.yaml:14:1: services.app.command: is required for kind: service "
        "(hint: the program and its arguments, like [\"/usr/bin/syncthing\", \"serve\"])"]


def write(d: Path, name: str, text: str) -> None:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.yaml").write_text(text)


def test_catalog_user_dir_overrides_and_lists(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    write(mine, "valkey", (shipped_dir() / "valkey.yaml").read_text().replace("memory_mb: 64", "memory_mb: 99"))
    write(mine, "demo", GOOD)
    cat = Catalog([mine])
    assert cat.load("valkey").memory_mb == 99 and cat.path("valkey") == mine / "valkey.yaml"
    assert Catalog().load("valkey").memory_mb == 64
    listed = {s.name: s for s in cat.summaries()}
    assert listed["demo"].description == "a demo app" and listed["valkey"].memory_mb == 99
    assert "postgres" in listed  # shipped ones stay visible


def test_catalog_did_you_mean_and_name_mismatch(tmp_path: Path) -> None:
    with pytest.raises(UnknownRecipe) as exc:
        Catalog().load("vaultwardn")
    assert exc.value.message == "no recipe 'vaultwardn'" and exc.value.hint == "did you mean 'vaultwarden'?"
    with pytest.raises(UnknownRecipe):
        Catalog().load("../etc/passwd")
    write(tmp_path, "other", GOOD)
    with pytest.raises(ConfigError) as cfg:
        Catalog([tmp_path], include_shipped=False).load("other")
    assert cfg.value.problems[0].render().endswith(
        "other.yaml:1:7: name: 'demo' differs from the file name 'other' "
        "(hint: name the file demo.yaml, or write name: other)")


def test_catalog_checks_dep_keys(tmp_path: Path) -> None:
    text = GOOD.replace("name: demo", "name: app2").replace(
        "memory_mb: 64", "memory_mb: 64\nrequires:\n  - {recipe: postgres, alias: db}").replace(
        "TOKEN: ${secret.token}", "TOKEN: ${dep.db.pasword}")
    write(tmp_path, "app2", text)
    with pytest.raises(ConfigError) as exc:
        Catalog([tmp_path]).load("app2")
    assert [p.render().split("app2.yaml:")[1] for p in exc.value.problems] == [
        "21:14: requires: recipe 'postgres' provides no 'pasword' (hint: did you mean 'password'?)"]
    missing = text.replace("recipe: postgres", "recipe: postgress")
    write(tmp_path, "app2", missing)
    with pytest.raises(ConfigError) as exc:
        Catalog([tmp_path]).load("app2")
    assert exc.value.problems[0].render().split("app2.yaml:")[1] == (
        "8:14: requires: no recipe 'postgress' (hint: did you mean 'postgres'?)")
