"""The `service` kind: a Debian package run as a hardened systemd unit, health-gated like a release.

One script per deploy (pure render): install the package if missing (and stop the package's
own unit of the same name, which would hold the port), make the recipe's system user if the
package does not, create the data directories, install the unit and restart it, then wait for
its health check. A unit that does not get healthy is replaced by the previous one (kept as
.prev) and restarted — the same "rolls back by itself" as compose releases (exit 3).
"""
from __future__ import annotations

import hashlib
import shlex

from homelab.config.apps import App
from homelab.config.recipe import Recipe
from homelab.errors import HomelabError
from homelab.layers.apps.render import render_service_unit, unit_name
from homelab.model import Health, Monitor
from homelab.provision.apt_lock import APT_GET
from homelab.probe import Probe, ProbeResult

UNIT_DIR = "/etc/systemd/system"
GATE_SECONDS = 60
ROLLED_BACK = 3


def unit_path(app: App) -> str:
    return f"{UNIT_DIR}/{unit_name(app)}"


def unit_sha(app: App, recipe: Recipe) -> str:
    return hashlib.sha256(render_service_unit(app, recipe, app.data_dir).encode()).hexdigest()


def _health_command(app: App, recipe: Recipe) -> str:
    svc = recipe.services[0]
    h = svc.healthcheck
    if h is None:
        return f"systemctl is-active -q {shlex.quote(unit_name(app))}"
    if h.form == "command":
        return " ".join(shlex.quote(a) for a in h.command)
    port = svc.port(h.port or "") if h.port else (svc.ports[0] if svc.ports else None)
    if port is None:
        raise HomelabError(f"{app.name}: its health check names no port")
    if h.form == "http":
        url = shlex.quote(f"http://127.0.0.1:{port.port}{h.http_path}")
        return f"[ \"$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 {url})\" = {h.http_expect} ]"
    return f"(exec 3<>/dev/tcp/127.0.0.1/{port.port}) 2>/dev/null"


def render_service_deploy(app: App, recipe: Recipe) -> str:
    unit = render_service_unit(app, recipe, app.data_dir)
    svc = recipe.services[0]
    name = unit_name(app)
    u, n, d = shlex.quote(unit_path(app)), shlex.quote(name), shlex.quote(app.data_dir)
    pkg = shlex.quote(recipe.package or "")
    lines = [
        "#!/bin/bash",
        "set -eu",
        # claimed (NeedsPackage): compute's one apt transaction installed it; this is the fallback
        f"if ! dpkg-query -W -f='${{db:Status-Abbrev}}' {pkg} 2>/dev/null | grep -q '^ii'; then",
        f"  DEBIAN_FRONTEND=noninteractive {APT_GET} install -y -q {pkg} >/dev/null",
        "fi",
        # the package's own unit (radicale.service ...) would hold the same port: ours runs it
        f"if systemctl is-enabled -q {pkg}.service 2>/dev/null || systemctl is-active -q {pkg}.service; then",
        f"  systemctl disable --now {pkg}.service >/dev/null 2>&1 || true",
        "fi",
    ]
    owner = ""
    if svc.user:
        user = shlex.quote(svc.user)
        lines.append(f"id -u {user} >/dev/null 2>&1 || useradd --system --no-create-home --home-dir {d} "
                     f"--shell /usr/sbin/nologin {user}")
        owner = f" && chown {user}: \"$v\""
    lines.append(f"mkdir -p {d}")
    for v in svc.volumes:
        if v.source is None:
            lines.append(f"v={d}/{shlex.quote(v.name)}; [ -d \"$v\" ] || {{ mkdir -p \"$v\"{owner}; }}")
    lines += [
        f"trap 'rm -f {u}.new' EXIT",  # a write that failed half-way (a full disk) leaves no .new behind
        f"cat > {u}.new <<'HOMELAB_EOF'",
        unit.rstrip("\n"),
        "HOMELAB_EOF",
        f"if cmp -s {u}.new {u} && systemctl is-active -q {n}; then rm -f {u}.new; echo unchanged; exit 0; fi",
        f"if [ -f {u} ]; then cp -p {u} {u}.prev; fi",
        f"mv -f {u}.new {u}",
        f"systemctl daemon-reload && systemctl enable -q {n} && systemctl restart {n}",
        f"healthy() {{ {_health_command(app, recipe)}; }}",
        f"for i in $(seq {GATE_SECONDS // 2}); do if healthy; then echo deployed; exit 0; fi; sleep 2; done",
        f"echo '{app.name}: {name} did not get healthy within {GATE_SECONDS} s:' >&2",
        f"journalctl -u {n} -n 15 --no-pager 2>&1 | sed 's/^/  log: /' >&2 || true",
        f"if [ -f {u}.prev ]; then mv -f {u}.prev {u}; systemctl daemon-reload; systemctl restart {n} || true;"
        f" echo rolled-back; exit {ROLLED_BACK}; fi",
        f"systemctl disable --now {n} >/dev/null 2>&1 || true",
        "exit 1",
    ]
    return "\n".join(lines) + "\n"


def service_probe(app: App, recipe: Recipe) -> Probe:
    """`unit SHA`, `active STATE`, `http CODE` (the app's own health URL)."""
    u, n = shlex.quote(unit_path(app)), shlex.quote(unit_name(app))
    lines = [f"echo \"unit $(sha256sum {u} 2>/dev/null | cut -d' ' -f1)\"",
             f"echo \"active $(systemctl is-active {n} 2>/dev/null || true)\""]
    if recipe.http is not None:
        svc = recipe.service(recipe.http.service)
        port = svc.port(recipe.http.port) if svc else None
        if port is not None:
            url = shlex.quote(f"http://127.0.0.1:{port.port}{recipe.http.health_path}")
            lines.append(f"echo \"http $(curl -s -o /dev/null -w '%{{http_code}}' --max-time 5 {url} || true)\"")
    return Probe("\n".join(lines), timeout=15)


def unit_state_probe(app_name: str) -> Probe:
    """For an app that left the config: is a homelab unit of that name still active?"""
    n = shlex.quote(f"homelab-{app_name}.service")
    return Probe(f"echo \"active $(systemctl is-active {n} 2>/dev/null || true)\"", timeout=10)


def render_service_remove(app_name: str) -> str:
    """Stop and remove the unit; its data stays (the compose remove script purges, when asked)."""
    n = shlex.quote(f"homelab-{app_name}.service")
    u = shlex.quote(f"{UNIT_DIR}/homelab-{app_name}.service")
    lines = [f"systemctl disable --now {n} >/dev/null 2>&1 || true", f"rm -f {u} {u}.prev", "systemctl daemon-reload"]
    return "\n".join(lines) + "\n"


def service_monitors(app: str, recipe: Recipe, seen: dict[str, str]) -> list[Monitor]:
    active = seen.get("active", "")
    out = [Monitor("apps", app, "running", Health.OK if active == "active" else Health.FAIL,
                   f"homelab-{app}.service is {active or 'not installed'}")]
    if recipe.http is not None:
        code = seen.get("http", "")
        ok = code == str(recipe.http.expect_status)
        out.append(Monitor("apps", app, "http", Health.OK if ok else Health.FAIL,
                           f"HTTP {code}" if code and code != "000" else "no HTTP answer on its port"))
    return out


def parse_service(result: ProbeResult | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (result.out.splitlines() if result is not None and not result.timed_out else []):
        key, _, value = line.partition(" ")
        out[key] = value.strip()
    return out
