"""Hetzner Cloud DNS (zones and RRSets, `client.zones`, hcloud >= 2.11) for the ingress records.

Kept beside `hcloud_api` (servers) and built on it: the same client, the same bounded retries
and action waits, our own frozen values out. Only A/AAAA RRSets are read: those are the only
types homelab writes. The old DNS console API (dns.hetzner.com) is gone (wave2-facts §0.8).
"""
from __future__ import annotations

from typing import cast

from hcloud.zones import Zone, ZoneRecord, ZoneRRSet
from hcloud.zones.domain import ZoneRRSetType

from homelab.providers.dns_records import RRSet
from homelab.providers.hcloud_api import HcloudApi

ACTION_TIMEOUT = 120.0  # s; DNS actions finish within seconds on Hetzner


class HcloudZones:
    def __init__(self, api: HcloudApi) -> None:
        self.api = api
        self.zones = api.client.zones

    def zone_exists(self, zone: str) -> bool:
        found = self.api.call(f"look up DNS zone {zone}", lambda: self.zones.get_list(name=zone).zones)
        return bool(found)

    def list_address_rrsets(self, zone: str) -> list[RRSet]:
        found = self.api.call(f"list DNS records of {zone}",
                              lambda: self.zones.get_rrset_all(Zone(name=zone), type=["A", "AAAA"]))
        return sorted((RRSet(str(r.name), str(r.type), tuple(sorted(x.value for x in r.records or [])), r.ttl,
                             dict(r.labels or {})) for r in found), key=lambda r: (r.name, r.type))

    def create(self, zone: str, rrset: RRSet) -> None:
        what = f"create DNS record {rrset.name} {rrset.type} in {zone}"

        def make() -> int:
            return self.zones.create_rrset(
                Zone(name=zone), name=rrset.name, type=cast(ZoneRRSetType, rrset.type), ttl=rrset.ttl,
                labels=dict(rrset.labels), records=[ZoneRecord(value=v) for v in rrset.values]).action.id

        # after an unknown outcome (timeout, 5xx) look first: -1 = it exists, nothing to wait for
        action_id = self.api.call(what, make, idempotent=False, recover=lambda: -1 if self._exists(zone, rrset) else None)
        if action_id >= 0:
            self.api.wait_action(what, action_id, ACTION_TIMEOUT)

    def set_records(self, zone: str, rrset: RRSet) -> None:
        """Replace the values (set_records is idempotent), then the TTL if it differs."""
        what = f"set DNS record {rrset.name} {rrset.type} in {zone}"
        ref = ZoneRRSet(name=rrset.name, type=rrset.type, zone=Zone(name=zone))  # type: ignore[arg-type]
        action = self.api.call(what, lambda: self.zones.set_rrset_records(
            ref, [ZoneRecord(value=v) for v in rrset.values]))
        self.api.wait_action(what, action.id, ACTION_TIMEOUT)
        action = self.api.call(what, lambda: self.zones.change_rrset_ttl(ref, rrset.ttl))
        self.api.wait_action(what, action.id, ACTION_TIMEOUT)

    def delete(self, zone: str, name: str, rtype: str) -> None:
        what = f"delete DNS record {name} {rtype} in {zone}"
        ref = ZoneRRSet(name=name, type=rtype, zone=Zone(name=zone))  # type: ignore[arg-type]
        resp = self.api.call(what, lambda: self.zones.delete_rrset(ref))
        self.api.wait_action(what, resp.action.id, ACTION_TIMEOUT)

    def _exists(self, zone: str, rrset: RRSet) -> bool:
        return any((r.name, r.type) == (rrset.name, rrset.type) for r in self.list_address_rrsets(zone))
