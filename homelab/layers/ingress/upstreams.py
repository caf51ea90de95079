"""Upstream health of the load-balanced sites, as the ingress machine sees it (pure but the probe).

Caddy's active health check GETs each upstream's `health_uri` and takes it out of the pool
unless it answers 2xx; this probe asks the same question from the same machine, at the same
address (loopback or the mesh), so status names the copy that is down. Caddy 2.6.2's admin API
(`/reverse_proxy/upstreams`) reports request and failure counts but not the active check's
verdict, hence our own request. Only sites with several upstreams: for one upstream the HTTPS
probe through Caddy already says it.

Verdicts: a copy that answers 2xx is OK; one that does not is WARN while another copy still
answers (Caddy sends the traffic there), FAIL when none does.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

from homelab.layers.ingress.monitors import LAYER
from homelab.layers.ingress.render import CaddySettings, Site, upstream_address
from homelab.model import Health, Monitor
from homelab.probe import Probe

TIMEOUT_S = 3  # per upstream; Caddy's own health_timeout is 2 s
_LINE = re.compile(r"^upstream (\S+) (\S+) (\d{3}) ([0-9.]+)$")


@dataclass(frozen=True)
class UpstreamTarget:
    app: str
    machine: str  # where the copy runs
    url: str  # what the ingress machine requests: http://ADDRESS/health_uri


@dataclass(frozen=True)
class UpstreamFacts:
    status: int  # 0: no answer
    seconds: float


def balanced_targets(sites: Iterable[Site], settings: CaddySettings) -> list[UpstreamTarget]:
    """One target per copy of every site with several upstreams, in a stable order."""
    out = []
    for site in sorted(sites, key=lambda s: s.hostname):
        if len(site.upstreams) < 2:
            continue
        for up in sorted(site.upstreams, key=lambda u: (u.host, u.port)):
            out.append(UpstreamTarget(site.app, up.host, f"http://{upstream_address(up, settings)}{site.health_uri}"))
    return out


def render_upstream_probe(targets: Sequence[UpstreamTarget]) -> str:
    """One line per copy: `upstream APP MACHINE <status> <seconds>` (status 000: no answer)."""
    lines = []
    for t in targets:
        lines.append(f"echo \"upstream {t.app} {t.machine} $(curl -s -o /dev/null --max-time {TIMEOUT_S} "
                     f"-w '%{{http_code}} %{{time_total}}' {shlex.quote(t.url)} || true)\"")
    return "\n".join(lines) + "\n"


def parse_upstream_probe(text: str) -> dict[tuple[str, str], UpstreamFacts]:
    out: dict[tuple[str, str], UpstreamFacts] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[(m.group(1), m.group(2))] = UpstreamFacts(int(m.group(3)), float(m.group(4)))
    return out


def upstream_probe(targets: Sequence[UpstreamTarget]) -> Probe:
    return Probe(render_upstream_probe(targets), timeout=5 + (TIMEOUT_S + 1) * len(targets),
                 parse=lambda r: parse_upstream_probe(r.out))


def _healthy(facts: UpstreamFacts | None) -> bool:
    return facts is not None and 200 <= facts.status < 300


def upstream_monitors(targets: Sequence[UpstreamTarget], facts: Mapping[tuple[str, str], UpstreamFacts] | None,
                      suffix: str = "") -> list[Monitor]:
    """`APP@MACHINE upstream` per copy; `suffix` names the ingress machine when there are several."""
    out: list[Monitor] = []
    for t in targets:
        subject = f"{t.app}@{t.machine}{suffix}"
        if facts is None:
            out.append(Monitor(LAYER, subject, "upstream", Health.UNKNOWN, "not checked"))
            continue
        got = facts.get((t.app, t.machine))
        if _healthy(got):
            assert got is not None
            out.append(Monitor(LAYER, subject, "upstream", Health.OK,
                               f"{t.url} {got.status} in {got.seconds * 1000:.0f} ms: in the pool"))
            continue
        answer = "no answer" if got is None or got.status == 0 else f"{got.status}"
        others = [o for o in targets if o.app == t.app and o.machine != t.machine
                  and _healthy(facts.get((o.app, o.machine)))]
        if others:
            out.append(Monitor(LAYER, subject, "upstream", Health.WARN,
                               f"{t.url} {answer}: out of the pool, {', '.join(o.machine for o in others)} "
                               "serve the traffic"))
        else:
            out.append(Monitor(LAYER, subject, "upstream", Health.FAIL,
                               f"{t.url} {answer}: no copy of {t.app} answers"))
    return out
