"""What the apps layer reads on a host, in one probe per concern (each with its own timeout).

- `apps.docker`: the Docker packages (Compose's version is its package's), daemon.json's hash,
  whether dockerd runs;
- `apps.images`: for every image ref of the host's apps, what the host has under that name
  (`docker image inspect`: id + registry digests), so a pin can be recorded without pulling;
- `apps.containers`: every compose container on the host (monitor.py), for all apps at once;
- `apps.app.<name>`: the release that runs (the `current` link and its compose file), its data's
  size and its HTTP health.

A no-op apply runs these on every apply, so each docker CLI start counts (~25 ms on a small host):
one `image inspect` for all refs, one `ps` + `inspect` for all apps' containers.
"""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.layers.apps.docker import DAEMON_JSON, PACKAGES
from homelab.layers.apps.monitor import (
    ServiceState, parse_containers, parse_http, render_containers_probe, render_http_probe, split_sections,
)
from homelab.layers.apps.pins import ImagePin, normalize_repository, parse_inspect
from homelab.probe import Probe, ProbeResult

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


def docker_probe() -> Probe:
    pkgs = " ".join(PACKAGES)
    return Probe("\n".join([
        f"echo '{MARK}packages'; "
        f"dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {pkgs} 2>/dev/null || true",
        f"echo '{MARK}daemon'; sha256sum {DAEMON_JSON} 2>/dev/null | cut -d' ' -f1",
        f"echo '{MARK}active'; systemctl is-active docker 2>/dev/null || true",
    ]), timeout=20)


def parse_docker(result: ProbeResult | None) -> DockerFacts | None:
    if result is None or result.timed_out:
        return None
    sec = split_sections(result.out)
    rows = [ln.split() for ln in sec.get("packages", "").splitlines()]
    versions = {r[0]: (r[2] if len(r) > 2 else "") for r in rows if len(r) >= 2 and r[1].startswith("ii")}
    compose = versions.get("docker-compose", "").split(":")[-1]  # Debian's version, epoch dropped
    return DockerFacts(frozenset(versions), sec.get("daemon", "").strip() or None,
                       sec.get("active", "").strip() == "active", compose)


def images_probe(refs: list[str], ids: Sequence[str] = ()) -> Probe:
    """One `docker image inspect` of every ref and pinned id: a line per image found (docker
    skips the missing ones), matched back to the refs by tag in parse_images."""
    args = " ".join(shlex.quote(a) for a in [*refs, *ids])
    fmt = shlex.quote("{{.Id}} {{json .RepoTags}} {{json .RepoDigests}}")
    return Probe(f"docker image inspect --format {fmt} {args} 2>/dev/null; true" if args else "true", timeout=20)


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
    return Probe(render_containers_probe(), timeout=20)


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
    """`apps.containers` -> {compose project (the app's name): {service: state}}, once per host."""
    return parse_containers(result.out if result is not None and not result.timed_out else "")


def parse_app(result: ProbeResult | None, states: Mapping[str, ServiceState]) -> AppFacts | None:
    """One app's facts: its own probe, and its project's rows of parse_host_containers."""
    if result is None or result.timed_out:
        return None
    sec = split_sections(result.out)
    size = sec.get("data", "").strip()
    return AppFacts(sec.get("release", "").strip(), sec.get("compose", "") + ("\n" if sec.get("compose") else ""),
                    states, parse_http(result.out), int(size) if size.isdigit() else None)
