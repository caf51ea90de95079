"""Ingress host mechanics on real lab hosts (Debian 13, caddy 2.6.2, pebble).

- every golden Caddyfile is valid for the Debian caddy;
- installing a Caddyfile is one script: unchanged is a no-op, a broken file never replaces the
  live one, and a port in use (which `caddy validate` misses) leaves the old config serving
  and the unit healthy, with Caddy's message;
- real ACME: Pebble on h1 issues h2's certificate (http-01/tls-alpn-01, validated for real),
  and h3 reaches https://app.lab.test/ trusting only Pebble's root (curl --cacert, no -k).

Run with LAB_HOSTS=3 (the three hosts are h1-h3).
"""
from __future__ import annotations

from pathlib import Path
import time
from typing import Any

import pytest

from homelab.lab.pebble import fetch_root_command, start_pebble
from homelab.layers.ingress.monitors import (ingress_monitors, parse_cert_probe, parse_https_probe,
                                             render_cert_probe, render_https_probe)
from homelab.layers.ingress.render import CaddySettings, Site, Upstream, render_caddyfile
from homelab.layers.ingress.scripts import ApplyResult, parse_apply_output, render_apply_script

pytestmark = pytest.mark.lab
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ingress"
APT = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"


def sh(lab: Any, host: str, cmd: str, timeout: float = 300) -> str:
    r = lab.run(host, cmd, timeout=timeout)
    assert r.returncode == 0, f"[{host}] {cmd!r} -> {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
    return r.stdout


def apply(lab: Any, host: str, caddyfile: str) -> ApplyResult:
    r = lab.run(host, "bash -s", input=render_apply_script(caddyfile), timeout=180)
    return parse_apply_output(r.returncode, r.stdout)


def app_server(lab: Any, host: str, port: int, body: str, bind: str = "127.0.0.1") -> None:
    """A tiny app: python's http.server, as a transient unit (stopped by the lab's reset/down)."""
    sh(lab, host, f"mkdir -p /srv/app{port} && echo {body} > /srv/app{port}/index.html && "
                  f"systemd-run --unit=app{port} python3 -m http.server {port} --bind {bind} -d /srv/app{port} "
                  f"&& for i in $(seq 50); do curl -sf http://{bind}:{port}/ >/dev/null && break; sleep 0.1; done")


@pytest.fixture(scope="module")
def hosts(lab: Any) -> list[str]:
    # the session's own Debian 13 hosts (not ones an e2e module added and hardened: "h10" sorts
    # before "h2"), made pristine: e2e modules before this one leave firewalls and services
    baseline = list(getattr(lab, "baseline_hosts", lab.host_names()))
    names = [n for n in baseline if lab.suite(n) == "trixie"][:3]
    if len(names) < 3:
        pytest.skip("needs 3 Debian 13 lab hosts (LAB_HOSTS=3)")
    lab.reset(*names)
    for h in names[:2]:
        sh(lab, h, f"{APT} caddy pebble openssl >/dev/null")
    sh(lab, names[2], f"{APT} openssl >/dev/null")
    return names


def test_golden_caddyfiles_are_valid_for_debian_caddy(lab: Any, hosts: list[str]) -> None:
    h = hosts[1]
    # the pebble case names a CA root file; any PEM will do for validation
    sh(lab, h, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=t "
               "-keyout /tmp/t.key -out /etc/caddy/acme-ca.pem 2>/dev/null")
    for path in sorted(GOLDEN.glob("*.Caddyfile")):
        r = lab.run(h, "cat > /tmp/golden.Caddyfile && caddy validate --adapter caddyfile --config /tmp/golden.Caddyfile",
                    input=path.read_text())
        assert r.returncode == 0, f"{path.name}: {r.stderr[-800:]}"


def test_a_broken_caddyfile_never_replaces_the_live_one(lab: Any, hosts: list[str]) -> None:
    h = hosts[0]
    app_server(lab, h, 9001, "hello-a")
    app_server(lab, h, 9002, "busy", bind="0.0.0.0")  # holds the port the last config wants
    settings = CaddySettings(h, {})
    site = Site("a.lab.test", "a", (Upstream(h, 9001),), internal_tls=True)
    good = render_caddyfile([site], settings)
    get = ("curl -sf --cacert /var/lib/caddy/.local/share/caddy/pki/authorities/local/root.crt "
           "--resolve a.lab.test:443:127.0.0.1 https://a.lab.test/")

    first = apply(lab, h, good)
    assert (first.status, first.message) == ("applied", "restart")  # from Debian's default Caddyfile
    assert sh(lab, h, f"for i in $(seq 50); do {get} && exit 0; sleep 0.2; done; exit 1").strip() == "hello-a"
    assert apply(lab, h, good).status == "unchanged"
    second = render_caddyfile([Site("a.lab.test", "a", (Upstream(h, 9001),), internal_tls=True),
                               Site("b.lab.test", "b", (Upstream(h, 9001),), internal_tls=True)], settings)
    assert (apply(lab, h, second).status, apply(lab, h, second).status) == ("applied", "unchanged")

    # refused by validate: nothing touched
    invalid = apply(lab, h, second.replace("header_up X-Real-Ip {remote_host}", "lb_policy no_such_policy"))
    assert invalid.status == "invalid" and "no_such_policy" in invalid.message, invalid
    # validate passes but the port is another process's: refused before Caddy sees it
    busy = apply(lab, h, second + "\nhttp://:9002 {\n\trespond busy\n}\n")
    assert (busy.status, busy.message) == ("port-busy", "port 9002 is in use by python3"), busy
    assert_serving(lab, h, second, get)
    # validate and the port check pass, the reload fails (no such address here): old file back,
    # Caddy restarted onto it, so no listener leaked by the failure (caddy#7175) is left
    gone = apply(lab, h, second + "\nhttp://10.99.99.99:9010 {\n\tbind 10.99.99.99\n\trespond x\n}\n")
    assert gone.status == "reload-failed" and "10.99.99.99:9010" in gone.message, gone
    assert gone.old_config_serving
    assert_serving(lab, h, second, get)
    # and the next good apply reloads at once (a unit stuck in "reloading" would not)
    assert apply(lab, h, good) == ApplyResult("applied", "reload")
    assert_serving(lab, h, good, get)


def assert_serving(lab: Any, h: str, live: str, get: str) -> None:
    """The live file is `live`, the unit is healthy, one :443 listener, and every request answers."""
    assert sh(lab, h, "cat /etc/caddy/Caddyfile") == live
    assert sh(lab, h, "systemctl show caddy -p ActiveState -p SubState").split() == \
        ["ActiveState=active", "SubState=running"]
    assert sh(lab, h, "ss -ltnH '( sport = :443 )' | wc -l").strip() == "1"
    got = sh(lab, h, f"for i in $(seq 20); do {get} || echo FAILED; done").split()
    assert got == ["hello-a"] * 20, got


def test_acme_with_pebble_seen_from_a_third_host(lab: Any, hosts: list[str]) -> None:
    ca_host, web, client = hosts
    web_ip = str(lab.address(web))
    pebble = start_pebble(lab, ca_host, {"app.lab.test": web_ip})
    assert lab.run(web, "cat > /etc/caddy/acme-ca.pem && chmod 644 /etc/caddy/acme-ca.pem",
                   input=pebble.listener_ca).returncode == 0
    app_server(lab, web, 8080, "hello-from-the-app")
    settings = CaddySettings(web, {}, email="ops@lab.test", acme_ca=pebble.directory,
                             acme_ca_root="/etc/caddy/acme-ca.pem")
    result = apply(lab, web, render_caddyfile([Site("app.lab.test", "app", (Upstream(web, 8080),))], settings))
    assert result.ok, result

    # from the third host: Pebble's root from its management API, then HTTPS trusting only it
    lab.run(client, "cat > /tmp/listener-ca.pem", input=pebble.listener_ca)
    sh(lab, client, fetch_root_command(pebble, "/tmp/listener-ca.pem", "/tmp/pebble-root.pem"))
    get = "curl -sS --fail --cacert /tmp/pebble-root.pem --resolve app.lab.test:443:" + web_ip + " https://app.lab.test/"
    # Pebble validates for real (with PEBBLE_VA_NOSLEEP): issuance takes a few seconds
    out = sh(lab, client, f"for i in $(seq 60); do {get} 2>/dev/null && exit 0; sleep 1; done; {get}", timeout=120)
    assert out.strip() == "hello-from-the-app"
    issuer = sh(lab, client, f"echo | openssl s_client -connect {web_ip}:443 -servername app.lab.test 2>/dev/null "
                             "| openssl x509 -noout -issuer")
    assert "Pebble" in issuer, issuer
    # the access log has the real client address of the third host
    log = sh(lab, web, "cat /var/log/caddy/access-app.lab.test.log")
    assert f'"remote_ip":"{lab.address(client)}"' in log
    # the monitors' probes, run on the ingress host itself, judge the same site healthy
    certs = parse_cert_probe(sh(lab, web, render_cert_probe(["app.lab.test"])))
    https = parse_https_probe(sh(lab, web, render_https_probe(["app.lab.test"])))
    cert, probe = ingress_monitors(["app.lab.test"], certs, https, time.time())
    assert cert.health.value == "OK" and "Pebble" in cert.reason, cert
    assert probe.health.value == "OK" and probe.reason.startswith("200 in "), probe


def test_an_app_on_two_machines_keeps_answering_when_one_stops(lab: Any, hosts: list[str]) -> None:
    one, web, two = hosts
    for h in (one, two):
        app_server(lab, h, 8081, f"served-by-{h}", bind="0.0.0.0")
    # stand-in for the mesh: the lab's own addresses (no WireGuard in this test)
    mesh = {h: str(lab.address(h)) for h in hosts}
    site = Site("lb.lab.test", "lb", (Upstream(one, 8081), Upstream(two, 8081)), internal_tls=True)
    assert apply(lab, web, render_caddyfile([site], CaddySettings(web, mesh))).ok
    # one line per request: "<body> <status>" (000: no answer)
    get = ("echo $(curl -s --max-time 10 -w ' %{http_code}' --cacert /var/lib/caddy/.local/share/caddy/pki/"
           "authorities/local/root.crt --resolve lb.lab.test:443:127.0.0.1 https://lb.lab.test/)")
    before = sh(lab, web, f"for i in $(seq 50); do {get} | grep -q ' 200$' && break; sleep 0.2; done; "
                          f"for i in $(seq 6); do {get}; done").splitlines()
    assert {line for line in before} == {f"served-by-{one} 200", f"served-by-{two} 200"}, before  # round robin
    # requests every 0.1 s while the app on `two` stops: none may fail
    lab.run(web, f"( for i in $(seq 40); do {get}; sleep 0.1; done > /tmp/lb.out 2>&1 & )")
    time.sleep(1.0)
    sh(lab, two, "systemctl stop app8081")
    time.sleep(4.5)
    out = sh(lab, web, "sleep 1; cat /tmp/lb.out").splitlines()
    assert len(out) == 40 and all(line.endswith(" 200") for line in out), out
    assert out[-10:] == [f"served-by-{one} 200"] * 10  # the dead upstream is out of the rotation
