"""What the ingress layer reads on an ingress machine, one probe per concern, each with its own timeout.

- `ingress.caddy.*`: the caddy package, whether the unit is active, the live Caddyfile's sha256;
- `ingress.anubis.*`: Docker there, the Anubis image under its name (id + digests), and every
  Anubis container homelab runs (label `homelab.anubis=<app>`): state, spec hash; /healthz for
  the monitors.
- `ingress.certs` / `ingress.https`: the monitors' probes (monitors.py), run against 127.0.0.1
  with each hostname as SNI / Host.

All but /healthz and the monitors' probes are batched questions (probe.batch_groups), asked
once per host with the other layers' (the apps layer's docker images and containers, every
layer's packages and units): on an ingress machine that runs apps, the no-op costs no docker
CLI start of its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from homelab.layers.ingress.monitors import parse_cert_probe, parse_https_probe, render_cert_probe, render_https_probe
from homelab.layers.ingress.scripts import LIVE
from homelab.layers.apps.probes import parse_images
from homelab.probe import (
    DOCKER_ANSWERS, Probe, ProbeResult, answered, container_rows, docker_containers, docker_images, file_sha256, packages,
    parse_packages, parse_sha256, parse_unit_states, unit_states,
)

ANUBIS_LABEL = "homelab.anubis"  # value: the app's name
SPEC_LABEL = "homelab.spec"  # value: sha256 of what the container was started with


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


CADDY_KEYS = ("ingress.caddy.package", "ingress.caddy.unit", "ingress.caddy.sha")
CADDY_UNIT = "caddy.service"
ANUBIS_KEYS = ("ingress.anubis.image", "ingress.anubis.containers")
HEALTHZ = "ingress.anubis.healthz"


def nothing_there() -> dict[str, ProbeResult]:
    """What an ingress machine without Caddy, Docker or Anubis answers (tests, a fresh host)."""
    return {k: ProbeResult(0, "") for k in (*CADDY_KEYS, *ANUBIS_KEYS)}


def caddy_probes() -> dict[str, Probe]:
    """Asked with every other layer's packages, units and hashes (probe.batch_groups)."""
    return dict(zip(CADDY_KEYS, (packages(["caddy"]), unit_states([CADDY_UNIT]), file_sha256([LIVE]))))


def parse_caddy(results: Mapping[str, ProbeResult]) -> CaddyFacts | None:
    got = answered(results, CADDY_KEYS)
    if got is None:
        return None
    pkg, unit, sha = got
    return CaddyFacts(parse_packages(pkg, ["caddy"])["caddy"],
                      parse_unit_states(unit).get(CADDY_UNIT, ("", ""))[1] == "active", parse_sha256(sha).get(LIVE))


def anubis_probes(image: str, metrics_ports: Mapping[str, int]) -> dict[str, Probe]:
    """The image and the containers are asked with the apps layer's (one `image inspect`, one
    `ps` + `inspect` per host); `metrics_ports` (app -> the loopback port its Anubis serves
    /healthz on) only for the monitors."""
    out = dict(zip(ANUBIS_KEYS, (docker_images([image]), docker_containers([ANUBIS_LABEL, SPEC_LABEL]))))
    if metrics_ports:
        out[HEALTHZ] = Probe("\n".join(
            f"echo \"{app} $(curl -s -o /dev/null --max-time 3 -w '%{{http_code}}' "
            f"http://127.0.0.1:{int(port)}/healthz || true)\"" for app, port in sorted(metrics_ports.items())),
            timeout=5 + 4 * len(metrics_ports))
    return out


def parse_anubis(results: Mapping[str, ProbeResult], image: str) -> AnubisFacts | None:
    got = answered(results, ANUBIS_KEYS)
    if got is None:
        return None
    images, listed = got
    image_id, digest = None, ""
    pin = parse_images(images, [image]).get(image)
    if pin is not None:
        image_id, digest = pin.image_id, pin.digest
    health: dict[str, int] = {}
    for line in (results[HEALTHZ].lines() if HEALTHZ in results else []):
        app, _, code = line.strip().partition(" ")
        if app:
            health[app] = int(code) if code.isdigit() else 0
    containers = {}
    for row in container_rows(listed):
        labels = row.get("Labels") or {}
        app = labels.get(ANUBIS_LABEL) or ""
        if app:
            containers[app] = AnubisContainer(app, row.get("State", ""), labels.get(SPEC_LABEL) or "",
                                              health.get(app, 0))
    return AnubisFacts(DOCKER_ANSWERS in listed.lines(), image_id, digest, containers)


def cert_probe(hostnames: Sequence[str]) -> Probe:
    # openssl s_client gives up after 10 s per name
    return Probe(render_cert_probe(hostnames), timeout=5 + 11 * len(hostnames),
                 parse=lambda r: parse_cert_probe(r.out))


def https_probe(hostnames: Sequence[str]) -> Probe:
    return Probe(render_https_probe(hostnames), timeout=5 + 11 * len(hostnames),
                 parse=lambda r: parse_https_probe(r.out))

