"""An app on two machines, load-balanced through the layers (LAB_HOSTS=2, Debian 13).

One apply of compute + mesh + ingress + apps: h1 runs Caddy (internal CA) and a copy of
`hello` (the whoami recipe; the lab serves a STAND-IN image under whoami's name, see
homelab/lab/images/files/whoami_standin.py), h2 runs the other copy. Caddy reaches the copy on
h1 at 127.0.0.1 and the one on h2 at its mesh address. h2 is also the client: it trusts only
the root `homelab ca export` gives (curl --cacert, never -k). whoami answers with its container's
hostname, so each answer names the copy that served it.

Proven: both copies answer; `docker stop` of one copy costs at most one failed request in a loop
and the rest go to the other copy within seconds; status names the stopped copy; started
again, it rejoins; a second apply changes nothing.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.demo import render_lab_config
from tests.e2e.util import homelab, state_of

pytestmark = pytest.mark.lab
HOSTS = ["h1", "h2"]
URL = "https://hello.lab.test/"
ROOT = "/tmp/hello-root.pem"
# one line per request: <epoch seconds> <status> <hostname of the copy that answered>
LOOP = ("for i in $(seq {n}); do code=$(curl -s -o /tmp/hello.out --max-time 5 --cacert " + ROOT + " -w '%{{http_code}}' "
        + URL + "); echo \"$(date +%s.%N) $code $(sed -n 's/^Hostname: //p' /tmp/hello.out)\"; sleep {pause}; done")


def sh(lab: Any, host: str, cmd: str, timeout: float = 300) -> str:
    r = lab.run(host, cmd, timeout=timeout)
    assert r.returncode == 0, f"[{host}] {cmd!r} -> {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}"
    return r.stdout


def container(lab: Any, host: str) -> tuple[str, str]:
    """(id, hostname) of hello's container on host; its hostname is what whoami answers."""
    cid = sh(lab, host, "docker ps -aq --filter label=com.docker.compose.project=hello").split()
    assert len(cid) == 1, cid
    return cid[0], sh(lab, host, f"docker inspect -f '{{{{.Config.Hostname}}}}' {cid[0]}").strip()


def answers(lab: Any, n: int, pause: float = 0.2) -> list[tuple[float, str, str]]:
    out = []
    for line in sh(lab, "h2", LOOP.format(n=n, pause=pause), timeout=60 + n * 6).splitlines():
        bits = line.split()
        out.append((float(bits[0]), bits[1], bits[2] if len(bits) > 2 else ""))
    return out


@pytest.fixture(scope="module")
def setup(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if len(lab.host_names()) < 2:
        pytest.skip("needs 2 lab hosts (LAB_HOSTS=2)")
    lab.reset(*HOSTS)
    mirror = lab.ensure_images(["whoami"])["whoami"].split("/", 1)[0]
    tmp = tmp_path_factory.mktemp("lb")
    cfg = tmp / "lb.yaml"
    cfg.write_text(render_lab_config(lab.inventory(), hosts=HOSTS) + f"""\
mesh:
  nodes:
    - {{name: h1, endpoint: auto}}
    - {{name: h2, endpoint: auto}}
ingress:
  machines: [h1]
  domain: lab.test
  tls: {{mode: internal}}
apps:
  images: {{mirror: "{mirror}"}}
  list:
    - {{name: hello, recipe: whoami, machines: [h1, h2]}}
""")
    env = {"XDG_STATE_HOME": str(tmp / "xdg")}
    out = homelab("apply", str(cfg), "--yes", "--accept-new-host-keys", env=env, timeout=1500)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    root = tmp / "root.pem"
    got = homelab("ca", "export", str(cfg), "-o", str(root), env=env)
    assert got.returncode == 0, got.stderr
    lab.run("h2", f"cat > {ROOT}", input=root.read_text())
    sh(lab, "h2", f"printf '{lab.address('h1')} hello.lab.test\\n' >> /etc/hosts")
    # Caddy's internal CA issues the site's certificate moments after the first start
    sh(lab, "h2", f"for i in $(seq 60); do curl -sf --cacert {ROOT} -o /dev/null {URL} && exit 0; sleep 1; done; "
                  f"curl -sS --fail --cacert {ROOT} -o /dev/null {URL}", timeout=120)
    yield {"cfg": cfg, "env": env, "copies": {h: container(lab, h) for h in HOSTS}}


def status(setup: dict[str, Any]) -> dict[str, tuple[str, str]]:
    out = homelab("status", str(setup["cfg"]), "--json", env=setup["env"])
    doc = json.loads(out.stdout)
    return {m["subject"]: (m["health"], m["reason"]) for m in doc["layers"]["ingress"] if m["name"] == "upstream"}


def wait_status(setup: dict[str, Any], want: dict[str, str], seconds: float = 30) -> dict[str, tuple[str, str]]:
    deadline = time.monotonic() + seconds
    while True:
        got = status(setup)
        if {k: v[0] for k, v in got.items()} == want or time.monotonic() > deadline:
            return got
        time.sleep(2)


def test_the_upstreams_are_loopback_and_the_mesh(lab: Any, setup: dict[str, Any]) -> None:
    mesh = state_of(setup["cfg"])["sections"]["mesh"]["addresses"]
    caddyfile = sh(lab, "h1", "cat /etc/caddy/Caddyfile")
    line = next(ln.strip() for ln in caddyfile.splitlines() if ln.strip().startswith("reverse_proxy"))
    port = line.split()[1].rsplit(":", 1)[1]
    assert line == f"reverse_proxy 127.0.0.1:{port} {mesh['h2']}:{port} {{", caddyfile
    for directive in ("lb_policy round_robin", "health_uri /health", "health_interval 2s", "fail_duration 30s"):
        assert directive in caddyfile


def test_both_copies_answer(lab: Any, setup: dict[str, Any]) -> None:
    got = answers(lab, 12, pause=0.1)
    assert all(code == "200" for _, code, _ in got), got
    assert {name for _, _, name in got} == {h for _, h in setup["copies"].values()}, (got, setup["copies"])
    upstreams = wait_status(setup, {"hello@h1": "OK", "hello@h2": "OK"})
    assert set(upstreams) == {"hello@h1", "hello@h2"}, upstreams
    for subject, (health, reason) in upstreams.items():
        assert health == "OK" and "/health 200 in " in reason, (subject, reason)


def test_a_stopped_copy_is_left_within_seconds_and_rejoins(lab: Any, setup: dict[str, Any]) -> None:
    cid, stopped = setup["copies"]["h2"]
    _, other = setup["copies"]["h1"]
    # on h2 alone (the client and the copy that stops): one clock for the requests and the stop
    script = (f"rm -f /tmp/loop.log; ( {LOOP.format(n=60, pause=0.2)} ) > /tmp/loop.log 2>&1 &\n"
              "while [ $(wc -l < /tmp/loop.log) -lt 10 ]; do sleep 0.1; done\n"
              f"echo \"stop $(date +%s.%N)\"; docker stop {cid} >/dev/null; wait; cat /tmp/loop.log\n")
    lines = sh(lab, "h2", script, timeout=600).splitlines()
    t_stop = float(lines[0].split()[1])
    got = [(float(b[0]), b[1], b[2] if len(b) > 2 else "") for b in (ln.split() for ln in lines[1:])]
    failed = [g for g in got if g[1] != "200"]
    last_stopped = max((g[0] for g in got if g[2] == stopped), default=t_stop)
    print(f"stop: {len(got)} requests, {len(failed)} failed, the stopped copy last answered "
          f"{last_stopped - t_stop:+.2f} s after docker stop")
    assert len(failed) <= 1, (failed, got)  # Caddy retries a refused request on the other copy
    before = [g for g in got if g[0] < t_stop]
    assert {g[2] for g in before} == {stopped, other}, before  # both served before the stop
    settled = [g for g in got if g[0] > t_stop + 3]
    assert len(settled) > 20 and {g[2] for g in settled} == {other}, got  # within 3 s only the live copy answers
    down = wait_status(setup, {"hello@h1": "OK", "hello@h2": "WARN"})
    assert down["hello@h2"][0] == "WARN" and "out of the pool, h1 serve the traffic" in down["hello@h2"][1], down

    sh(lab, "h2", f"docker start {cid} >/dev/null")
    t_start = time.monotonic()
    # back in the pool at the next passing active check (every 2 s), once a passive failure aged out (30 s)
    names: set[str] = set()
    while time.monotonic() < t_start + 60 and names != {stopped, other}:
        names = {g[2] for g in answers(lab, 6, pause=0.1) if g[1] == "200"}
    print(f"rejoined within {time.monotonic() - t_start:.1f} s of docker start")
    assert names == {stopped, other}, names
    assert {k: v[0] for k, v in wait_status(setup, {"hello@h1": "OK", "hello@h2": "OK"}).items()} == {
        "hello@h1": "OK", "hello@h2": "OK"}


def test_second_apply_changes_nothing(setup: dict[str, Any]) -> None:
    again = homelab("apply", str(setup["cfg"]), "--yes", env=setup["env"], timeout=900)
    assert again.returncode == 0 and "apply ok: 0 change(s)" in again.stderr, again.stdout + again.stderr
    assert homelab("plan", str(setup["cfg"]), env=setup["env"]).returncode == 0
