"""Rendered compose files, secrets script and systemd units (golden files), and their rules:
no secret value in a compose file, published ports loopback-only, one variable = one block.

Regenerate the golden files after an intended change with HOMELAB_UPDATE_GOLDEN=1.
"""
from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from homelab.config.apps import App, AppsConfig
from homelab.errors import HomelabError
from homelab.layers.apps.render import render_compose, render_secrets_script, render_service_unit
from tests.unit.apps_fixtures import parse

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "apps"
DIGEST = "sha256:" + "0123456789abcdef" * 4
CONFIG = """\
apps:
  list:
    - {name: feeds-db, recipe: postgres, machine: pi-1, variables: {user: feeds, database: feeds}}
    - name: feeds
      recipe: miniflux
      machine: pi-1
      variables: {base_url: "https://feeds.example.org/", admin_username: "me$$"}
      requires: {db: feeds-db}
    - {name: sync, recipe: syncthing, machine: pi-1, port: 20001}
    - {name: cal, recipe: radicale, machine: pi-1, port: 20002}
    - {name: sync-host, recipe: syncthing-service, machine: pi-2}
    - {name: cal-host, recipe: radicale-service, machine: pi-2}
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> AppsConfig:
    return parse(CONFIG, tmp_path_factory.mktemp("cfg") / "c.yaml")


def pins(apps: AppsConfig, app: App) -> dict[str, str]:
    return {key: f"{img.repository}@{DIGEST}" for key, img in apps.recipe_of(app).images}


def compose(apps: AppsConfig, name: str, **kw: object) -> str:
    app = apps.app(name)
    assert app is not None
    deps = {alias: (apps.app(other), apps.recipe_of(apps.app(other))) for alias, other in app.requires}
    return render_compose(app, apps.recipe_of(app), pins(apps, app), app.data_dir, app.env_file,
                          deps=deps, **kw)  # type: ignore[arg-type]


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HOMELAB_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file"


@pytest.mark.parametrize("app", ["feeds-db", "feeds", "sync", "cal"])
def test_compose_matches_golden(apps: AppsConfig, app: str) -> None:
    golden(f"{app}.compose.yaml", compose(apps, app))


@pytest.mark.parametrize("app", ["sync-host", "cal-host"])
def test_service_unit_matches_golden(apps: AppsConfig, app: str) -> None:
    a = apps.app(app)
    golden(f"{app}.service", render_service_unit(a, apps.recipe_of(a), a.data_dir, a.env_file))


def test_secrets_script_matches_golden(apps: AppsConfig) -> None:
    a, db = apps.app("feeds"), apps.app("feeds-db")
    golden("feeds.secrets.sh", render_secrets_script(a, apps.recipe_of(a), a.env_file,
                                                     deps={"db": (db, apps.recipe_of(db))}) + "\n")


def test_compose_is_valid_yaml_with_secrets_only_as_references(apps: AppsConfig) -> None:
    doc = yaml.safe_load(compose(apps, "feeds"))
    env = doc["services"]["miniflux"]["environment"]
    assert env["ADMIN_PASSWORD"].startswith("${HOMELAB_SECRET_ADMIN_PASSWORD:?")
    assert env["DATABASE_URL"].startswith("postgres://feeds:${HOMELAB_DEP_DB_PASSWORD:?")
    assert env["DATABASE_URL"].endswith("@feeds-db:5432/feeds?sslmode=disable")  # the provider's own name
    assert env["ADMIN_USERNAME"] == "me$$$$"  # a config value is literal: each `$` escaped for compose
    assert doc["networks"]["db"] == {"name": "homelab-feeds-db", "external": True}


def test_no_generated_secret_reaches_a_compose_file(apps: AppsConfig, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the real secrets script (sh, here), then look for every value in every rendered file."""
    rendered = "".join(compose(apps, n) for n in ("feeds", "feeds-db", "sync", "cal"))
    monkeypatch.setattr("homelab.config.apps.DATA_ROOT", str(tmp_path))  # env files under tmp_path
    a, db = apps.app("feeds"), apps.app("feeds-db")
    script = render_secrets_script(a, apps.recipe_of(a), a.env_file, deps={"db": (db, apps.recipe_of(db))})
    env, db_env = Path(a.env_file), Path(db.env_file)
    texts = []
    for _ in range(2):  # the second run keeps every value
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
        assert out.stdout == "" and out.stderr == ""
        texts.append(env.read_text())
    assert texts[0] == texts[1]
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and stat.S_IMODE(db_env.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env.read_text().splitlines())
    db_values = dict(line.split("=", 1) for line in db_env.read_text().splitlines())
    assert set(values) == {"HOMELAB_SECRET_ADMIN_PASSWORD", "HOMELAB_DEP_DB_PASSWORD"}
    assert values["HOMELAB_DEP_DB_PASSWORD"] == db_values["HOMELAB_SECRET_PASSWORD"]
    assert len(values["HOMELAB_SECRET_ADMIN_PASSWORD"]) == 24 and len(db_values["HOMELAB_SECRET_PASSWORD"]) == 40
    for value in [*values.values(), *db_values.values()]:
        assert value not in rendered + script


def test_published_ports_are_loopback_or_given_addresses_only(apps: AppsConfig) -> None:
    for name in ("feeds", "sync", "cal", "feeds-db"):
        for svc in yaml.safe_load(compose(apps, name))["services"].values():
            for port in svc.get("ports", []):
                assert port.startswith("127.0.0.1:"), port
    sync = yaml.safe_load(compose(apps, "sync", publish_on=("10.44.0.1",)))["services"]["syncthing"]["ports"]
    assert sync == ["127.0.0.1:20001:8384/tcp", "10.44.0.1:22000:22000/tcp", "10.44.0.1:22000:22000/udp"]
    assert "ports" not in yaml.safe_load(compose(apps, "feeds-db"))["services"]["db"]  # reached over its network
    for bad in ("0.0.0.0", "::", "not-an-ip"):
        with pytest.raises(HomelabError):
            compose(apps, "sync", publish_on=(bad,))
        with pytest.raises(HomelabError):
            compose(apps, "sync", http_on=bad)


def test_a_variable_change_changes_only_that_services_block(apps: AppsConfig, tmp_path: Path) -> None:
    before = compose(apps, "feeds-db")
    changed = parse(CONFIG.replace("user: feeds,", "user: feeds2,"), tmp_path / "c.yaml")
    after = compose(changed, "feeds-db")
    assert before != after
    doc_b, doc_a = yaml.safe_load(before), yaml.safe_load(after)
    assert {k: v for k, v in doc_b.items() if k != "services"} == {k: v for k, v in doc_a.items() if k != "services"}
    # miniflux's block changes too (it reads ${dep.db.user}); the other apps' files do not
    assert compose(apps, "sync") == compose(changed, "sync")
    assert compose(apps, "feeds") != compose(changed, "feeds")


def test_healthchecks_and_depends_on(apps: AppsConfig) -> None:
    db = yaml.safe_load(compose(apps, "feeds-db"))["services"]["db"]
    assert db["healthcheck"]["test"] == ["CMD", "pg_isready", "--username", "feeds", "--dbname", "feeds"]
    cal = yaml.safe_load(compose(apps, "cal"))
    assert cal["services"]["radicale"]["read_only"] is True and cal["services"]["radicale"]["user"] == "1000:1000"
    assert cal["services"]["radicale"]["restart"] == "unless-stopped"


def test_missing_pin_and_wrong_kind_refused(apps: AppsConfig) -> None:
    a = apps.app("sync")
    with pytest.raises(HomelabError, match="no pinned image"):
        render_compose(a, apps.recipe_of(a), {}, a.data_dir, a.env_file)
    with pytest.raises(HomelabError, match="is compose"):
        render_service_unit(a, apps.recipe_of(a), a.data_dir)
    feeds = apps.app("feeds")
    with pytest.raises(HomelabError, match="requirements"):
        render_compose(feeds, apps.recipe_of(feeds), pins(apps, feeds), feeds.data_dir, feeds.env_file)
