"""Layer 5 end to end: `homelab apply` of compute + ingress + apps on real lab hosts (LAB_HOSTS=3).

- h1 runs Pebble (real ACME, validating for real), h2 is the machine (Caddy, Anubis, the apps),
  h3 is a client that trusts only Pebble's root (curl --cacert, never -k);
- the apps are the lab build of radicale, pulled through the lab registry (`apps.images.mirror`),
  one of them behind Anubis — the lab's STAND-IN image under Anubis's name (homelab/lab/images);
- DNS: the stand-in Hetzner API (homelab.lab.fake_hcloud, NOT Hetzner) on this machine's
  loopback holds zone lab.test; the records it ends up with are the ones the plan named: A to
  h2's address and AAAA to the `ipv6` the config gives h2 (a documentation address: the lab
  network has no IPv6, and nothing dials it).

Two clients solve Anubis's challenge. This test's own (the PyPI anubis-solver speaks an older
Anubis format) reads the challenge from the page, finds the proof-of-work and calls
pass-challenge, as the page's JS does. And a client no one here wrote: headless Chromium
(Debian's package, on this machine, build/install.sh) in h3's network namespace, trusting only
the internal root through its NSS db (homelab.lab.browser), runs the page's JS and ends on the app.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.browser import load_page
from homelab.lab.demo import render_lab_config
from homelab.lab.pebble import fetch_root_command, start_pebble
from tests.e2e.util import homelab

pytestmark = pytest.mark.lab
ACME_CA_ROOT = "/etc/homelab-acme-ca.pem"  # put there by the person (here: the test), as Pebble's listener CA
APT = "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
H2_IPV6 = "2001:db8::12"

SOLVE = r'''
import hashlib, json, re, ssl, sys, urllib.parse, http.client
host, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def get(path, cookie=""):
    c = http.client.HTTPSConnection(host, 443, context=ctx, timeout=20)
    c.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) lab", "Cookie": cookie})
    r = c.getresponse()
    return r.status, r.getheader("Location"), [v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie"], r.read().decode()
status, _, cookies, page = get("/.web/")
data = json.loads(re.search(r'<script id="anubis_challenge" type="application/json">(.*?)</script>', page).group(1))
ch = data["challenge"]
nonce = 0
while not hashlib.sha256(f"{ch['randomData']}{nonce}".encode()).hexdigest().startswith("0" * ch["difficulty"]):
    nonce += 1
h = hashlib.sha256(f"{ch['randomData']}{nonce}".encode()).hexdigest()
q = urllib.parse.urlencode({"id": ch["id"], "response": h, "nonce": nonce, "elapsedTime": 5, "redir": "/.web/"})
status2, loc, auth, _ = get(f"/.within.website/x/cmd/anubis/api/pass-challenge?{q}", "; ".join(cookies))
status3, _, _, app = get("/.web/", "; ".join(auth))
print(json.dumps({"challenge": status, "difficulty": ch["difficulty"], "pass": status2, "app": status3, "page": app}))
'''


def sh(lab: Any, host: str, cmd: str, timeout: float = 300) -> str:
    r = lab.run(host, cmd, timeout=timeout)
    assert r.returncode == 0, f"[{host}] {cmd!r} -> {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
    return r.stdout


def config_text(lab: Any, pebble: Any, mirror: str, apps: str) -> str:
    h2 = f"address: {lab.address('h2')}\n"
    return render_lab_config(lab.inventory(), hosts=["h2"]).replace(h2, f"{h2}      ipv6: {H2_IPV6}\n") + f"""\
ingress:
  machines: [h2]
  domain: lab.test
  tls: {{mode: acme, email: ops@lab.test, ca: "{pebble.directory}", ca_root: {ACME_CA_ROOT}}}
  dns: {{provider: hetzner, zone: lab.test}}
  anubis: {{mirror: "{mirror}"}}
  apps:
    - {{name: notes, tls: internal}}  # its root comes from `homelab ca export`
apps:
  images: {{mirror: "{mirror}"}}
  list:
{apps}"""


# auth none: the htpasswd users file is the person's to write (recipes/radicale.yaml)
CAL = "    - {name: cal, recipe: radicale, machine: h2, port: 20001, variables: {auth_type: none}}\n"
NOTES = "    - {name: notes, recipe: radicale, machine: h2, port: 20002, anubis: true, variables: {auth_type: none}}\n"


@pytest.fixture(scope="module")
def setup(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from hcloud import Client

    from homelab.lab.fake_hcloud import FakeHcloud

    if len(lab.host_names()) < 3:
        pytest.skip("needs 3 lab hosts (LAB_HOSTS=3)")
    lab.reset("h1", "h2", "h3")
    refs = lab.ensure_images(["radicale", "anubis"])
    mirror = refs["radicale"].split("/", 1)[0]
    sh(lab, "h1", f"{APT} pebble openssl >/dev/null")
    h2 = str(lab.address("h2"))
    pebble = start_pebble(lab, "h1", {"cal.lab.test": h2, "notes.lab.test": h2})
    lab.run("h2", f"cat > {ACME_CA_ROOT} && chmod 644 {ACME_CA_ROOT}", input=pebble.listener_ca)
    # the client: Pebble's root (from its management API), the names at h2 (no DNS server in the lab)
    lab.run("h3", "cat > /tmp/listener-ca.pem", input=pebble.listener_ca)
    sh(lab, "h3", fetch_root_command(pebble, "/tmp/listener-ca.pem", "/tmp/pebble-root.pem"))
    sh(lab, "h3", f"printf '{h2} cal.lab.test notes.lab.test\\n' >> /etc/hosts")
    tmp = tmp_path_factory.mktemp("ingress")
    with FakeHcloud("tok") as fake:
        Client("tok", api_endpoint=fake.url).zones.create(name="lab.test", mode="primary")
        cfg = tmp / "ingress.yaml"
        cfg.write_text(config_text(lab, pebble, mirror, CAL + NOTES))
        env = {"XDG_STATE_HOME": str(tmp / "xdg"), "HCLOUD_TOKEN": "tok", "HOMELAB_HCLOUD_ENDPOINT": fake.url}
        yield {"cfg": cfg, "env": env, "fake": fake, "pebble": pebble, "mirror": mirror, "h2": h2}


def run(setup: dict[str, Any], command: str, *args: str) -> Any:
    return homelab(command, str(setup["cfg"]), *args, env=setup["env"], timeout=1200)


def records(setup: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    from hcloud import Client
    from hcloud.zones import Zone

    found = Client("tok", api_endpoint=setup["fake"].url).zones.get_rrset_all(Zone(name="lab.test"), type=["A", "AAAA"])
    return {(r.name, r.type): sorted(x.value for x in r.records or []) for r in found}


def test_plan_apply_converge_then_nothing_to_do(lab: Any, setup: dict[str, Any]) -> None:
    plan = run(setup, "plan", "--accept-new-host-keys")
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert "+ cal A " + setup["h2"] in plan.stdout and "+ notes A " + setup["h2"] in plan.stdout, plan.stdout
    assert f"+ cal AAAA {H2_IPV6}" in plan.stdout and f"+ notes AAAA {H2_IPV6}" in plan.stdout, plan.stdout
    out = run(setup, "apply", "--yes", "--accept-new-host-keys")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    # the records in the stand-in API are the ones the plan named
    assert records(setup) == {("cal", "A"): [setup["h2"]], ("notes", "A"): [setup["h2"]],
                              ("cal", "AAAA"): [H2_IPV6], ("notes", "AAAA"): [H2_IPV6]}
    again = run(setup, "apply", "--yes")
    assert again.returncode == 0 and "apply ok: 0 change(s)" in again.stderr, again.stdout + again.stderr


def test_the_app_answers_through_ingress_with_the_pebble_certificate(lab: Any, setup: dict[str, Any]) -> None:
    get = "curl -sS --fail -o /dev/null -w '%{http_code}' --cacert /tmp/pebble-root.pem https://cal.lab.test/.web/"
    # Pebble validates for real: issuance takes a few seconds after Caddy started
    code = sh(lab, "h3", f"for i in $(seq 90); do {get} 2>/dev/null && exit 0; sleep 1; done; {get}", timeout=150)
    assert code.strip() == "200"
    issuer = sh(lab, "h3", "echo | openssl s_client -connect cal.lab.test:443 -servername cal.lab.test 2>/dev/null "
                           "| openssl x509 -noout -issuer")
    assert "Pebble" in issuer, issuer


@pytest.fixture(scope="module")
def internal_root(setup: dict[str, Any]) -> str:
    """notes has tls: internal: its clients trust the root `homelab ca export` reads from h2."""
    root = setup["cfg"].with_name("internal-root.crt")
    out = homelab("ca", "export", str(setup["cfg"]), "-o", str(root), env=setup["env"])
    assert out.returncode == 0 and root.read_text().startswith("-----BEGIN CERTIFICATE-----"), out.stderr
    return root.read_text()


def test_anubis_challenges_a_client_without_cookie_and_passes_a_solved_one(lab: Any, setup: dict[str, Any],
                                                                           internal_root: str) -> None:
    lab.run("h3", "cat > /tmp/internal-root.pem", input=internal_root)
    get = "curl -sS --fail --cacert /tmp/internal-root.pem https://notes.lab.test/.web/"
    page = sh(lab, "h3", f"for i in $(seq 90); do {get} 2>/dev/null && exit 0; sleep 1; done; {get}", timeout=150)
    assert 'id="anubis_challenge"' in page and "Radicale" not in page  # the challenge, not the app
    lab.run("h3", "cat > /tmp/solve.py", input=SOLVE)
    got = json.loads(sh(lab, "h3", "python3 /tmp/solve.py notes.lab.test /tmp/internal-root.pem"))
    assert (got["challenge"], got["pass"], got["app"], got["difficulty"]) == (200, 302, 200, 4), got["page"][:500]
    assert "<title>Radicale Web Interface</title>" in got["page"], got["page"][:500]
    # the app's site log has the real client address of h3 (Caddy sends X-Real-Ip to Anubis)
    log = sh(lab, "h2", "cat /var/log/caddy/access-notes.lab.test.log")
    assert f'"remote_ip":"{lab.address("h3")}"' in log


def test_headless_chromium_on_h3_solves_anubis_and_ends_on_the_app(lab: Any, setup: dict[str, Any],
                                                                   internal_root: str) -> None:
    h3 = str(lab.address("h3"))
    names = {"notes.lab.test": setup["h2"]}
    url = "https://notes.lab.test/.web/"
    # the trust is real: with only Pebble's root in its NSS db, Chromium refuses the internal CA's certificate
    pebble_root = sh(lab, "h3", "cat /tmp/pebble-root.pem")
    refused = load_page(lab.config.host_ns("h3"), url, pebble_root, names, timeout=60)
    assert "ERR_CERT_AUTHORITY_INVALID" in refused.stderr and "Radicale" not in refused.dom, refused.stderr[-1500:]
    got = load_page(lab.config.host_ns("h3"), url, internal_root, names, timeout=90)
    assert got.returncode == 0, got.stderr[-3000:]
    # the page's own JS found the proof-of-work and followed pass-challenge's redirect back to the app
    assert "<title>Radicale Web Interface" in got.dom and 'id="anubis_challenge"' not in got.dom, got.dom[:800]
    cookies = {c.name: c for c in got.cookies if c.host.endswith("notes.lab.test")}
    auth = [c for n, c in cookies.items() if n.startswith("techaro.lol-anubis-auth-")]
    assert len(auth) == 1 and auth[0].secure, got.cookies
    # Caddy saw Chromium's requests from h3's address, and Anubis signed the cookie for h3 (X-Real-Ip)
    lines = [json.loads(x) for x in sh(lab, "h2", "cat /var/log/caddy/access-notes.lab.test.log").splitlines()]
    chrome = [x for x in lines if "HeadlessChrome" in " ".join(x["request"]["headers"].get("User-Agent", []))]
    assert chrome and {x["request"]["remote_ip"] for x in chrome} == {h3}, chrome[:2]
    passed = [x for x in chrome if x["request"]["uri"].startswith("/.within.website/x/cmd/anubis/api/pass-challenge")]
    assert [x["status"] for x in passed] == [302], passed
    assert any(x["request"]["uri"] == "/.web/" and x["status"] == 200 for x in chrome), chrome
    anubis = sh(lab, "h2", "docker logs homelab-anubis-notes 2>&1 | grep 'challenge passed' | tail -n 1")
    assert f'client="{h3}"' in anubis, anubis


def test_status_is_ok(lab: Any, setup: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while True:
        out = run(setup, "status", "--json")
        ingress = json.loads(out.stdout)["layers"]["ingress"]
        bad = [m for m in ingress if m["health"] != "OK"]
        if not bad or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not bad, bad
    names = {(m["subject"], m["name"]) for m in ingress}
    assert {("h2", "caddy"), ("notes", "anubis"), ("cal.lab.test", "certificate"), ("notes.lab.test", "https"),
            ("dns", "cal A"), ("dns", "cal AAAA")} <= names, names


def test_removing_an_app_removes_its_route_anubis_and_record(lab: Any, setup: dict[str, Any]) -> None:
    cfg: Path = setup["cfg"]
    cfg.write_text(config_text(lab, setup["pebble"], setup["mirror"], CAL))
    out = run(setup, "apply", "--yes")
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert records(setup) == {("cal", "A"): [setup["h2"]], ("cal", "AAAA"): [H2_IPV6]}
    caddyfile = sh(lab, "h2", "cat /etc/caddy/Caddyfile")
    assert "notes.lab.test" not in caddyfile and "cal.lab.test {" in caddyfile
    assert sh(lab, "h2", "docker ps -a --filter label=homelab.anubis -q").strip() == ""
    again = run(setup, "apply", "--yes")
    assert again.returncode == 0 and "apply ok: 0 change(s)" in again.stderr, again.stdout + again.stderr
