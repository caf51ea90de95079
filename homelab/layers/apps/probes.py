"""What the apps layer reads on a host, in one probe per concern (each with its own timeout).

- `apps.docker.*`: the Docker packages (Compose's version is its package's), whether dockerd
  runs, daemon.json's hash;
- `apps.images`: for every image ref of the host's apps, what the host has under that name
  (`docker image inspect`: id + registry digests), so a pin can be recorded without pulling;
- `apps.containers`: every compose container on the host (monitor.py), for all apps at once;
- `apps.app.<name>`: the release that runs (the `current` link and its compose file), its data's
  size and its HTTP health.

A no-op apply runs these on every apply, so each docker CLI start counts (~25 ms on a small host):
one `image inspect` for all refs, one `ps` + `inspect` for all apps' containers, both asked
together with the ingress layer's Anubis (probe.batch_groups), like the packages and units.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.layers.apps.docker import DAEMON_JSON, PACKAGES
from homelab.layers.apps.monitor import (
    CONTAINER_LABELS, ONEOFF_LABEL, ServiceState, parse_container_rows, parse_http, render_http_probe, split_sections,
)
from homelab.layers.apps.pins import ImagePin, normalize_repository, parse_inspect
from homelab.probe import (
    Probe, ProbeResult, answered, container_rows, docker_containers, docker_images, file_sha256, packages, parse_packages,
    parse_sha256, parse_unit_states, unit_states,
)

MARK = "--homelab-section "


@dataclass(frozen=True)
class DockerFacts:
    installed: frozenset[str] = frozenset()
    daemon_json_sha: str | None = None
    active: bool = False
    compose_version: str = ""

    def missing(self) -> list[str]:
        return [p for p in PACKAGES if p not in self.installed]


@dataclass(frozen=True)
class AppFacts:
    release: str = ""  # the id `current` points at ("" = not deployed)
    compose: str = ""  # that release's compose.yaml
    states: Mapping[str, ServiceState] = field(default_factory=dict)
    http: int | None = None
    data_bytes: int | None = None


DOCKER = "apps.docker"  # the keys of the Docker facts: packages, unit, daemon.json's hash
DOCKER_KEYS = (f"{DOCKER}.packages", f"{DOCKER}.unit", f"{DOCKER}.daemon")
DOCKER_UNIT = "docker.service"


def docker_probes() -> dict[str, Probe]:
    """Asked with every other layer's packages, units and hashes (probe.batch_groups): no
    dpkg-query, systemctl or sha256sum of its own."""
    return dict(zip(DOCKER_KEYS, (packages(PACKAGES), unit_states([DOCKER_UNIT]), file_sha256([DAEMON_JSON]))))


def parse_docker(results: Mapping[str, ProbeResult]) -> DockerFacts | None:
    got = answered(results, DOCKER_KEYS)
    if got is None:
        return None
    pkgs, unit, daemon = got
    versions = {n: v for n, v in parse_packages(pkgs, PACKAGES).items() if n in PACKAGES and v is not None}
    compose = versions.get("docker-compose", "").split(":")[-1]  # Debian's version, epoch dropped
    active = parse_unit_states(unit).get(DOCKER_UNIT, ("", ""))[1] == "active"
    return DockerFacts(frozenset(versions), parse_sha256(daemon).get(DAEMON_JSON), active, compose)


def images_probe(refs: list[str], ids: Sequence[str] = ()) -> Probe:
    """One `docker image inspect` of every ref and pinned id (with the ingress layer's Anubis
    image: probe.docker_images), matched back to the refs by tag in parse_images."""
    return docker_images([*refs, *ids])


def _inspected(result: ProbeResult | None) -> list[tuple[str, list[str], str]]:
    """(id, its tags in Docker's long form, the RepoDigests JSON) per image line."""
    out = []
    for line in (result.out.splitlines() if result is not None and not result.timed_out else []):
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].startswith("sha256:"):
            continue
        try:
            tags = [_long(t) for t in json.loads(parts[1]) or []]
        except ValueError:
            continue
        out.append((parts[0], tags, parts[2]))
    return out


def _long(ref: str) -> str:
    """"postgres:17" -> "docker.io/library/postgres:17": how docker's tags and our refs compare."""
    repo, _, tag = ref.rpartition(":")
    return f"{normalize_repository(repo)}:{tag}" if repo and "/" not in tag else ref


def parse_image_ids(result: ProbeResult | None) -> frozenset[str]:
    return frozenset(image_id for image_id, _, _ in _inspected(result))


def parse_images(result: ProbeResult | None, refs: Sequence[str]) -> dict[str, ImagePin | None]:
    """{ref: what the host has under that name, or None}."""
    found = _inspected(result)
    out: dict[str, ImagePin | None] = {}
    for ref in refs:
        want = _long(ref)
        hit = next(((i, d) for i, tags, d in found if want in tags), None)
        try:
            out[ref] = parse_inspect(ref, f"{hit[0]} {hit[1]}") if hit else None
        except Exception:  # an unexpected line: treat as absent, the pull will say why
            out[ref] = None
    return out


def containers_probe() -> Probe:
    """Every container of the host (probe.docker_containers, asked once with the ingress layer's)."""
    return docker_containers(CONTAINER_LABELS)


def app_probe(app_dir: str, http: tuple[int, str] | None, data: bool = True) -> Probe:
    """Its release and compose file (what the plan compares); `http` and `data` (the size it
    keeps) for the monitors."""
    a = shlex.quote(app_dir)
    lines = [f"echo '{MARK}release'; r=$(readlink {a}/current 2>/dev/null) && echo \"${{r##*/}}\"",
             f"echo '{MARK}compose'; cat {a}/current/compose.yaml 2>/dev/null || true"]
    if data:  # du is bounded by the probe's own timeout on a huge tree
        lines.append(f"echo '{MARK}data'; du -sb {a}/data 2>/dev/null | cut -f1")
    return Probe("\n".join(lines) + "\n" + render_http_probe(http), timeout=20)


def parse_host_containers(result: ProbeResult | None) -> dict[str, dict[str, ServiceState]]:
    """`apps.containers` -> {compose project (the app's name): {service: state}}, once per host:
    the compose containers, as `compose ps -a` lists them (one-off `compose run` ones left out)."""
    return parse_container_rows(row for row in container_rows(result)
                                if row.get("Labels", {}).get(ONEOFF_LABEL) != "True")


def parse_app(result: ProbeResult | None, states: Mapping[str, ServiceState]) -> AppFacts | None:
    """One app's facts: its own probe, and its project's rows of parse_host_containers."""
    if result is None or result.timed_out:
        return None
    sec = split_sections(result.out)
    size = sec.get("data", "").strip()
    return AppFacts(sec.get("release", "").strip(), sec.get("compose", "") + ("\n" if sec.get("compose") else ""),
                    states, parse_http(result.out), int(size) if size.isdigit() else None)
