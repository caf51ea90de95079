"""The ingress pane: per hostname, days left on the certificate Caddy serves and an HTTPS probe
through Caddy (status code, time). Probe scripts are text, parsers and verdicts are pure.

Both probes run on the ingress machine against 127.0.0.1 with the hostname as SNI/Host, so
they see what Caddy really serves whatever DNS says. The certificate is read from the TLS
handshake (`openssl s_client`), not from Caddy's storage: a renewed file Caddy has not loaded
yet would look healthy there.
"""
from __future__ import annotations

import re
import shlex
from calendar import timegm
from dataclasses import dataclass
from time import strptime
from typing import Iterable, Mapping

from homelab.model import Health, Monitor

LAYER = "ingress"
WARN_DAYS = 14  # ACME clients renew at 30 days left (a third of 90): 14 means renewal is failing
FAIL_DAYS = 3
SLOW_SECONDS = 2.0
# Caddy's internal CA issues 12-hour certificates and renews them with a third (4 h) left:
# days mean nothing there, hours do
INTERNAL_WARN_HOURS = 2.0
INTERNAL_FAIL_HOURS = 0.5
_CERT = re.compile(r"^cert (\S+) (?:notAfter=(.+?)(?: issuer=(.*))?|none)$")
_HTTP = re.compile(r"^https (\S+) (\d{3}) ([0-9.]+)$")


def render_cert_probe(hostnames: Iterable[str], port: int = 443) -> str:
    """One line per hostname: `cert HOST notAfter=<date> issuer=<dn>` or `cert HOST none`."""
    lines = []
    for host in sorted(set(hostnames)):
        h = shlex.quote(host)
        lines.append(
            f"pem=$(echo | timeout 10 openssl s_client -connect 127.0.0.1:{port} -servername {h} 2>/dev/null"
            f" | openssl x509 2>/dev/null); "
            f"if [ -n \"$pem\" ]; then echo \"cert {host} $(printf '%s\\n' \"$pem\" | openssl x509 -noout -enddate)"
            f" issuer=$(printf '%s\\n' \"$pem\" | openssl x509 -noout -issuer -nameopt oneline | sed 's/^issuer=//')\";"
            f" else echo \"cert {host} none\"; fi")
    return "\n".join(lines) + "\n"


def render_https_probe(hostnames: Iterable[str], port: int = 443) -> str:
    """One line per hostname: `https HOST <status> <seconds>` (status 000: no answer).

    -k here on purpose: the certificate has its own monitor; this one asks whether the app
    answers through Caddy."""
    lines = []
    for host in sorted(set(hostnames)):
        h = shlex.quote(host)
        lines.append(f"echo \"https {host} $(curl -sk -o /dev/null --max-time 10 -w '%{{http_code}} %{{time_total}}' "
                     f"--resolve {h}:{port}:127.0.0.1 https://{h}:{port}/ || true)\"")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CertFacts:
    not_after: float | None  # epoch seconds; None: no certificate served
    issuer: str = ""


@dataclass(frozen=True)
class HttpsFacts:
    status: int  # 0: no answer
    seconds: float


def parse_openssl_date(text: str) -> float:
    """`Mar  1 12:00:00 2027 GMT` (openssl's notAfter) -> epoch seconds."""
    return float(timegm(strptime(" ".join(text.split()), "%b %d %H:%M:%S %Y %Z")))


def parse_cert_probe(text: str) -> dict[str, CertFacts]:
    out: dict[str, CertFacts] = {}
    for line in text.splitlines():
        m = _CERT.match(line.strip())
        if not m:
            continue
        if m.group(2) is None:
            out[m.group(1)] = CertFacts(None)
            continue
        try:
            out[m.group(1)] = CertFacts(parse_openssl_date(m.group(2)), (m.group(3) or "").strip())
        except ValueError:
            out[m.group(1)] = CertFacts(None, f"unreadable date {m.group(2)!r}")
    return out


def parse_https_probe(text: str) -> dict[str, HttpsFacts]:
    out: dict[str, HttpsFacts] = {}
    for line in text.splitlines():
        m = _HTTP.match(line.strip())
        if m:
            out[m.group(1)] = HttpsFacts(int(m.group(2)), float(m.group(3)))
    return out


def cert_monitor(hostname: str, facts: CertFacts | None, now: float, internal: bool = False) -> Monitor:
    if facts is None:
        return Monitor(LAYER, hostname, "certificate", Health.UNKNOWN, "not checked")
    if facts.not_after is None:
        why = f": {facts.issuer}" if facts.issuer else ""
        return Monitor(LAYER, hostname, "certificate", Health.FAIL, f"Caddy serves no certificate for it{why}")
    days = (facts.not_after - now) / 86400
    by = f" ({facts.issuer})" if facts.issuer else ""
    if days < 0:
        return Monitor(LAYER, hostname, "certificate", Health.FAIL, f"expired {-days:.0f} days ago{by}")
    if internal:
        hours = days * 24
        health = (Health.FAIL if hours < INTERNAL_FAIL_HOURS else Health.WARN if hours < INTERNAL_WARN_HOURS
                  else Health.OK)
        note = "" if health is Health.OK else ", renewal is not happening: see Caddy's log"
        return Monitor(LAYER, hostname, "certificate", health, f"{hours:.1f} hours left{by} (internal CA){note}")
    health = Health.FAIL if days < FAIL_DAYS else Health.WARN if days < WARN_DAYS else Health.OK
    note = "" if health is Health.OK else ", renewal is not happening: see Caddy's log"
    return Monitor(LAYER, hostname, "certificate", health, f"{days:.0f} days left{by}{note}")


def https_monitor(hostname: str, facts: HttpsFacts | None) -> Monitor:
    if facts is None:
        return Monitor(LAYER, hostname, "https", Health.UNKNOWN, "not checked")
    if facts.status == 0:
        return Monitor(LAYER, hostname, "https", Health.FAIL, f"no answer through Caddy after {facts.seconds:.1f} s")
    took = f"{facts.status} in {facts.seconds * 1000:.0f} ms"
    if facts.status >= 500:
        # 502/503/504: Caddy is up but the app (or its Anubis) behind it is not
        return Monitor(LAYER, hostname, "https", Health.FAIL, f"{took}: the app behind Caddy does not answer")
    if facts.seconds > SLOW_SECONDS:
        return Monitor(LAYER, hostname, "https", Health.WARN, f"{took}: slow")
    return Monitor(LAYER, hostname, "https", Health.OK, took)


def ingress_monitors(hostnames: Iterable[str], certs: Mapping[str, CertFacts], https: Mapping[str, HttpsFacts],
                     now: float, internal: Iterable[str] = ()) -> list[Monitor]:
    """`internal`: the hostnames served with Caddy's internal CA (short-lived certificates)."""
    inside = set(internal)
    out: list[Monitor] = []
    for host in sorted(set(hostnames)):
        out += [cert_monitor(host, certs.get(host), now, host in inside), https_monitor(host, https.get(host))]
    return out
