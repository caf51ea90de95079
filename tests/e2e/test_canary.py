"""The secret canary (issue 12's drill): a full-stack config on two lab hosts where every secret
reference resolves to a unique canary value, and the secrets generated on the hosts, appear in
no state file, run log, command output, TUI screen, or process argument list.

Layers: privilege (the API token: env), compute, mesh (preshared keys made on a host and handed
to its peer), permissions (firewall, hardened sshd), storage (a rest-server on h1 with a
credential made on h2, the repository password from env, a local repository with its own
password from a command), ingress on h2 (internal CA, Anubis with its key made on the host,
DNS records in the STAND-IN Hetzner API on loopback, homelab.lab.fake_hcloud), apps on h2
(radicale behind Anubis, postgres with a generated password). After apply, plan, status and a
backup run, and the TUI's dashboard and plan screens (Textual Pilot, same state), the corpus is
grepped for every canary and for every secret read back from the hosts.

Process arguments: a sampler inside each host (python3 from its base image) and one in this
process for the operator side read every /proc/*/cmdline every 50 ms during the apply and
the backup run, keeping the distinct ones. Not covered: s3 keys (no S3 store in the lab).
"""
from __future__ import annotations

import asyncio
import os
import re
import secrets as pysecrets
import subprocess
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.demo import render_lab_config
from tests.e2e.util import homelab

pytestmark = pytest.mark.lab

HOSTS = ["h1", "h2"]
CONTROL = "canarycontrol" + pysecrets.token_hex(8)  # not a secret: proves the samplers see short processes
CANARY = {name: f"canary{name.lower()}{pysecrets.token_hex(12)}" for name in ("TOKEN", "REPO", "USB")}

SAMPLER = r'''
import glob, os, signal, sys, time
out, seen, stop = sys.argv[1], set(), []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
def dump():
    with open(out + ".tmp", "w") as fh:
        fh.write("\n".join(sorted(seen)) + "\n")
    os.replace(out + ".tmp", out)
last = time.monotonic()
while not stop:
    for p in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(p, "rb") as fh:
                seen.add(fh.read().replace(b"\0", b" ").decode(errors="replace").strip())
        except OSError:
            pass
    if time.monotonic() - last > 2:
        dump(); last = time.monotonic()
    time.sleep(0.05)
dump()
'''

# every secret homelab or its apps generated on a host, one value a line
GENERATED = r'''
for f in /etc/wireguard/private.key /etc/wireguard/psk/*.psk /etc/homelab/storage/*.rest-password \
         /etc/homelab/storage/*.password $(find /srv /var/lib/homelab -name ed25519.key 2>/dev/null); do
  [ -f "$f" ] && { cat "$f"; echo; }
done
for f in $(find /srv/homelab -maxdepth 2 -name secrets.env 2>/dev/null); do sed -n 's/^HOMELAB_[A-Z0-9_]*=//p' "$f"; done
true
'''


def config_text(lab: Any, usb_password_file: Path) -> str:
    base = render_lab_config(lab.inventory(), hosts=HOSTS)
    assert "privilege:\n" in base
    return base.replace("privilege:\n", "privilege:\n  hcloud_token: {env: HCLOUD_TOKEN}\n", 1) + f"""\
mesh:
  preshared_keys: true  # made on h1, handed to h2 by the engine
  nodes:
    - {{name: h1, endpoint: auto}}
    - {{name: h2, endpoint: auto}}
permissions:
  users:
    - name: ops
      sudo: true
  revert_after: 30
storage:
  repositories:
    - {{name: nas, type: rest, machine: h1}}
    - {{name: usb, type: local, path: /srv/restic-usb, password: {{command: "cat {usb_password_file}"}}}}
  password: {{env: RESTIC_PASSWORD}}
  schedule: {{randomized_delay: "0"}}
ingress:
  machines: [h2]
  domain: lab.test
  tls: {{mode: internal}}
  dns: {{provider: hetzner, zone: lab.test}}
  anubis: {{mirror: "labrepo:5000"}}
apps:
  images: {{mirror: "labrepo:5000"}}
  list:
    - {{name: cal, recipe: radicale, machine: h2, anubis: true, variables: {{auth_type: none}}}}
    - {{name: db, recipe: postgres, machine: h2, variables: {{database: notes, user: notes}}}}
"""


class Samplers:
    """Distinct process argument lists seen on every host and on this machine while running."""

    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.pids: dict[str, int] = {}
        self.local: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        for host in HOSTS:
            self.lab.run(host, "cat > /run/canary-sampler.py", input=SAMPLER, check=True)
            out = self.lab.run(host, "setsid python3 /run/canary-sampler.py /run/canary-cmdlines >/dev/null 2>&1 "
                                     "</dev/null & echo $!", check=True)
            self.pids[host] = int(out.stdout.split()[0])
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample_here, daemon=True)
        self._thread.start()

    def _sample_here(self) -> None:
        while not self._stop.is_set():
            for p in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    self.local.add(p.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip())
                except OSError:
                    pass
            self._stop.wait(0.05)

    def stop(self) -> dict[str, str]:
        """Stop them (by PID) and return host -> the argument lists it saw, one a line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        seen = {"operator": "\n".join(sorted(self.local))}
        for host, pid in self.pids.items():
            self.lab.run(host, f"kill -TERM {pid}; for i in $(seq 50); do kill -0 {pid} 2>/dev/null || break; "
                               "sleep 0.1; done", check=True)
            seen[host] = self.lab.run(host, "cat /run/canary-cmdlines", check=True).stdout
        self.pids.clear()
        return seen


@pytest.fixture(scope="module")
def stack(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from hcloud import Client

    from homelab.lab.fake_hcloud import FakeHcloud

    lab.reset(*HOSTS)
    lab.ensure_images(["radicale", "postgres", "anubis"])
    tmp = tmp_path_factory.mktemp("canary")
    usb = tmp / "usb-password"  # what the command reference reads: the value is in no config
    usb.write_text(CANARY["USB"] + "\n")
    usb.chmod(0o600)
    cfg = tmp / "stack.yaml"
    cfg.write_text(config_text(lab, usb))
    samplers = Samplers(lab)
    with FakeHcloud(CANARY["TOKEN"]) as fake:  # the STAND-IN API: it accepts the canary token only
        Client(CANARY["TOKEN"], api_endpoint=fake.url).zones.create(name="lab.test", mode="primary")
        env = {"XDG_STATE_HOME": str(tmp / "xdg"), "HCLOUD_TOKEN": CANARY["TOKEN"],
               "RESTIC_PASSWORD": CANARY["REPO"], "HOMELAB_HCLOUD_ENDPOINT": fake.url}
        outputs: list[str] = []

        def run(*args: str) -> Any:
            out = homelab(*args, env=env, timeout=1500)
            outputs.extend([out.stdout, out.stderr])
            return out

        samplers.start()
        try:
            # the control: a short-lived process with a marker in its arguments, on a host and here
            lab.run("h2", f"sh -c 'sleep 0.3' {CONTROL}", check=True)
            subprocess.run(["sh", "-c", "sleep 0.3", CONTROL], check=True)
            applied = run("apply", str(cfg), "--yes", "--accept-new-host-keys")
            assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr[-4000:]
            backup = run("backup", str(cfg), "run")
            assert backup.returncode == 0, backup.stdout[-3000:] + backup.stderr[-3000:]
        finally:
            cmdlines = samplers.stop()
        plan = run("plan", str(cfg))
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
        status = run("status", str(cfg))
        outputs.append(status.stdout + status.stderr)  # a WARN (a timer not come round yet) may exit 0 or 1
        yield {"cfg": cfg, "tmp": tmp, "env": env, "outputs": outputs, "cmdlines": cmdlines, "fake": fake}


def operator_files(tmp: Path, cfg: Path, skip: set[Path]) -> dict[str, str]:
    """Every file homelab wrote on this machine: state (and .prev), pins, reviewed plans, run logs."""
    files: dict[str, str] = {}
    for p in sorted(tmp.rglob("*")):
        if p.is_file() and p not in skip and p != cfg:
            files[str(p.relative_to(tmp))] = p.read_bytes().decode(errors="replace")
    return files


def tui_screens(cfg: Path, env: dict[str, str]) -> dict[str, str]:
    """The TUI over the same config and state, headless (Pilot): dashboard after a status run, the
    plan screen after a plan; each screen exported as Textual renders it (SVG text)."""
    from homelab.tui.app import HomelabApp
    from homelab.tui.screens.plan_review import PlanScreen

    screens: dict[str, str] = {}

    async def finished(pilot: Any, timeout: float = 600) -> None:
        waited = 0.0
        while getattr(pilot.app.screen, "view", None) is None or pilot.app.screen.view.finished is None:
            assert waited < timeout, "the TUI's run did not finish"
            await pilot.pause(0.5)
            waited += 0.5
        await pilot.pause(0.5)

    async def walk() -> None:
        app = HomelabApp(cfg, refresh_seconds=3600)
        async with app.run_test(size=(200, 50)) as pilot:
            await finished(pilot)
            screens["dashboard"] = app.export_screenshot()
            await pilot.press("p")
            await pilot.pause(0.5)
            assert isinstance(app.screen, PlanScreen)
            await finished(pilot)
            screens["plan"] = app.export_screenshot()
            await pilot.press("ctrl+q")

    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        asyncio.run(walk())
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return screens


def generated_secrets(lab: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for host in HOSTS:
        out = lab.run(host, GENERATED, check=True).stdout
        found[host] = sorted({v.strip() for v in out.splitlines() if len(v.strip()) >= 16})
    return found


def leaks(corpus: dict[str, str], values: dict[str, str]) -> list[str]:
    """'<secret name> in <where>' for every value found (the value itself is never printed)."""
    return [f"{name} in {where}" for where, text in corpus.items() for name, value in values.items()
            if value and value in text]


def test_no_secret_anywhere(lab: Any, stack: dict[str, Any]) -> None:
    cfg, tmp = stack["cfg"], stack["tmp"]
    screens = tui_screens(cfg, stack["env"])
    assert "homelab" in screens["dashboard"] and "ingress" in screens["dashboard"]
    generated = generated_secrets(lab)
    # the drill proves something only if the hosts did make their secrets: WireGuard keys and the
    # pair's PSK on both, and on h2 the rest credential, the Anubis key, postgres' password
    assert len(generated["h1"]) >= 2 and len(generated["h2"]) >= 5, {h: len(v) for h, v in generated.items()}
    corpus = {
        **{f"file {k}": v for k, v in operator_files(tmp, cfg, {tmp / "usb-password"}).items()},
        **{f"output #{i}": text for i, text in enumerate(stack["outputs"])},
        **{f"TUI {name}": text for name, text in screens.items()},
        **{f"process arguments on {host}": text for host, text in stack["cmdlines"].items()},
    }
    assert any(k.startswith("file ") and k.endswith(".state.json") for k in corpus), sorted(corpus)
    assert any("/logs/" in k for k in corpus), sorted(corpus)  # the run logs are in the corpus
    # the samplers did see the apply: the worker here, sshd sessions and apt/docker on the hosts
    assert "homelab.provision.worker" in stack["cmdlines"]["operator"]
    assert re.search(r"docker|restic", stack["cmdlines"]["h2"]), stack["cmdlines"]["h2"][:2000]
    sampled = {k: v for k, v in corpus.items() if k.startswith("process arguments")}
    assert leaks(sampled, {"control": CONTROL}) == ["control in process arguments on operator",
                                                     "control in process arguments on h2"]
    values = {f"canary {k}": v for k, v in CANARY.items()}
    values.update({f"{host} generated #{i}": v for host, vs in generated.items() for i, v in enumerate(vs)})
    found = leaks(corpus, values)
    print(f"\ncanary: {len(CANARY)} canaries + {sum(map(len, generated.values()))} generated secrets, "
          f"{len(corpus)} places searched ({sum(len(t) for t in corpus.values()) // 1024} KiB), found: {len(found)}")
    assert not found, found
