"""Live status of a compose app, from one probe script on its host (pure parsers).

Per service: running and healthy, restarts since the last check and the image it runs against
its pin (all from `docker inspect` of the project's containers, found by compose's labels), and
the app's own HTTP health through its published port, fetched with curl on the host (the port is
bound to loopback there).

Why not `docker compose ps`: the compose plugin is a large Go binary that costs ~90 ms per start
on a small host, and a host's no-op probe asked it twice per app; `docker ps` + `docker inspect`
(~25 ms each) read the same labels and states, once for every app on the host.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from homelab.model import Health, Monitor
from homelab.probe import container_format, json_rows

LAYER = "apps"
MARK = "--homelab-section "
PROJECT_LABEL, SERVICE_LABEL = "com.docker.compose.project", "com.docker.compose.service"
ONEOFF_LABEL = "com.docker.compose.oneoff"
CONTAINER_LABELS = (PROJECT_LABEL, SERVICE_LABEL, ONEOFF_LABEL)  # what a container row carries


@dataclass(frozen=True)
class ServiceState:
    """One container of the project, as compose and docker inspect see it."""

    service: str
    state: str  # running | exited | restarting | created | ...
    health: str  # healthy | unhealthy | starting | "" (no healthcheck)
    image_id: str = ""
    restarts: int = 0
    started_at: str = ""


def render_containers_probe(project: str) -> str:
    """`docker inspect` lines (probe.container_format) of one project's compose containers, as
    `compose ps -a` lists them: one-off `compose run` containers left out. All projects of a
    host at once: apps.probes.containers_probe."""
    label = f"{PROJECT_LABEL}={project}"
    return (f"ids=$(docker ps -aq --filter label={shlex.quote(label)} --filter label={ONEOFF_LABEL}=False "
            f"2>/dev/null) || exit 0; [ -z \"$ids\" ] || "
            f"docker inspect -f {shlex.quote(container_format(CONTAINER_LABELS))} $ids")


def render_http_probe(http: tuple[int, str] | None) -> str:
    """The app's own health: the HTTP status code of its health path on its loopback port."""
    if not http:
        return ""
    port, path = http
    url = shlex.quote(f"http://127.0.0.1:{int(port)}{path}")
    return f"echo '{MARK}http'\ncurl -s -o /dev/null -w '%{{http_code}}\\n' --max-time 5 {url} || true\n"


def render_status_probe(app: str, http: tuple[int, str] | None = None) -> str:
    """One app on its own (the deploy's checks, tests): sections inspect, http."""
    return f"echo '{MARK}inspect'\n{render_containers_probe(app)}\n" + render_http_probe(http)


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


def parse_containers(text: str) -> dict[str, dict[str, ServiceState]]:
    """`render_containers_probe`'s output -> {project: {service: state}}."""
    return parse_container_rows(json_rows(text))


def parse_container_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, ServiceState]]:
    """Container rows (probe.container_format) -> {project: {service: state}}; rows of no
    compose project (other containers of the host) are left out."""
    out: dict[str, dict[str, ServiceState]] = {}
    for c in rows:
        labels = c.get("Labels") or {}
        project, svc = labels.get(PROJECT_LABEL) or "", labels.get(SERVICE_LABEL) or ""
        if not project:
            continue
        out.setdefault(project, {})[svc] = ServiceState(
            svc, c.get("State", ""), c.get("Health", ""), c.get("Image", ""), int(c.get("RestartCount", 0)),
            c.get("StartedAt", ""))
    return out


def parse_http(text: str) -> int | None:
    """The http section's code, None when not probed or nothing answered (curl's 000)."""
    code = split_sections(text).get("http", "").strip()
    return int(code) if code.isdigit() and code != "000" else None


def parse_status(text: str) -> tuple[dict[str, ServiceState], int | None]:
    """`render_status_probe`'s output -> (state per service, HTTP status or None)."""
    projects = parse_containers(split_sections(text).get("inspect", ""))
    return next(iter(projects.values()), {}), parse_http(text)


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
