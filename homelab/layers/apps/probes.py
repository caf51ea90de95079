"""What the apps layer reads on a host, in one probe per concern (each with its own timeout).

- `apps.docker`: the Docker packages, daemon.json's hash, whether dockerd runs, the Compose version;
- `apps.images`: for every image ref of the host's apps, what the host has under that name
  (`docker image inspect`: id + registry digests), so a pin can be recorded without pulling;
- `apps.app.<name>`: the release that runs (the `current` link and its compose file), and the
  live status of its containers and HTTP port (monitor.py's probe).
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.layers.apps.docker import DAEMON_JSON, PACKAGES
from homelab.layers.apps.monitor import ServiceState, parse_status, render_status_probe, split_sections
from homelab.layers.apps.pins import ImagePin, parse_inspect
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
        f"echo '{MARK}packages'; dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {pkgs} 2>/dev/null || true",
        f"echo '{MARK}daemon'; sha256sum {DAEMON_JSON} 2>/dev/null | cut -d' ' -f1",
        f"echo '{MARK}active'; systemctl is-active docker 2>/dev/null || true",
        f"echo '{MARK}compose'; docker compose version --short 2>/dev/null || true",
    ]), timeout=20)


def parse_docker(result: ProbeResult | None) -> DockerFacts | None:
    if result is None or result.timed_out:
        return None
    sec = split_sections(result.out)
    installed = frozenset(ln.split()[0] for ln in sec.get("packages", "").splitlines()
                          if len(ln.split()) >= 2 and ln.split()[1].startswith("ii"))
    return DockerFacts(installed, sec.get("daemon", "").strip() or None, sec.get("active", "").strip() == "active",
                       sec.get("compose", "").strip())


def images_probe(refs: list[str], ids: Sequence[str] = ()) -> Probe:
    """One line per ref: `img REF ID DIGESTS-JSON`, or `none REF`; per pinned id: `id ID`
    when the host has it (under any name)."""
    lines = [f"if x=$(docker image inspect --format '{{{{.Id}}}} {{{{json .RepoDigests}}}}' {shlex.quote(r)} "
             f"2>/dev/null); then echo \"img {r} $x\"; else echo 'none {r}'; fi" for r in refs]
    lines += [f"docker image inspect {shlex.quote(i)} >/dev/null 2>&1 && echo 'id {i}'" for i in ids]
    return Probe("\n".join(lines + ["true"]), timeout=20)


def parse_image_ids(result: ProbeResult | None) -> frozenset[str]:
    lines = result.out.splitlines() if result is not None and not result.timed_out else []
    return frozenset(ln.split()[1] for ln in lines if ln.startswith("id "))


def parse_images(result: ProbeResult | None) -> dict[str, ImagePin | None]:
    out: dict[str, ImagePin | None] = {}
    for line in (result.out.splitlines() if result is not None and not result.timed_out else []):
        if line.startswith("img "):
            _, ref, rest = line.split(" ", 2)
            try:
                out[ref] = parse_inspect(ref, rest)
            except Exception:  # an unexpected line: treat as absent, the pull will say why
                out[ref] = None
        elif line.startswith("none "):
            out[line.split(" ", 1)[1]] = None
    return out


def app_probe(name: str, app_dir: str, http: tuple[int, str] | None) -> Probe:
    a = shlex.quote(app_dir)
    head = "\n".join([
        f"echo '{MARK}release'; r=$(readlink {a}/current 2>/dev/null) && echo \"${{r##*/}}\"",
        f"echo '{MARK}compose'; cat {a}/current/compose.yaml 2>/dev/null || true",
        # the data it keeps (du is bounded by the probe's own timeout on a huge tree)
        f"echo '{MARK}data'; du -sb {a}/data 2>/dev/null | cut -f1",
    ])
    return Probe(head + "\n" + render_status_probe(name, http), timeout=20)


def parse_app(result: ProbeResult | None) -> AppFacts | None:
    if result is None or result.timed_out:
        return None
    sec = split_sections(result.out)
    states, http = parse_status(result.out)
    size = sec.get("data", "").strip()
    return AppFacts(sec.get("release", "").strip(), sec.get("compose", "") + ("\n" if sec.get("compose") else ""),
                    states, http, int(size) if size.isdigit() else None)
