"""DNS records for the app hostnames: A/AAAA to the ingress machines. Plan is pure, apply is I/O.

Addresses: a machine's `address` when it is an IP (A or AAAA), and its `ipv6` from the config
(AAAA: a machine homelab reaches over IPv4 or by name may answer on IPv6 too).

Ownership: a record homelab writes carries `managed-by=homelab` and `homelab/cluster=<cluster>`
(the labels compute puts on servers). Only such RRSets are ever changed or deleted; a wanted
name already held by someone else's RRSet is reported, never overwritten. Names outside the
zone, and every name when no DNS provider is configured, become records for a person to
create by hand — listed in the plan, touched by nobody.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

from homelab.config.hetzner import CLUSTER_LABEL, MANAGED_BY
from homelab.providers.dns_records import RRSet


@dataclass(frozen=True)
class RecordChange:
    action: str  # create | update | delete
    rrset: RRSet  # wanted (create/update) or observed (delete)
    old: tuple[str, ...] = ()  # values before an update or delete

    @property
    def summary(self) -> str:
        new = ", ".join(self.rrset.values)
        if self.action == "create":
            return f"+ {self.rrset.name} {self.rrset.type} {new} (ttl {self.rrset.ttl})"
        if self.action == "update":
            return f"~ {self.rrset.name} {self.rrset.type} {', '.join(self.old)} -> {new} (ttl {self.rrset.ttl})"
        return f"- {self.rrset.name} {self.rrset.type} {', '.join(self.old)} (no app uses it any more)"


@dataclass(frozen=True)
class DnsPlan:
    zone: str | None
    changes: tuple[RecordChange, ...] = ()
    unchanged: tuple[str, ...] = ()  # "notes A 203.0.113.7 is set"
    conflicts: tuple[str, ...] = ()  # wanted names held by records homelab does not own
    manual: tuple[str, ...] = ()  # zone-file lines for a person to create


def labels_for(cluster: str) -> dict[str, str]:
    return {MANAGED_BY: "homelab", CLUSTER_LABEL: cluster}


def is_ours(rrset: RRSet, cluster: str) -> bool:
    return rrset.labels.get(MANAGED_BY) == "homelab" and rrset.labels.get(CLUSTER_LABEL) == cluster


def relative_name(hostname: str, zone: str) -> str | None:
    """notes.example.org in example.org -> "notes"; the apex -> "@"; outside the zone -> None."""
    host, zone = hostname.lower().rstrip("."), zone.lower().rstrip(".")
    if host == zone:
        return "@"
    if host.endswith("." + zone):
        return host[: -len(zone) - 1]
    return None


def record_addresses(machines: Sequence[str], known: Mapping[str, tuple[str, str | None]]
                     ) -> tuple[list[str], list[str], list[str]]:
    """(IPv4, IPv6, warnings) the records point at, from each ingress machine's address and its
    `ipv6` (known: name -> (address, ipv6 or None)). A name as address gives no record: homelab
    does not resolve names for DNS it writes."""
    ipv4: list[str] = []
    ipv6: list[str] = []
    warnings: list[str] = []
    for name in machines:
        address, v6 = known.get(name, ("", None))
        found = [a for a in (address, v6) if a and _ip_version(a)]
        if not found:
            warnings.append(f"DNS: {name} has no IP address known here "
                            f"({address or 'not created yet'}): no record points at it")
        for a in found:
            bucket = ipv6 if _ip_version(a) == 6 else ipv4
            if a not in bucket:
                bucket.append(a)
    return ipv4, ipv6, warnings


def _ip_version(text: str) -> int | None:
    try:
        return ipaddress.ip_address(text).version
    except ValueError:
        return None


def wanted_records(hostnames: Iterable[str], zone: str | None, ipv4: Sequence[str], ipv6: Sequence[str],
                   ttl: int, cluster: str) -> tuple[list[RRSet], list[str]]:
    """(RRSets inside the zone, zone-file lines for names a person creates by hand)."""
    inside: list[RRSet] = []
    manual: list[str] = []
    for host in sorted(set(hostnames)):
        name = relative_name(host, zone) if zone else None
        for rtype, values in (("A", ipv4), ("AAAA", ipv6)):
            if not values:
                continue
            vals = tuple(sorted(set(values)))
            if name is None:
                manual += [f"{host}. {ttl} IN {rtype} {v}" for v in vals]
            else:
                inside.append(RRSet(name, rtype, vals, ttl, labels_for(cluster)))
    return inside, manual


def plan_records(wanted: Sequence[RRSet], observed: Sequence[RRSet], *, zone: str, cluster: str,
                 manual: Sequence[str] = ()) -> DnsPlan:
    have: Mapping[tuple[str, str], RRSet] = {(r.name, r.type): r for r in observed}
    want_keys = {(r.name, r.type) for r in wanted}
    changes: list[RecordChange] = []
    unchanged: list[str] = []
    conflicts: list[str] = []
    for w in sorted(wanted, key=lambda r: (r.name, r.type)):
        h = have.get((w.name, w.type))
        if h is None:
            changes.append(RecordChange("create", w))
        elif not is_ours(h, cluster):
            conflicts.append(f"{w.name} {w.type} exists in {zone} with {', '.join(h.values)} and is not homelab's: "
                             f"left alone (delete it, or give the app another hostname)")
        elif h.values != w.values or h.ttl != w.ttl:
            changes.append(RecordChange("update", w, h.values))
        else:
            unchanged.append(f"{w.name} {w.type} {', '.join(w.values)} is set")
    for h in sorted(observed, key=lambda r: (r.name, r.type)):
        if (h.name, h.type) not in want_keys and is_ours(h, cluster):
            changes.append(RecordChange("delete", h, h.values))
    return DnsPlan(zone, tuple(changes), tuple(unchanged), tuple(conflicts), tuple(manual))


def plan_by_hand(hostnames: Iterable[str], ipv4: Sequence[str], ipv6: Sequence[str], ttl: int) -> DnsPlan:
    """No DNS provider: every record is for a person to create."""
    _, manual = wanted_records(hostnames, None, ipv4, ipv6, ttl, "")
    return DnsPlan(None, manual=tuple(manual))


class Zones(Protocol):
    """What apply needs of a DNS provider (HcloudZones; tests may pass another)."""

    def list_address_rrsets(self, zone: str) -> list[RRSet]: ...
    def create(self, zone: str, rrset: RRSet) -> None: ...
    def set_records(self, zone: str, rrset: RRSet) -> None: ...
    def delete(self, zone: str, name: str, rtype: str) -> None: ...


def observe_records(zones: Zones, zone: str) -> list[RRSet]:
    return zones.list_address_rrsets(zone)


def apply_records(zones: Zones, plan: DnsPlan) -> list[str]:
    """Carry out a plan's changes in order; returns what was done (one line each)."""
    if plan.zone is None:
        return []
    done = []
    for c in plan.changes:
        if c.action == "create":
            zones.create(plan.zone, c.rrset)
        elif c.action == "update":
            zones.set_records(plan.zone, c.rrset)
        else:
            zones.delete(plan.zone, c.rrset.name, c.rrset.type)
        done.append(c.summary)
    return done
