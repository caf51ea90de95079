"""The Caddyfile and each Anubis's environment, as pure text (golden-tested).

Caddy is Debian's 2.6.2: only directives that version knows are rendered (wave2-facts §2.1
lists what it lacks: no health_passes/health_fails/health_method, no client_ip_hash).

One site per hostname, sorted, so the same routes always give the same bytes:
- an upstream on the ingress machine itself is reached at 127.0.0.1, one on another machine at
  its mesh address (the app's port is never opened beyond the mesh);
- several upstreams: round robin with active health checks, and `lb_try_duration` retries a
  request on the next upstream, so traffic leaves a dead one within seconds;
- `header_up X-Real-Ip {remote_host}` always: Anubis (and most apps) take the client address
  from it, and Anubis drops the private addresses of lab and mesh clients from X-Forwarded-For;
- Anubis: the site proxies ONLY to Anubis on 127.0.0.1. There is no fallback route, so when
  Anubis is down the app answers 502 instead of going unprotected (fail closed). With several
  upstreams Anubis's TARGET is a loopback-only Caddy listener that does the load balancing;
- the admin API listens on a unix socket in Caddy's home (mode 0700, user caddy), not on
  localhost:2019 where any local user could reconfigure it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from homelab.errors import HomelabError

HEADER = "# Managed by homelab (layer 5, ingress): the next apply overwrites changes made here."
ADMIN_SOCKET = "unix//var/lib/caddy/admin.sock"
LOG_DIR = "/var/log/caddy"
LOOPBACK = "127.0.0.1"
# load balancing over several upstreams; seconds, all within Caddy 2.6.2's directives
LB_TRY_DURATION = "5s"  # a request keeps trying other upstreams this long before a 502
HEALTH_INTERVAL = "2s"
HEALTH_TIMEOUT = "2s"
FAIL_DURATION = "30s"  # a failed request keeps its upstream out of the pool this long


@dataclass(frozen=True)
class Upstream:
    host: str  # the machine the app runs on
    port: int


@dataclass(frozen=True)
class AnubisPorts:
    """Where one app's Anubis listens on the ingress machine (all loopback)."""

    bind: int  # Caddy -> Anubis
    metrics: int  # /healthz and /metrics
    inner: int  # Anubis -> Caddy's load-balancing listener (only used with several upstreams)


@dataclass(frozen=True)
class Site:
    hostname: str
    app: str
    upstreams: tuple[Upstream, ...]
    internal_tls: bool = False  # Caddy's own CA instead of ACME
    anubis: AnubisPorts | None = None
    difficulty: int = 4
    health_uri: str = "/"  # the app's health path, for active checks


@dataclass(frozen=True)
class CaddySettings:
    ingress_host: str  # the machine this Caddyfile is for
    mesh: Mapping[str, str]  # machine -> mesh address
    email: str | None = None
    acme_ca: str | None = None  # None: Caddy's default (Let's Encrypt)
    acme_ca_root: str | None = None  # PEM path on the host (Pebble's TLS root)
    access_logs: bool = True
    admin: str = ADMIN_SOCKET


def upstream_address(up: Upstream, settings: CaddySettings) -> str:
    """host:port as the ingress machine dials it: loopback for itself, else the mesh."""
    if up.host == settings.ingress_host:
        return f"{LOOPBACK}:{up.port}"
    addr = settings.mesh.get(up.host)
    if addr is None:
        raise HomelabError(f"render the Caddyfile: {up.host} has no mesh address",
                           "an app on another machine is reached over the mesh; add that machine to the mesh")
    return f"{addr}:{up.port}"


def access_log_path(hostname: str) -> str:
    return f"{LOG_DIR}/access-{hostname}.log"


def anubis_target(site: Site, settings: CaddySettings) -> str:
    """Anubis's TARGET: the app itself, or Caddy's loopback balancer for several upstreams."""
    assert site.anubis is not None
    if len(site.upstreams) == 1:
        return f"http://{upstream_address(site.upstreams[0], settings)}"
    return f"http://{LOOPBACK}:{site.anubis.inner}"


def _global(settings: CaddySettings, internal: bool) -> list[str]:
    lines = ["{", f"\tadmin {settings.admin}"]
    if internal:
        # the service user cannot (and should not) add Caddy's root to the system trust store
        lines.append("\tskip_install_trust")
    if settings.email:
        lines.append(f"\temail {settings.email}")
    if settings.acme_ca:
        lines.append(f"\tacme_ca {settings.acme_ca}")
    if settings.acme_ca_root:
        lines.append(f"\tacme_ca_root {settings.acme_ca_root}")
    return lines + ["}"]


def _proxy(addresses: list[str], health_uri: str, real_ip: bool) -> list[str]:
    body: list[str] = []
    if len(addresses) > 1:
        body += ["lb_policy round_robin", f"lb_try_duration {LB_TRY_DURATION}", f"health_uri {health_uri}",
                 f"health_interval {HEALTH_INTERVAL}", f"health_timeout {HEALTH_TIMEOUT}",
                 f"fail_duration {FAIL_DURATION}"]
    if real_ip:
        body.append("header_up X-Real-Ip {remote_host}")
    head = f"\treverse_proxy {' '.join(addresses)}"
    if not body:
        return [head]
    return [head + " {", *(f"\t\t{b}" for b in body), "\t}"]


def _site(site: Site, settings: CaddySettings) -> list[str]:
    if not site.upstreams:
        raise HomelabError(f"render the Caddyfile: {site.hostname} ({site.app}) has no upstream",
                           "the app must run on at least one machine")
    addresses = [upstream_address(u, settings) for u in sorted(site.upstreams, key=lambda u: (u.host, u.port))]
    guard = f", behind Anubis (difficulty {site.difficulty})" if site.anubis else ""
    lines = ["", f"# {site.app}: {', '.join(addresses)}{guard}", f"{site.hostname} {{"]
    if site.internal_tls:
        lines.append("\ttls internal")
    if settings.access_logs:
        lines += ["\tlog {", f"\t\toutput file {access_log_path(site.hostname)}", "\t\tformat json", "\t}"]
    if site.anubis is None:
        lines += _proxy(addresses, site.health_uri, real_ip=True)
        return lines + ["}"]
    # fail closed: Anubis is the only way in; no handle_errors fallback to the app
    lines += _proxy([f"{LOOPBACK}:{site.anubis.bind}"], site.health_uri, real_ip=True)
    lines.append("}")
    if len(addresses) > 1:
        # Anubis's TARGET: loopback only, plain HTTP, any Host header; X-Real-Ip set above passes through
        lines += ["", f"# {site.app}: the balancer behind its Anubis (loopback only)",
                  f"http://:{site.anubis.inner} {{", f"\tbind {LOOPBACK}"]
        lines += _proxy(addresses, site.health_uri, real_ip=False)
        lines.append("}")
    return lines


def render_caddyfile(sites: list[Site] | tuple[Site, ...], settings: CaddySettings) -> str:
    seen: set[str] = set()
    for s in sites:
        if s.hostname in seen:
            raise HomelabError(f"render the Caddyfile: {s.hostname} is routed twice", "every app needs its own hostname")
        seen.add(s.hostname)
    lines = [HEADER, *_global(settings, any(s.internal_tls for s in sites))]
    for site in sorted(sites, key=lambda s: s.hostname):
        lines += _site(site, settings)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ Anubis --

ANUBIS_KEY_FILE = "/data/ed25519.key"  # inside the container: a hex key generated on the host, 0600
ANUBIS_POLICY_FILE = "/data/policy.yaml"


def render_anubis_env(site: Site, settings: CaddySettings, *, key_file: str = ANUBIS_KEY_FILE,
                      policy_file: str = ANUBIS_POLICY_FILE) -> dict[str, str]:
    """Every setting of one app's Anubis, explicit (its defaults change between releases).

    The container runs with host networking, so 127.0.0.1 is the ingress machine's loopback.
    The key is named by file, never passed as a value; a persistent key keeps issued cookies
    valid across restarts (unset, Anubis makes a new key at each start)."""
    if site.anubis is None:
        raise HomelabError(f"Anubis settings for {site.app}: the app is not behind Anubis")
    return {
        "BIND": f"{LOOPBACK}:{site.anubis.bind}",
        "BIND_NETWORK": "tcp",
        "TARGET": anubis_target(site, settings),
        # probed by homelab itself (`anubis --healthcheck` breaks on a host:port METRICS_BIND)
        "METRICS_BIND": f"{LOOPBACK}:{site.anubis.metrics}",
        "METRICS_BIND_NETWORK": "tcp",
        "DIFFICULTY": str(site.difficulty),
        "ED25519_PRIVATE_KEY_HEX_FILE": key_file,
        "COOKIE_DOMAIN": site.hostname,
        # unset would allow redirects to any domain on some paths (wave2-facts §0.3)
        "REDIRECT_DOMAINS": site.hostname,
        "POLICY_FNAME": policy_file,
        "SERVE_ROBOTS_TXT": "false",
    }


def render_env_file(env: Mapping[str, str]) -> str:
    """KEY=value lines in a stable order, for a compose `env_file` (values hold no secret)."""
    for k, v in env.items():
        if any(c in v for c in "\n\r\"'$\\ "):
            raise HomelabError(f"render an env file: {k} holds a character an env file cannot carry plainly")
    return "".join(f"{k}={env[k]}\n" for k in sorted(env))
