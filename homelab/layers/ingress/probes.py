"""What the ingress layer reads on an ingress machine, one probe per concern, each with its own timeout.

- `ingress.caddy`: the caddy package, whether the unit is active, the live Caddyfile's sha256;
- `ingress.anubis`: Docker there, the Anubis image under its name (id + digests), and every
  Anubis container homelab runs (label `homelab.anubis=<app>`): state, spec hash, /healthz;
- `ingress.certs` / `ingress.https`: the monitors' probes (monitors.py), run against 127.0.0.1
  with each hostname as SNI / Host.
"""
from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.layers.ingress.monitors import parse_cert_probe, parse_https_probe, render_cert_probe, render_https_probe
from homelab.layers.ingress.scripts import LIVE
from homelab.probe import Probe, ProbeResult

MARK = "--ingress-section "
ANUBIS_LABEL = "homelab.anubis"  # value: the app's name
SPEC_LABEL = "homelab.spec"  # value: sha256 of what the container was started with
SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class CaddyFacts:
    version: str | None = None  # the Debian package's, None: not installed
    active: bool = False
    caddyfile_sha: str | None = None  # None: no live Caddyfile


@dataclass(frozen=True)
class AnubisContainer:
    app: str
    state: str  # docker's: running, exited, restarting, ...
    spec: str  # SPEC_LABEL
    healthz: int = 0  # HTTP status of its metrics /healthz (0: no answer)


@dataclass(frozen=True)
class AnubisFacts:
    docker: bool = False  # the docker CLI and daemon answer
    image_id: str | None = None  # what the host has under the configured image name
    digest: str = ""
    containers: Mapping[str, AnubisContainer] = field(default_factory=dict)


def _sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith(MARK):
            key = line[len(MARK):].strip()
            out[key] = []
        elif key is not None:
            out[key].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def caddy_probe() -> Probe:
    return Probe("\n".join([
        f"echo '{MARK}package'; dpkg-query -W -f='${{db:Status-Abbrev}} ${{Version}}\\n' caddy 2>/dev/null || true",
        f"echo '{MARK}active'; systemctl is-active caddy 2>/dev/null || true",
        f"echo '{MARK}sha'; sha256sum {LIVE} 2>/dev/null | cut -d' ' -f1",
    ]), timeout=15)


def parse_caddy(result: ProbeResult | None) -> CaddyFacts | None:
    if result is None or result.timed_out:
        return None
    sec = _sections(result.out)
    pkg = sec.get("package", "").split()
    version = pkg[1] if len(pkg) >= 2 and pkg[0].startswith("ii") else None
    return CaddyFacts(version, sec.get("active", "").strip() == "active", sec.get("sha", "").strip() or None)


def anubis_probe(image: str, metrics_ports: Mapping[str, int]) -> Probe:
    """`metrics_ports`: app -> the port its Anubis serves /healthz on (loopback)."""
    img = shlex.quote(image)
    lines = [
        f"echo '{MARK}image'; docker image inspect --format '{{{{.Id}}}} {{{{json .RepoDigests}}}}' {img} 2>/dev/null"
        " || true",
        # `ps` answering is the daemon answering (`docker info` cost one more CLI start per no-op)
        f"echo '{MARK}containers'; if docker ps -a --filter label={ANUBIS_LABEL} --format "
        f"'{{{{.Label \"{ANUBIS_LABEL}\"}}}} {{{{.State}}}} {{{{.Label \"{SPEC_LABEL}\"}}}}' 2>/dev/null; "
        f"then echo '{MARK}docker'; echo answers; fi",
        f"echo '{MARK}healthz'",
    ]
    for app, port in sorted(metrics_ports.items()):
        lines.append(f"echo \"{app} $(curl -s -o /dev/null --max-time 3 -w '%{{http_code}}' "
                     f"http://127.0.0.1:{int(port)}/healthz || true)\"")
    return Probe("\n".join(lines), timeout=10 + 4 * len(metrics_ports))


def parse_anubis(result: ProbeResult | None) -> AnubisFacts | None:
    if result is None or result.timed_out:
        return None
    sec = _sections(result.out)
    image_id, digest = None, ""
    parts = sec.get("image", "").strip().split(" ", 1)
    if parts and SHA256.match(parts[0]):
        image_id = parts[0]
        try:
            digests = json.loads(parts[1]) if len(parts) > 1 else []
        except ValueError:
            digests = []
        digest = next((d.split("@", 1)[1] for d in digests or [] if "@" in d), "")
    health: dict[str, int] = {}
    for line in sec.get("healthz", "").splitlines():
        app, _, code = line.strip().partition(" ")
        if app:
            health[app] = int(code) if code.isdigit() else 0
    containers = {}
    for line in sec.get("containers", "").splitlines():
        bits = line.split()
        if len(bits) >= 2:
            app = bits[0]
            containers[app] = AnubisContainer(app, bits[1], bits[2] if len(bits) > 2 else "", health.get(app, 0))
    return AnubisFacts(bool(sec.get("docker", "").strip()), image_id, digest, containers)


def cert_probe(hostnames: Sequence[str]) -> Probe:
    # openssl s_client gives up after 10 s per name
    return Probe(render_cert_probe(hostnames), timeout=5 + 11 * len(hostnames),
                 parse=lambda r: parse_cert_probe(r.out))


def https_probe(hostnames: Sequence[str]) -> Probe:
    return Probe(render_https_probe(hostnames), timeout=5 + 11 * len(hostnames),
                 parse=lambda r: parse_https_probe(r.out))

