"""The base every machine gets: facts, hostname, timezone, and every layer's packages. Pure diff.

Probes read everything in one go; `diff_base` compares with the config and returns Changes
whose operations are pyinfra operation data. Order matters: packages (tzdata) before the
timezone link that points into them. The packages are the base ones plus all package claims
of the host, installed by one apt transaction (homelab/layers/compute/packages.py).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Mapping

from homelab.config.compute import BaseSettings
from homelab.layers.compute.packages import HostPackages, by_owner, missing_packages, package_probes, wanted_now
from homelab.model import Change, Health, Monitor, Op
from homelab.probe import AnyProbe, ProbeResult

LAYER = "compute"


HOSTS = "/etc/hosts"
LOOPBACK = "127.0.1.1"  # where Debian's installer names the machine in /etc/hosts


def base_probes(packages: HostPackages, host: str) -> dict[str, AnyProbe]:
    # /etc/hostname, the kernel's hostname and whether /etc/hosts names `host` are read with
    # shell builtins (three processes fewer on every host at every no-op)
    name = shlex.quote(host)
    return {
        "compute.facts": ". /etc/os-release; echo \"$ID\"; echo \"$VERSION_ID\"; uname -m; "
                         "h=; read -r h < /etc/hostname; echo \"$h\"; read -r h < /proc/sys/kernel/hostname; echo \"$h\"; "
                         f"set -f; n=no; while read -r a names || [ -n \"$a\" ]; do case $a in '#'*) continue;; esac; for x in $names; do "
                         f"case $x in '#'*) break;; esac; [ \"$x\" = {name} ] && n=yes; done; done < {HOSTS}; echo \"$n\"",
        "compute.timezone": "readlink /etc/localtime || true; cat /etc/timezone 2>/dev/null || true",
        **package_probes(packages),
    }


@dataclass(frozen=True)
class Facts:
    os_id: str
    os_version: str
    arch: str
    etc_hostname: str
    hostname: str
    in_hosts: bool = True  # /etc/hosts names the host we look for (sudo warns on every call when not)

    @property
    def describe(self) -> str:
        return f"{self.os_id} {self.os_version} {self.arch}".strip()


def parse_facts(result: ProbeResult | None) -> Facts | None:
    if result is None or not result.ok:
        return None
    lines = [s.strip() for s in result.out.splitlines()] + [""] * 6
    os_id, os_version, arch, etc_hostname, hostname, named = lines[:6]
    return Facts(os_id, os_version, arch, etc_hostname, hostname, in_hosts=named != "no")


def current_timezone(result: ProbeResult | None) -> str | None:
    if result is None:
        return None
    for line in result.lines():
        if "zoneinfo/" in line:
            return line.split("zoneinfo/", 1)[1].strip()
    return None


def diff_base(host: str, base: BaseSettings, probed: Mapping[str, ProbeResult] | None,
              packages: HostPackages) -> tuple[list[Change], list[str]]:
    """Pure: changes for one host, and the "nothing to do because ..." lines. `packages`: the
    base ones and every layer's claims for this host, installed by ONE apt transaction
    (no Recommends: layers name what they use; wireguard-tools would recommend a kernel)."""
    changes: list[Change] = []
    same: list[str] = []
    missing = missing_packages(packages, probed)
    if probed is None:  # not created yet / unreachable in plan: everything is new
        probed = {}
    if missing:
        names = [p for p, _ in missing]
        changes.append(Change(LAYER, host, "create", f"install packages: {', '.join(names)}",
                              ops=(Op("apt.packages", {"packages": names, "update": True, "cache_time": 3600,
                                                       "no_recommends": True}),),
                              host=host, detail=by_owner(missing)))
    else:
        same.append(f"{host}: packages installed ({len(wanted_now(packages, probed))}, every layer's)")
    tz = current_timezone(probed.get("compute.timezone"))
    if tz != base.timezone:
        target = f"/usr/share/zoneinfo/{base.timezone}"
        changes.append(Change(LAYER, host, "update", f"timezone {tz or '(unset)'} -> {base.timezone}",
                              ops=(Op("files.link", {"path": "/etc/localtime", "target": target, "force": True}),
                                   Op("files.put_text", {"content": base.timezone + "\n", "dest": "/etc/timezone",
                                                         "mode": "644"})),
                              host=host))
    else:
        same.append(f"{host}: timezone is {tz}")
    facts = parse_facts(probed.get("compute.facts"))
    if base.set_hostname:
        # the name must resolve on the host itself too: without it sudo says "unable to resolve
        # host" at every call (pyinfra's server.hostname leaves /etc/hosts as it was)
        hosts_line = Op("files.line", {"path": HOSTS, "line": rf"^{re.escape(LOOPBACK)}\s",
                                       "replace": f"{LOOPBACK} {host}"})
        if facts is None or facts.hostname != host or facts.etc_hostname != host:
            old = facts.hostname if facts else "(unknown)"
            changes.append(Change(LAYER, host, "update", f"hostname {old} -> {host}",
                                  ops=(Op("server.hostname", {"hostname": host}), hosts_line), host=host))
        elif not facts.in_hosts:
            changes.append(Change(LAYER, host, "update", f"{HOSTS}: name {host} ({LOOPBACK})", ops=(hosts_line,),
                                  host=host))
        else:
            same.append(f"{host}: hostname is {host}")
    return changes, same


def base_monitors(host: str, base: BaseSettings, probed: Mapping[str, ProbeResult] | None,
                  unreachable: str | None, packages: HostPackages) -> list[Monitor]:
    """Pure: the compute pane's monitors for one host."""
    if unreachable is not None or probed is None:
        return [Monitor(LAYER, host, "reachable", Health.FAIL, unreachable or "not checked")]
    facts = parse_facts(probed.get("compute.facts"))
    out = [Monitor(LAYER, host, "reachable", Health.OK, facts.describe if facts else "answers SSH")]
    missing = [p for p, _ in missing_packages(packages, probed)]
    out.append(Monitor(LAYER, host, "packages", Health.WARN if missing else Health.OK,
                       f"missing: {', '.join(missing)}" if missing else
                       f"{len(wanted_now(packages, probed))} installed (every layer's)"))
    tz = current_timezone(probed.get("compute.timezone"))
    out.append(Monitor(LAYER, host, "timezone", Health.OK if tz == base.timezone else Health.WARN,
                       f"{tz or 'unset'}" + ("" if tz == base.timezone else f", want {base.timezone}")))
    return out
