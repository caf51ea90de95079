"""`compute:` (layer 3): machines we adopt over SSH and the base every machine gets."""
from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from homelab.config.reader import NAME, PACKAGE, PATH, TIMEZONE, USER, Section
from homelab.config.yamlpos import show
from homelab.hosts import LOCAL

# Small and useful on every machine; the rest comes with the layers that need it.
DEFAULT_PACKAGES = ("ca-certificates", "curl", "jq", "rsync", "tzdata")


@dataclass(frozen=True)
class Machine:
    """An existing machine (a Pi, a NAS, an old PC, a lab host) adopted over SSH, or, with
    `address: local`, the machine homelab runs on, provisioned in place without SSH."""

    name: str
    address: str
    user: str = "root"
    port: int = 22
    key: str | None = None  # private key path; None: the operator key (privilege.ssh_key) or ssh-agent
    ipv6: str | None = None  # its public IPv6 address where `address` is IPv4 or a name: AAAA records (ingress)

    @property
    def sudo(self) -> bool:
        return self.user != "root"

    @property
    def local(self) -> bool:
        return self.address == LOCAL


@dataclass(frozen=True)
class BaseSettings:
    timezone: str = "UTC"
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    set_hostname: bool = True


@dataclass(frozen=True)
class ComputeConfig:
    machines: tuple[Machine, ...] = ()
    base: BaseSettings = field(default_factory=BaseSettings)
    hetzner: Any = None  # parsed by config/hetzner.py when present


def parse_machine(sec: Section) -> Machine | None:
    name = sec.text("name", required=True, pattern=NAME, hint="lowercase letters, digits and '-', like 'pi-1'")
    address = sec.address("address", required=True)
    user = sec.text("user", "root", pattern=USER, hint="a Unix user name like 'admin'")
    port = sec.integer("port", 22, lo=1, hi=65535)
    key = sec.text("key", pattern=PATH, hint="a path to a private key file, without spaces")
    ipv6 = parse_ipv6(sec)
    sec.done(["name", "address", "user", "port", "key", "ipv6"])
    if address == LOCAL:
        for unused in ("port", "key"):  # no SSH to this machine: they would silently mean nothing
            if sec.has(unused):
                sec.fail(sec.raw(unused), sec.sub(unused), f"{unused} is not used with address: local (this machine, "
                         "no SSH)", f"remove {unused}, or give the machine's real address")
    if not sec.ok or name is None or address is None:
        return None
    return Machine(name=name, address=address, user=user or "root", port=port or 22, key=key, ipv6=ipv6)


def parse_ipv6(sec: Section) -> str | None:
    """`ipv6:` of a machine: one IPv6 address, kept in its short form (2001:db8:0::7 -> 2001:db8::7)."""
    raw = sec.text("ipv6")
    if raw is None:
        return None
    try:
        return ipaddress.IPv6Address(raw).compressed
    except ValueError:
        sec.fail(sec.raw("ipv6"), sec.sub("ipv6"), f"{show(raw)} is not an IPv6 address",
                 "like 2001:db8::7 (the machine's IPv4 address or name goes in address)")
        return None


@functools.lru_cache(maxsize=1)
def known_timezones() -> frozenset[str]:
    """The zone database of this machine (empty when it has none: then any well-formed name goes)."""
    return frozenset(zoneinfo.available_timezones())


def in_zone_files(tz: str) -> bool:
    """Whether `tz` is a zone file of this machine's database: one file read, where listing the
    whole database (known_timezones) walks ~600 files, a tenth of every command's start-up."""
    if not tz or tz.startswith("/") or ".." in tz.split("/"):
        return False
    for root in zoneinfo.TZPATH:
        try:
            with open(os.path.join(root, tz), "rb") as f:
                if f.read(4) == b"TZif":
                    return True
        except OSError:
            continue
    return False


def check_timezone(sec: Section, tz: str | None) -> str | None:
    if tz is None or in_zone_files(tz):
        return tz
    zones = known_timezones()  # the whole list only for an unknown name: what it may have meant
    if not zones or tz in zones:
        return tz
    close = difflib.get_close_matches(tz, zones, n=1, cutoff=0.6) or \
        [z for z in zones if z.lower() == tz.lower()][:1]
    hint = f"did you mean '{close[0]}'?" if close else "an IANA zone like Europe/Berlin (see timedatectl list-timezones)"
    sec.fail(sec.raw("timezone"), sec.sub("timezone"), f"{show(tz)} is not in the time zone database", hint)
    return None


def _login_key(m: Machine) -> tuple[str, int, str]:
    """Address, port and user as SSH sees them: `10.0.0.01` and `10.0.0.1` are one machine."""
    try:
        address = ipaddress.ip_address(m.address).compressed
    except ValueError:
        address = m.address.lower()
    return address, m.port, m.user


def parse_machines(sec: Section, seen: dict[str, str]) -> list[Machine]:
    """Machines by unique name, each reached at its own address+port+user (two entries for one
    login would configure one machine twice, with different names); at most one is local."""
    logins: dict[tuple[str, int, str], tuple[str, str]] = {}  # -> (name, path)
    local_at: list[str] = []  # where the one `address: local` machine is

    def parse(item: Section) -> Machine | None:
        m = parse_machine(item)
        if m is None:
            return None
        if m.local:
            if local_at:
                item.fail(item.raw("address"), item.sub("address"), f"only one machine can be local; {local_at[0]} "
                          "already is", "this machine is one machine: give the others their addresses")
                return None
            local_at.append(item.path)
        other = logins.get(_login_key(m))
        if other is not None:
            item.fail(item.raw("address"), item.sub("address"),
                      f"{m.user}@{m.address} port {m.port} is already machine '{other[0]}' ({other[1]})",
                      "one machine, one entry: remove the copy or fix its address, port or user")
            return None
        logins.setdefault(_login_key(m), (m.name, item.path))
        return m

    return sec.unique_items("machines", parse, seen=seen, hint="every machine needs its own name")


def parse_base(sec: Section | None) -> BaseSettings:
    if sec is None:
        return BaseSettings()
    tz = check_timezone(sec, sec.text("timezone", "UTC", pattern=TIMEZONE, hint="an IANA zone like Europe/Berlin"))
    pkgs = sec.str_list("packages", pattern=PACKAGE, hint="a Debian package name", default=DEFAULT_PACKAGES)
    set_hostname = sec.flag("set_hostname", True)
    sec.done(["timezone", "packages", "set_hostname"])
    return BaseSettings(timezone=tz or "UTC", packages=tuple(dict.fromkeys(pkgs)), set_hostname=set_hostname)


def parse_compute(sec: Section) -> ComputeConfig:
    from homelab.config.hetzner import parse_hetzner  # Hetzner servers are a part of compute

    seen: dict[str, str] = {}  # machine names -> path; servers (hetzner) must not reuse them
    machines = parse_machines(sec, seen)
    base = parse_base(sec.section("base"))
    sub = sec.section("hetzner")
    hetzner = parse_hetzner(sub, seen) if sub is not None else None
    sec.done(["machines", "base", "hetzner"])
    return ComputeConfig(machines=tuple(machines), base=base, hetzner=hetzner)
