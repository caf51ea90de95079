"""Layer 6 on real hosts: apps from the shipped recipes, pulled from the lab registry.

The lab serves lab builds of the recipes' upstream images (homelab/lab/images/catalog.py:
Debian/PyPI packages with the upstream image's interface) under their upstream names through
`labrepo:5000`, which the config names as its mirror. Two Debian 13 hosts: h1 runs radicale
and miniflux on PostgreSQL (compose), h2 runs Radicale from Debian's package (service kind) and
gets its images from a bundle while it cannot reach the registry. The firewall (layer 2) is on.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from homelab.config import load_config
from homelab.lab.demo import render_lab_config
from tests.e2e.util import homelab, state_of

pytestmark = pytest.mark.lab

HOSTS = ["h1", "h2"]
APPS = """\
permissions:
  sshd: {root_login: true}
apps:
  images: {mirror: "labrepo:5000"}
  list:
    - {name: cal, recipe: radicale, machine: h1, variables: {auth_type: none}}
    - {name: feeds-db, recipe: postgres, machine: h1, variables: {database: feeds, user: feeds}}
    - name: feeds
      recipe: miniflux
      machine: h1
      requires: {db: feeds-db}
      variables: {base_url: "http://feeds.lab/"}
    - {name: dav, recipe: radicale-service, machine: h2, variables: {auth_type: none}}
"""


class Run:
    def __init__(self, lab: Any, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        self.cfg = tmp / "apps.yaml"
        self.base = render_lab_config(lab.inventory(), hosts=HOSTS)
        self.outputs: list[str] = []

    def write(self, apps: str) -> None:
        self.cfg.write_text(self.base + apps)

    def homelab(self, *args: str, timeout: float = 900) -> Any:
        out = homelab(*args, env={"XDG_STATE_HOME": str(self.tmp / "xdg")}, timeout=timeout)
        self.outputs.append(out.stdout + out.stderr)
        return out

    def sh(self, host: str, cmd: str, check: bool = True) -> str:
        r = self.lab.run(host, cmd, timeout=300)
        if check:
            assert r.returncode == 0, f"{host}: {cmd!r} -> {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        return r.stdout.strip()

    def port(self, app: str) -> int:
        port = load_config(self.cfg).get("apps").app(app).port
        assert port is not None
        return int(port)

    def started(self, host: str, project: str) -> dict[str, str]:
        out = self.sh(host, f"for c in $(docker compose -p {project} ps -q); do docker inspect -f "
                            "'{{index .Config.Labels \"com.docker.compose.service\"}} {{.State.StartedAt}}' $c; done")
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


@pytest.fixture(scope="module")
def run(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    lab.reset(*HOSTS)
    lab.ensure_images()
    r = Run(lab, tmp_path_factory.mktemp("apps"))
    r.write(APPS)
    out = r.homelab("apply", str(r.cfg), "--yes", "--accept-new-host-keys")
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-6000:]
    return r


def test_apps_are_healthy_and_answer_on_their_ports(run: Run) -> None:
    out = run.homelab("status", str(run.cfg), "--json", "--layer", "apps")
    doc = json.loads(out.stdout)
    bad = [m for m in doc["layers"]["apps"] if m["health"] != "OK"]
    assert not bad and out.returncode == 0, bad
    assert run.sh("h1", f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{run.port('cal')}/.web/") == "200"
    assert run.sh("h1", f"curl -s http://127.0.0.1:{run.port('feeds')}/healthcheck") == "OK"
    assert run.sh("h2", "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5232/.web/") == "200"
    assert run.sh("h2", "systemctl is-active homelab-dav.service") == "active"


def test_a_second_apply_changes_nothing(run: Run) -> None:
    again = run.homelab("apply", str(run.cfg), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "apply ok: 0 change(s)" in again.stderr, again.stdout + again.stderr
    assert run.homelab("plan", str(run.cfg)).returncode == 0


def test_container_ports_are_not_reachable_from_another_host(run: Run) -> None:
    h1 = next(h["address"] for h in run.lab.inventory()["hosts"] if h["name"] == "h1")
    for port in (run.port("cal"), 5232, 5432):
        code = run.sh("h2", f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 http://{h1}:{port}/", check=False)
        assert code in ("000", ""), f"port {port} of h1 answered {code} from h2"


def test_a_variable_change_restarts_only_that_app(run: Run) -> None:
    before = {p: run.started("h1", p) for p in ("cal", "feeds", "feeds-db")}
    run.write(APPS.replace("variables: {auth_type: none}}\n    - {name: feeds-db",
                           "variables: {auth_type: denyall}}\n    - {name: feeds-db"))
    plan = run.homelab("plan", str(run.cfg))
    assert plan.returncode == 3 and "cal (radicale 3.7.8): update: restarts radicale" in plan.stdout, plan.stdout
    out = run.homelab("apply", str(run.cfg), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    after = {p: run.started("h1", p) for p in ("cal", "feeds", "feeds-db")}
    assert after["feeds"] == before["feeds"] and after["feeds-db"] == before["feeds-db"]
    assert after["cal"] != before["cal"]
    # by hand: back to the release before (health-gated), then apply brings the config's again
    back = run.homelab("apps", "rollback", str(run.cfg), "cal")
    assert back.returncode == 0 and "rolled back from release" in back.stdout, back.stdout + back.stderr
    run.write(APPS)
    assert run.homelab("plan", str(run.cfg)).returncode == 0  # the rolled-back release is the config's again


def test_an_update_that_fails_its_health_check_rolls_back_by_itself(run: Run) -> None:
    recipes = run.tmp / "recipes"
    recipes.mkdir(exist_ok=True)
    shipped = Path(__file__).resolve().parents[2] / "recipes" / "radicale.yaml"
    broken = shipped.read_text().replace("http://localhost:5232/.web/", "http://localhost:5232/no-such-page")
    broken = broken.replace("interval: 30", "interval: 2").replace("retries: 3", "retries: 2")
    (recipes / "radicale.yaml").write_text(broken)
    run.write(APPS.replace("apps:\n", f"apps:\n  recipe_dirs: [{recipes}]\n", 1))
    out = run.homelab("apply", str(run.cfg), "--yes", timeout=900)
    (run.tmp / "rollback.out").write_text(out.stdout + out.stderr)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "failed its health gate" in out.stdout + out.stderr, (out.stdout + out.stderr)[-4000:]
    # the old release runs again and still answers
    assert run.sh("h1", f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{run.port('cal')}/.web/") == "200"
    run.write(APPS)
    assert run.homelab("plan", str(run.cfg)).returncode == 0


def test_a_host_without_the_registry_gets_its_images_from_a_bundle(run: Run) -> None:
    bundle = run.tmp / "images.tar"
    out = run.homelab("apps", "bundle", str(run.cfg), "-o", str(bundle))
    assert out.returncode == 0 and bundle.stat().st_size > 1_000_000, out.stdout + out.stderr
    # h2 loses the registry (and nothing else): a new app there needs the pinned radicale image
    run.sh("h2", "nft add table inet hlblock; nft add chain inet hlblock out '{ type filter hook output priority 0; }'; "
                 "nft add rule inet hlblock out tcp dport 5000 drop")
    try:
        blocked = run.sh("h2", "curl -s -o /dev/null -w '%{http_code}' --max-time 3 https://labrepo:5000/v2/",
                         check=False)
        assert blocked == "000", f"h2 still reaches the registry ({blocked})"
        run.write(APPS + "    - {name: cal2, recipe: radicale, machine: h2, variables: {auth_type: none}}\n")
        no_bundle = run.homelab("plan", str(run.cfg))
        assert "pull ghcr.io/kozea/radicale" not in no_bundle.stdout  # pinned already: no tag is trusted again
        out = run.homelab("apply", str(run.cfg), "--yes", "--bundle", str(bundle))
        assert out.returncode == 0, out.stdout + out.stderr
        assert "from bundle" in out.stdout
        port = run.port("cal2")
        assert run.sh("h2", f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/.web/") == "200"
    finally:
        run.sh("h2", "nft delete table inet hlblock", check=False)


def test_removing_an_app_keeps_its_data_unless_purged_and_confirmed(run: Run) -> None:
    run.sh("h1", "mkdir -p /srv/homelab/cal/data/collections/keep && echo mine > /srv/homelab/cal/data/collections/keep/f")
    run.write(APPS.replace("    - {name: cal, recipe: radicale, machine: h1, variables: {auth_type: none}}\n", ""))
    out = run.homelab("apply", str(run.cfg), "--yes")
    assert out.returncode == 0, out.stdout + out.stderr
    assert run.sh("h1", "docker compose -p cal ps -q") == ""
    assert run.sh("h1", "cat /srv/homelab/cal/data/collections/keep/f") == "mine"
    refused = run.homelab("apply", str(run.cfg), "--yes", "--purge-data")
    assert refused.returncode == 1 and "not confirmed" in refused.stdout + refused.stderr
    assert run.sh("h1", "cat /srv/homelab/cal/data/collections/keep/f") == "mine"
    purged = run.homelab("apply", str(run.cfg), "--yes", "--purge-data", "--confirm-delete")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert run.sh("h1", "test -e /srv/homelab/cal && echo there || echo gone") == "gone"
    run.write(APPS)


def test_no_generated_secret_appears_in_state_logs_or_output(run: Run) -> None:
    values = []
    for app in ("feeds-db", "feeds"):
        env = run.sh("h1", f"cat /srv/homelab/{app}/secrets.env")
        values += [line.split("=", 1)[1] for line in env.splitlines() if "=" in line and len(line.split("=", 1)[1]) >= 16]
    assert values, "the postgres app has generated secrets"
    state = run.cfg.with_name(run.cfg.stem + ".state.json").read_text()
    logs = "".join(p.read_text(errors="replace") for p in (run.tmp / "xdg").rglob("*.log"))
    ps = run.sh("h1", "ps -eo args")
    for v in values:
        assert v not in state and v not in logs and v not in ps
        assert not any(v in o for o in run.outputs)
    assert re.search(r"HOMELAB_SECRET_", state) is None
    mode = run.sh("h1", "stat -c %a /srv/homelab/feeds-db/secrets.env")
    assert mode == "600"
    assert "images" in state_of(run.cfg)["sections"]["apps"]  # the pins, by digest
