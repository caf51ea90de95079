"""Live status of a compose app, from one probe script on its host (pure parsers).

Per service: running and healthy (compose's view), restarts since the last check and the
image it runs against its pin (docker inspect), and the app's own HTTP health through its
published port, fetched with curl on the host (the port is bound to loopback there).
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any, Mapping

from homelab.model import Health, Monitor

LAYER = "apps"
MARK = "--homelab-section "
INSPECT = shlex.quote('{"Service":{{json (index .Config.Labels "com.docker.compose.service")}},"Image":{{json .Image}},'
                      '"RestartCount":{{.RestartCount}},"StartedAt":{{json .State.StartedAt}}}')


@dataclass(frozen=True)
class ServiceState:
    """One container of the project, as compose and docker inspect see it."""

    service: str
    state: str  # running | exited | restarting | created | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)
    image_id: str = ""
    restarts: int = 0
    started_at: str = ""


def render_status_probe(app: str, http: tuple[int, str] | None = None) -> str:
    """Sections: compose ps (JSON), docker inspect of the containers, the HTTP status code."""
    p = shlex.quote(app)
    lines = [
        f"echo '{MARK}ps'", f"docker compose -p {p} ps -a --format json 2>/dev/null || true",
        f"echo '{MARK}inspect'",
        # only these fields: a full `docker inspect` holds the containers' environment (secrets)
        f"ids=$(docker compose -p {p} ps -a -q 2>/dev/null || true); [ -z \"$ids\" ] || docker inspect -f {INSPECT} $ids",
    ]
    if http:
        port, path = http
        url = shlex.quote(f"http://127.0.0.1:{int(port)}{path}")
        lines += [f"echo '{MARK}http'", f"curl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 {url} || true"]
    return "\n".join(lines) + "\n"


def split_sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(MARK):
            current = line[len(MARK):].strip()
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def _json_rows(text: str) -> list[dict[str, Any]]:
    """compose 2.21+ prints one JSON object per line; older 2.x one JSON array."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_status(text: str) -> tuple[dict[str, ServiceState], int | None]:
    """The probe's output -> (state per service, HTTP status or None when not probed/unreachable)."""
    sec = split_sections(text)
    facts: dict[str, dict[str, Any]] = {}
    for c in _json_rows(sec.get("inspect", "")):
        facts[c.get("Service", "")] = {"image_id": c.get("Image", ""), "restarts": int(c.get("RestartCount", 0)),
                                       "started_at": c.get("StartedAt", "")}
    states = {}
    for row in _json_rows(sec.get("ps", "")):
        svc = row.get("Service", "")
        states[svc] = ServiceState(svc, row.get("State", ""), row.get("Health", ""), **facts.get(svc, {}))
    code = sec.get("http", "").strip()
    return states, (int(code) if code.isdigit() and code != "000" else None)


def app_monitors(app: str, expected: Mapping[str, str], states: Mapping[str, ServiceState],
                 http: int | None = None, http_expect: int | None = 200,
                 restarts_before: Mapping[str, int] | None = None) -> list[Monitor]:
    """Monitors of one app: `expected` maps each service to its pinned image id."""
    out = []
    for svc, image_id in sorted(expected.items()):
        s = states.get(svc)
        subject = f"{app}.{svc}"
        if s is None:
            out.append(Monitor(LAYER, subject, "running", Health.FAIL, "no container (not deployed or removed)"))
            continue
        if s.state != "running":
            out.append(Monitor(LAYER, subject, "running", Health.FAIL, f"container is {s.state}"))
        elif s.health in ("", "healthy"):
            out.append(Monitor(LAYER, subject, "running", Health.OK,
                               "running, healthy" if s.health else "running (no healthcheck)"))
        else:
            out.append(Monitor(LAYER, subject, "running", Health.WARN if s.health == "starting" else Health.FAIL,
                               f"running, {s.health}"))
        before = (restarts_before or {}).get(svc)
        if before is not None and s.restarts > before:
            out.append(Monitor(LAYER, subject, "restarts", Health.WARN,
                               f"restarted {s.restarts - before} time(s) since the last check"))
        else:
            out.append(Monitor(LAYER, subject, "restarts", Health.OK, f"{s.restarts} restart(s) in total"))
        if s.image_id == image_id:
            out.append(Monitor(LAYER, subject, "image", Health.OK, f"runs the pinned image {image_id[:19]}"))
        else:
            out.append(Monitor(LAYER, subject, "image", Health.FAIL,
                               f"runs {s.image_id[:19] or 'nothing'}, pinned {image_id[:19]}"))
    if http_expect is not None:
        if http is None:
            out.append(Monitor(LAYER, app, "http", Health.FAIL, "no HTTP answer on its port"))
        else:
            ok = http == http_expect
            out.append(Monitor(LAYER, app, "http", Health.OK if ok else Health.FAIL,
                               f"HTTP {http}" + ("" if ok else f", expected {http_expect}")))
    return out
