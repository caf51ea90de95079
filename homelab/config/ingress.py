"""`ingress:` (layer 5): which machines run Caddy, the domain, TLS, DNS, per-app overrides.

    ingress:
      machines: [web-1]            # compute hosts that run Caddy (ports 80/443 open there only)
      domain: example.org          # an app gets APP.example.org unless it names a hostname
      tls:
        mode: acme                 # acme (public names) | internal (Caddy's own CA)
        email: ops@example.org     # the ACME account's contact; required for acme
        ca: https://acme-v02.api.letsencrypt.org/directory   # ACME directory (default Let's Encrypt)
      dns:
        provider: hetzner          # hetzner (Cloud API zones) | none (plan lists records to create by hand)
        zone: example.org
        ttl: 300
      access_logs: true            # a JSON access log per site with the real client address
      anubis:                      # the image that guards apps with anubis: true (a container on each ingress machine)
        image: ghcr.io/techarohq/anubis:v1.27.0   # pinned at its first pull (ingress state `images`)
        mirror: registry.lan:5000  # pull it through a registry mirror (the upstream path kept)
      apps:
        - {name: notes, hostname: notes.example.org, anubis: true, difficulty: 4}
        - {name: wiki, tls: internal}  # a name only reachable inside (LAN, mesh)

Pure: nothing here touches a host. `cross_check` checks machine names against compute; app
names are checked by whoever knows the apps (layer 6) through `IngressConfig.app_names`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

from homelab.claims import Claim, Claims, HttpService, NeedsPackage, OpenPort
from homelab.config.reader import HOSTNAME, NAME, PATH, Problems, Section
from homelab.config.yamlpos import Located

TLS_MODES = ("acme", "internal")
DNS_PROVIDERS = ("hetzner", "none")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
DEFAULT_TTL = 300  # s; short enough that moving ingress to another machine is quick
# Anubis's own default; each step up doubles the expected proof-of-work time in the browser
DEFAULT_DIFFICULTY = 4
ANUBIS_IMAGE = "ghcr.io/techarohq/anubis:v1.27.0"
# repository:tag of a registry host (no digest: the first pull pins it in state)
IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
MIRROR = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
# the ACME account contact: strict, it lands in the Caddyfile
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


@dataclass(frozen=True)
class TlsConfig:
    mode: str = "acme"
    email: str | None = None
    ca: str = LETS_ENCRYPT  # ACME directory URL
    ca_root: str | None = None  # PEM file on the ingress host that signs the ACME server's TLS (Pebble)


@dataclass(frozen=True)
class DnsConfig:
    provider: str = "none"
    zone: str | None = None
    ttl: int = DEFAULT_TTL


@dataclass(frozen=True)
class AnubisImage:
    image: str = ANUBIS_IMAGE
    mirror: str | None = None  # pull from MIRROR/<registry>/<path>:<tag> and tag it as `image`

    @property
    def pull_from(self) -> str:
        return f"{self.mirror}/{self.image}" if self.mirror else self.image


@dataclass(frozen=True)
class AppIngress:
    """Per-app overrides; everything else comes from the app's route claims."""

    name: str
    hostname: str | None = None  # default APP.<domain>
    anubis: bool = False
    difficulty: int = DEFAULT_DIFFICULTY
    tls: str | None = None  # None: the ingress-wide mode


@dataclass(frozen=True)
class IngressConfig:
    machines: tuple[str, ...] = ()
    domain: str | None = None
    tls: TlsConfig = TlsConfig()
    dns: DnsConfig = DnsConfig()
    access_logs: bool = True
    apps: tuple[AppIngress, ...] = ()
    anubis: AnubisImage = AnubisImage()

    @property
    def app_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.apps)

    def app(self, name: str) -> AppIngress:
        """The overrides of one app (the defaults when it has none)."""
        return next((a for a in self.apps if a.name == name), AppIngress(name))

    def hostname_of(self, app: str) -> str | None:
        """The public name of an app: its own, or APP.<domain>; None when neither is set."""
        own = self.app(app).hostname
        if own:
            return own
        return f"{app}.{self.domain}" if self.domain else None

    def tls_mode_of(self, app: str) -> str:
        return self.app(app).tls or self.tls.mode

    def cross_check(self, cfg: Any, root: Located, problems: Problems) -> None:
        """Ingress machines must be compute machines or servers."""
        compute = cfg.compute
        hosts = [m.name for m in compute.machines]
        hosts += [s.name for s in getattr(getattr(compute, "hetzner", None), "servers", ()) or ()]
        sec = root.value.get("ingress") if isinstance(root.value, dict) else None
        at = sec.value.get("machines") if sec is not None and isinstance(sec.value, dict) else sec
        for i, name in enumerate(self.machines):
            if name in hosts:
                continue
            node = at.value[i] if at is not None and isinstance(at.value, list) and i < len(at.value) else at
            close = [h for h in hosts if _close(h, name)]
            hint = f"did you mean '{close[0]}'?" if close else \
                f"compute hosts: {', '.join(hosts) or 'none (add compute.machines)'}"
            problems.add(node, f"ingress.machines[{i}]", f"{name!r} is not a compute machine or server", hint)


def _close(a: str, b: str) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, a, b).ratio() >= 0.6


def _url(sec: Section, key: str, default: str) -> str:
    raw = sec.text(key)
    if raw is None:
        return default
    u = urlparse(raw)
    if u.scheme != "https" or not u.hostname or any(c in raw for c in " \t\n\"'{}"):
        sec.fail(sec.raw(key), sec.sub(key), f"{raw!r} is not an https:// URL",
                 "the ACME directory, like https://acme-v02.api.letsencrypt.org/directory")
        return default
    return raw


def parse_tls(sec: Section) -> TlsConfig:
    mode = sec.text("mode", "acme", choices=TLS_MODES) or "acme"
    email = sec.text("email", pattern=EMAIL, hint="an address like ops@example.org")
    ca = _url(sec, "ca", LETS_ENCRYPT)
    ca_root = sec.text("ca_root", pattern=PATH, hint="an absolute path on the ingress machine")
    if ca_root is not None and not ca_root.startswith("/"):
        sec.fail(sec.raw("ca_root"), sec.sub("ca_root"), f"{ca_root!r} is not an absolute path",
                 "like /etc/caddy/acme-ca.pem")
        ca_root = None
    sec.done(["mode", "email", "ca", "ca_root"])
    if mode == "acme" and email is None and not sec.has("email"):
        sec.fail(sec.node, sec.sub("email"), "is required with mode acme",
                 "the CA writes there before a certificate expires; or use mode: internal")
    if mode == "internal" and sec.has("ca"):
        sec.fail(sec.raw("ca"), sec.sub("ca"), "has no effect with mode internal",
                 "remove it, or use mode: acme")
    return TlsConfig(mode=mode, email=email, ca=ca, ca_root=ca_root)


def parse_dns(sec: Section) -> DnsConfig:
    provider = sec.text("provider", "none", choices=DNS_PROVIDERS) or "none"
    zone = sec.text("zone", pattern=HOSTNAME, hint="the zone's name, like example.org")
    ttl = sec.integer("ttl", DEFAULT_TTL, lo=60, hi=86400) or DEFAULT_TTL
    sec.done(["provider", "zone", "ttl"])
    if provider != "none" and zone is None and not sec.has("zone"):
        sec.fail(sec.node, sec.sub("zone"), f"is required with provider {provider}",
                 "the DNS zone homelab writes records into, like example.org")
    return DnsConfig(provider=provider, zone=zone.lower() if zone else None, ttl=ttl)


def parse_anubis_image(sec: Section) -> AnubisImage:
    image = sec.text("image", ANUBIS_IMAGE, pattern=IMAGE,
                     hint="registry/path:tag, like ghcr.io/techarohq/anubis:v1.27.0") or ANUBIS_IMAGE
    mirror = sec.text("mirror", pattern=MIRROR, hint="a registry host[:port], like registry.lan:5000")
    sec.done(["image", "mirror"])
    return AnubisImage(image, mirror)


def parse_app(sec: Section) -> AppIngress | None:
    name = sec.text("name", required=True, pattern=NAME, hint="the name of an app")
    hostname = sec.text("hostname", pattern=HOSTNAME, hint="a DNS name like notes.example.org")
    if hostname is not None and "." not in hostname:
        sec.fail(sec.raw("hostname"), sec.sub("hostname"), f"{hostname!r} is not a full DNS name",
                 "like notes.example.org")
    anubis = sec.flag("anubis", False)
    difficulty = sec.integer("difficulty", DEFAULT_DIFFICULTY, lo=1, hi=8)
    tls = sec.text("tls", choices=TLS_MODES)
    sec.done(["name", "hostname", "anubis", "difficulty", "tls"])
    if sec.has("difficulty") and not anubis:
        sec.fail(sec.raw("difficulty"), sec.sub("difficulty"), "has no effect without anubis: true",
                 "add anubis: true, or remove difficulty")
    if not sec.ok or name is None:
        return None
    return AppIngress(name=name, hostname=hostname.lower() if hostname else None, anubis=anubis,
                      difficulty=difficulty or DEFAULT_DIFFICULTY, tls=tls)


def _hostname_check(domain: str | None) -> Callable[[Section], AppIngress | None]:
    """parse_app, plus: every app has a name (its own or APP.<domain>) and no two share one."""
    seen: dict[str, str] = {}

    def parse(item: Section) -> AppIngress | None:
        app = parse_app(item)
        if app is None:
            return None
        host = app.hostname or (f"{app.name}.{domain}" if domain else None)
        at = item.items.get("hostname") or item.node
        if host is None:
            item.fail(at, item.sub("hostname"), f"app {app.name!r} has no hostname",
                      "give it a hostname, or set ingress.domain")
        elif host in seen:
            item.fail(at, item.sub("hostname"), f"{host!r} is already used by app {seen[host]!r}",
                      "every app needs its own hostname")
        else:
            seen[host] = app.name
        return app

    return parse


def parse_ingress(sec: Section) -> IngressConfig:
    machines = sec.str_list("machines", pattern=NAME, hint="the name of a compute machine or server")
    if not machines and sec.ok:
        sec.fail(sec.node, sec.sub("machines"), "names no machine", "list the machines that run Caddy, like [web-1]")
    if len(set(machines)) < len(machines):
        sec.fail(sec.raw("machines"), sec.sub("machines"), "names a machine twice", "list every machine once")
    domain = sec.text("domain", pattern=HOSTNAME, hint="a DNS name like example.org")
    domain = domain.lower() if domain else None
    tls_sec = sec.section("tls")
    tls = parse_tls(tls_sec) if tls_sec is not None else TlsConfig()
    if tls_sec is None and sec.ok:  # the default, acme, cannot work without an email
        sec.fail(sec.node, sec.sub("tls"), "is required (acme needs an email)",
                 "tls: {mode: acme, email: ops@example.org} or tls: {mode: internal}")
    dns_sec = sec.section("dns")
    dns = parse_dns(dns_sec) if dns_sec is not None else DnsConfig()
    access_logs = sec.flag("access_logs", True)
    apps = sec.unique_items("apps", _hostname_check(domain), hint="list every app once")
    anubis_sec = sec.section("anubis")
    anubis = parse_anubis_image(anubis_sec) if anubis_sec is not None else AnubisImage()
    sec.done(["machines", "domain", "tls", "dns", "access_logs", "apps", "anubis"])
    if dns.zone and domain and not (domain == dns.zone or domain.endswith("." + dns.zone)):
        sec.fail(dns_sec.raw("zone") if dns_sec else sec.node, sec.sub("dns.zone"),
                 f"domain {domain!r} is not inside zone {dns.zone!r}",
                 "the zone must be the domain or a parent of it")
    return IngressConfig(machines=machines, domain=domain, tls=tls, dns=dns,
                         access_logs=access_logs, apps=tuple(apps), anubis=anubis)


def ingress_claims(ingress: IngressConfig, cfg: Any) -> Iterator[Claim]:
    """What ingress needs of the firewall: HTTP and HTTPS on the ingress machines only (UDP 443
    for HTTP/3, which Caddy serves by default). Routes come from the apps' HttpService claims."""
    for i, host in enumerate(ingress.machines):
        path = f"ingress.machines[{i}]"
        yield NeedsPackage("ingress", path, host, "caddy")
        yield OpenPort("ingress", path, host, "tcp", 80, why="HTTP (ACME http-01, redirect to HTTPS)")
        yield OpenPort("ingress", path, host, "tcp", 443, why="HTTPS")
        yield OpenPort("ingress", path, host, "udp", 443, why="HTTP/3")


# Debian 13 split the docker client out of docker.io (docker-cli, only a Recommends of it);
# Debian 12's docker.io has the client and no docker-cli package exists there
DEBIAN_13_OR_LATER = "! grep -Eq '^VERSION_ID=\"?(9|1[0-2])\"?$' /etc/os-release"


def ingress_derived_claims(ingress: IngressConfig, cfg: Any, claims: Claims) -> Iterator[Claim]:
    """Docker on the ingress machines once any app is served behind Anubis (a container)."""
    services = claims.of(HttpService)
    if any(ingress.app(s.app).anubis or s.anubis for s in services):
        for i, host in enumerate(ingress.machines):
            yield NeedsPackage("ingress", f"ingress.machines[{i}]", host, "docker.io")
            yield NeedsPackage("ingress", f"ingress.machines[{i}]", host, "docker-cli", only_if=DEBIAN_13_OR_LATER)
