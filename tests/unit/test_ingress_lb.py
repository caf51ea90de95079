"""An app on several machines, through the layers: config (`machines:`, stateless only), the
claims, the apps layer's copies, the Caddyfile ingress renders from them (golden), and the
upstream health monitors per copy.

Regenerate the golden file after an intended change with HOMELAB_UPDATE_GOLDEN=1.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.claims import BackupPath, HttpService, NeedsPackage
from homelab.config import load_config
from homelab.config.apps import apps_claims, derived_port
from homelab.errors import ConfigError
from homelab.hosts import HostTarget
from homelab.layers.apps.layer import AppsLayer
from homelab.layers.base import RunContext, RunOptions
from homelab.layers.ingress import IngressLayer
from homelab.layers.ingress.probes import nothing_there
from homelab.layers.ingress.render import CaddySettings, Site, Upstream
from homelab.layers.ingress.upstreams import (UpstreamFacts, UpstreamTarget, balanced_targets, parse_upstream_probe,
                                              render_upstream_probe, upstream_monitors)
from homelab.model import Health
from homelab.outputs import MeshAddresses
from homelab.probe import ProbeResult, as_probe
from homelab.state import State
from tests.unit.apps_fixtures import Hosts, parse
from tests.unit.test_apps_config import errors

from golden import assert_golden as golden

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ingress"
HELLO = "apps:\n  list:\n    - {name: hello, recipe: whoami, machines: [pi-1, pi-2]}\n"


# ------------------------------------------------------------------ config --

def test_an_app_on_two_machines_has_one_port_and_a_copy_on_each(tmp_path: Path) -> None:
    apps = parse(HELLO, tmp_path / "c.yaml")
    hello = apps.app("hello")
    assert hello is not None and hello.machines == ("pi-1", "pi-2") and hello.machine == "pi-1"
    assert hello.port == derived_port("hello")
    claims = list(apps_claims(apps, Hosts("pi-1", "pi-2")))
    http = [c for c in claims if isinstance(c, HttpService)]
    assert [(c.hosts, c.port, c.health_path) for c in http] == [(("pi-1", "pi-2"), hello.port, "/health")]
    assert sorted((c.host, c.package) for c in claims if isinstance(c, NeedsPackage)) == [
        ("pi-1", "docker-cli"), ("pi-1", "docker-compose"), ("pi-1", "docker.io"),
        ("pi-2", "docker-cli"), ("pi-2", "docker-compose"), ("pi-2", "docker.io")]
    assert not [c for c in claims if isinstance(c, BackupPath)]  # stateless: nothing to back up, honestly


def test_one_machine_in_a_list_is_the_same_as_machine(tmp_path: Path) -> None:
    one = parse(HELLO.replace("[pi-1, pi-2]", "[pi-2]"), tmp_path / "c.yaml").app("hello")
    assert one is not None and one.machines == ("pi-2",) and not one.also_on
    assert one == parse(HELLO.replace("machines: [pi-1, pi-2]", "machine: pi-2"), tmp_path / "c.yaml").app("hello")


def test_the_derived_port_skips_a_port_taken_on_either_machine(tmp_path: Path) -> None:
    taken = derived_port("hello")
    text = HELLO + f"    - {{name: cal, recipe: radicale, machine: pi-2, port: {taken}}}\n"
    hello = parse(text, tmp_path / "c.yaml").app("hello")
    assert hello is not None and hello.port == taken + 1


def test_a_stateful_app_on_two_machines_is_refused_with_a_hint(tmp_path: Path) -> None:
    text = "apps:\n  list:\n    - {name: cal, recipe: radicale, machines: [pi-1, pi-2]}\n" \
           "    - {name: db, recipe: postgres, machines: [pi-1, pi-2], variables: {database: d, user: u}}\n"
    assert errors(text, tmp_path) == [
        "T/c.yaml:3:47: apps.list[0].machines: recipe 'radicale' keeps data in volume 'collections': two copies of "
        "it are not a cluster (hint: run it on one machine (machine: NAME); only stateless apps run on several)",
        "T/c.yaml:4:46: apps.list[1].machines: recipe 'postgres' keeps a database (it has a dump): two copies of "
        "it are not a cluster (hint: run it on one machine (machine: NAME); only stateless apps run on several)"]


def test_machine_and_machines_errors(tmp_path: Path) -> None:
    both = "apps:\n  list:\n    - {name: hello, recipe: whoami, machine: pi-1, machines: [pi-1, pi-2]}\n"
    assert errors(both, tmp_path) == ["T/c.yaml:3:37: apps.list[0].machine: give machine or machines, not both "
                                      "(hint: machines: [a, b] runs a copy on each)"]
    twice = HELLO.replace("[pi-1, pi-2]", "[pi-1, pi-1]")
    assert errors(twice, tmp_path) == ["T/c.yaml:3:47: apps.list[0].machines: names pi-1 twice (hint: one copy per "
                                       "machine)"]
    assert errors(HELLO.replace("[pi-1, pi-2]", "[]"), tmp_path) == [
        "T/c.yaml:3:47: apps.list[0].machines: names no machine (hint: like machines: [pi-1, pi-2])"]
    # an unknown name points at its own entry (col 54), not at the list's '[' (col 47)
    assert errors(HELLO.replace("pi-2]", "pi-3]"), tmp_path) == [
        "T/c.yaml:3:54: apps.list[0].machines[1]: no machine or server named 'pi-3' (hint: did you mean 'pi-2'?)"]


def test_an_unknown_machine_in_a_one_entry_list_points_at_that_entry(tmp_path: Path) -> None:
    one = HELLO.replace("[pi-1, pi-2]", "[pi-3]")
    assert errors(one, tmp_path) == [
        "T/c.yaml:3:48: apps.list[0].machines[0]: no machine or server named 'pi-3' (hint: did you mean 'pi-2'?)"]
    block = "apps:\n  list:\n    - name: hello\n      recipe: whoami\n      machines:\n        - pi-1\n        - pi-9\n"
    assert errors(block, tmp_path) == [
        "T/c.yaml:7:11: apps.list[0].machines[1]: no machine or server named 'pi-9' (hint: did you mean 'pi-2'?)"]
    assert errors(block.replace("        - pi-1\n", ""), tmp_path) == [
        "T/c.yaml:6:11: apps.list[0].machines[0]: no machine or server named 'pi-9' (hint: did you mean 'pi-2'?)"]


def test_what_a_copy_requires_must_run_beside_each_copy(tmp_path: Path) -> None:
    text = """apps:
  list:
    - {name: feeds-db, recipe: postgres, machine: pi-1, variables: {database: f, user: f}}
    - name: feeds
      recipe: miniflux
      machines: [pi-1, pi-2]
      variables: {base_url: "https://feeds.example.org/"}
      requires: {db: feeds-db}
"""
    assert errors(text, tmp_path) == [
        "T/c.yaml:8:22: apps.list[1].requires.db: app 'feeds-db' runs on pi-1, not on pi-2 (hint: an app and what "
        "it requires share one machine (its Docker network and env files))"]


# ------------------------------------------------------------- the layers --

CONFIG = """\
version: 1
privilege: {{ssh_key: {key}, use_agent: false}}
compute:
  machines:
    - {{name: web, address: 10.0.0.1}}
    - {{name: pi, address: 10.0.0.2}}
ingress:
  machines: [web]
  domain: example.org
  tls: {{mode: internal}}
apps:
  list:
    - {{name: hello, recipe: whoami, machines: [web, pi], port: 20080}}
"""


def context(tmp_path: Path, command: str = "apply") -> RunContext:
    key = tmp_path / "id_ed25519"
    key.write_text("unused\n")
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG.format(key=key))
    cfg = load_config(path)
    ctx = RunContext(cfg, State(tmp_path / "c.state.json"), RunOptions(), command)
    for m in cfg.machines:
        ctx.add_host(HostTarget(m.name, m.address))
    ctx.outputs.publish(MeshAddresses({"web": "10.100.0.1", "pi": "10.100.0.2"}))
    return ctx


def test_the_caddyfile_balances_over_loopback_and_the_mesh(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = IngressLayer()
    plan = layer.diff(ctx, layer.observe(ctx, {"web": nothing_there()}))
    caddyfile = next(c for c in plan.changes if c.target == "web Caddyfile").ops[0].kwargs["commands"][0]
    # the Caddyfile the install script carries in its heredoc (its end marker: HOMELAB_CADDYFILE_<hash>)
    body = caddyfile[caddyfile.index("# Managed"):]
    golden(GOLDEN / "lb-through-layers.Caddyfile", body[:body.index("HOMELAB_CADDYFILE_")])


def test_the_apps_layer_deploys_a_copy_on_each_machine(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    layer = AppsLayer()
    assert sorted(h.name for h in layer.targets(ctx)) == ["pi", "web"]
    for host in ("web", "pi"):
        assert "apps.app.hello" in layer.probes(ctx, HostTarget(host, ""))
    monitors = layer.status(ctx, layer.observe(ctx, {}))
    assert [(m.subject, m.health) for m in monitors] == [("hello@web", Health.UNKNOWN), ("hello@pi", Health.UNKNOWN)]


def test_ingress_status_names_the_copy_that_is_down(tmp_path: Path) -> None:
    ctx = context(tmp_path, "status")
    layer = IngressLayer()
    probes = layer.probes(ctx, HostTarget("web", "10.0.0.1"))
    command = as_probe(probes["ingress.upstreams"]).command
    assert "http://127.0.0.1:20080/health" in command and "http://10.100.0.2:20080/health" in command
    probed = {"web": {**nothing_there(),
                      "ingress.upstreams": ProbeResult(0, "upstream hello web 200 0.002\nupstream hello pi 000 0.001\n")}}
    got = {m.subject: (m.health, m.reason) for m in layer.status(ctx, layer.observe(ctx, probed))
           if m.name == "upstream"}
    assert got == {"hello@web": (Health.OK, "http://127.0.0.1:20080/health 200 in 2 ms: in the pool"),
                   "hello@pi": (Health.WARN, "http://10.100.0.2:20080/health no answer: out of the pool, web serve "
                                             "the traffic")}


# ------------------------------------------------------------ pure parts --

TARGETS = [UpstreamTarget("hello", "a", "http://127.0.0.1:1/health"), UpstreamTarget("hello", "b", "http://10.1.0.2:1/health")]


def test_only_balanced_sites_are_probed_in_a_stable_order() -> None:
    settings = CaddySettings("a", {"b": "10.1.0.2"})
    sites = [Site("one.x", "one", (Upstream("b", 2),)),
             Site("hello.x", "hello", (Upstream("b", 1), Upstream("a", 1)), health_uri="/health")]
    assert balanced_targets(sites, settings) == TARGETS


def test_upstream_probe_round_trip_and_verdicts() -> None:
    script = render_upstream_probe(TARGETS)
    assert script.count("curl -s -o /dev/null --max-time 3") == 2 and " http://10.1.0.2:1/health " in script
    facts = parse_upstream_probe("upstream hello a 503 0.010\nupstream hello b 000 3.001\nnoise\n")
    assert facts == {("hello", "a"): UpstreamFacts(503, 0.01), ("hello", "b"): UpstreamFacts(0, 3.001)}
    both_down = upstream_monitors(TARGETS, facts)
    assert [(m.subject, m.health, m.reason) for m in both_down] == [
        ("hello@a", Health.FAIL, "http://127.0.0.1:1/health 503: no copy of hello answers"),
        ("hello@b", Health.FAIL, "http://10.1.0.2:1/health no answer: no copy of hello answers")]
    assert [m.health for m in upstream_monitors(TARGETS, None, " @ingress")] == [Health.UNKNOWN] * 2
    assert upstream_monitors(TARGETS, None, " @ingress")[0].subject == "hello@a @ingress"


@pytest.mark.parametrize("status,health", [(200, Health.OK), (204, Health.OK), (301, Health.WARN), (500, Health.WARN)])
def test_a_copy_is_in_the_pool_only_on_2xx(status: int, health: Health) -> None:
    facts = {("hello", "a"): UpstreamFacts(status, 0.001), ("hello", "b"): UpstreamFacts(200, 0.001)}
    assert upstream_monitors(TARGETS, facts)[0].health is health


# ------------------------------------------------- apps commands per copy --

class _Session:
    def __init__(self, log: list[tuple[str, str]], host: str, rc: int) -> None:
        self.log, self.host, self.rc = log, host, rc

    def run_script(self, script: str, timeout: float) -> object:
        self.log.append((self.host, script))
        return type("R", (), {"rc": self.rc, "stdout": "", "stderr": "boom" if self.rc else ""})()

    def close(self) -> None:
        pass


def test_restart_reaches_every_copy_and_names_the_one_that_failed(tmp_path: Path) -> None:
    from homelab.layers.apps.cli import restart_app

    apps = parse(HELLO, tmp_path / "c.yaml")
    log: list[tuple[str, str]] = []
    rcs = {"pi-1": 0, "pi-2": 1}
    engine = type("E", (), {"config": {"apps": apps},
                            "open_host": lambda self, h: _Session(log, h, rcs[h])})()
    ok, message = restart_app(engine, apps.app("hello"))
    assert [h for h, _ in log] == ["pi-1", "pi-2"] and all("docker compose -p hello" in s for _, s in log)
    assert not ok and message == "hello: restarted on pi-1\nhello@pi-2: restart failed: boom"


def test_plan_and_apply_leave_every_http_check_to_status(tmp_path: Path) -> None:
    """The copies' health, Anubis's /healthz, each app's HTTP answer and data size are read by
    the monitors only: a no-op runs no curl and no du on the host."""
    def probes(command: str) -> dict[str, str]:
        ctx = context(tmp_path, command)
        found = {**IngressLayer().probes(ctx, HostTarget("web", "")), **AppsLayer().probes(ctx, HostTarget("web", ""))}
        return {key: as_probe(p).command for key, p in found.items()}

    for command in ("plan", "apply"):
        got = probes(command)
        text = "\n".join(got.values())
        assert "curl" not in text and "du -sb" not in text and "ingress.upstreams" not in got
        assert "readlink /srv/homelab/hello/current" in got["apps.app.hello"]  # what the plan compares stays
    status = probes("status")
    assert "du -sb" in status["apps.app.hello"]
    assert "http://127.0.0.1:20080/health" in status["apps.app.hello"] and "ingress.upstreams" in status


def test_an_ingress_machine_that_runs_apps_asks_docker_dpkg_and_systemctl_once(tmp_path: Path) -> None:
    """The apps layer and the ingress layer (Caddy, Anubis) both read packages, units, file
    hashes, docker images and containers: the host's one script asks each once, and the Anubis
    image is inspected with the apps' images."""
    from homelab.probe import batch_groups, render_probe_script

    ctx = context(tmp_path)
    host = HostTarget("web", "10.0.0.1")
    groups = [dict(layer.probes(ctx, host)) for layer in (IngressLayer(), AppsLayer())]
    script, _ = render_probe_script(batch_groups(groups)[0])
    counts = {cmd: script.count(cmd) for cmd in ("docker ps", "docker image inspect", "docker inspect",
                                                 "dpkg-query", "systemctl", "sha256sum")}
    assert counts == dict.fromkeys(counts, 1)
    inspect = next(line for line in script.splitlines() if "docker image inspect" in line)
    assert "ghcr.io/techarohq/anubis" in inspect and "whoami" in inspect
