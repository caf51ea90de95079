"""The stand-in Hetzner API's DNS part: zones and RRSets in the Cloud API's shapes (NOT Hetzner).

Served by `FakeHcloud` under /v1/zones, checked by driving it with the real `hcloud`
library's `client.zones` (tests/unit/test_fake_hcloud_zones.py):

- GET/POST /zones, GET/PUT/DELETE /zones/{id_or_name}, POST /zones/{z}/actions/{change_ttl,
  change_protection};
- GET/POST /zones/{z}/rrsets (filters name, type (repeatable), label_selector), GET/PUT/DELETE
  /zones/{z}/rrsets/{name}/{type}, POST …/actions/{set_records, add_records, remove_records,
  change_ttl, change_protection};
- a new primary zone gets an SOA and three NS RRSets at "@", as Hetzner's do; every change
  returns an Action (finished at once unless `slow_actions` is set).

Simplified on purpose: no zone files, no secondary zones, no nameserver publishing (status
is always "ok", delegation "unknown"); values are checked for A and AAAA only.
"""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from homelab.lab.fake_hcloud import ApiError, _now, match_selector

if TYPE_CHECKING:
    from homelab.lab.fake_hcloud import FakeHcloud

TYPES = ("A", "AAAA", "CAA", "CNAME", "DS", "HINFO", "HTTPS", "MX", "NS", "PTR", "RP", "SOA", "SRV", "SVCB",
         "TLSA", "TXT")
NAMESERVERS = ("hydrogen.ns.hetzner.com.", "oxygen.ns.hetzner.com.", "helium.ns.hetzner.de.")


def _zone_json(z: dict[str, Any]) -> dict[str, Any]:
    return {"id": z["id"], "name": z["name"], "created": z["created"], "mode": "primary", "ttl": z["ttl"],
            "labels": dict(z["labels"]), "protection": {"delete": z["protected"]}, "status": "ok",
            "record_count": sum(len(r["records"]) for r in z["rrsets"].values()), "registrar": "other",
            "primary_nameservers": [],
            "authoritative_nameservers": {"assigned": list(NAMESERVERS), "delegated": [],
                                          "delegation_last_check": None, "delegation_status": "unknown"}}


def _rrset_json(z: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"{r['name']}/{r['type']}", "name": r["name"], "type": r["type"], "ttl": r["ttl"],
            "labels": dict(r["labels"]), "protection": {"change": r["protected"]},
            "records": [dict(x) for x in r["records"]], "zone": z["id"]}


def _records(rtype: str, raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise ApiError(400, "invalid_input", "invalid input in field 'records'")
    out = []
    for rec in raw:
        value = rec.get("value") if isinstance(rec, dict) else None
        if not isinstance(value, str) or not value:
            raise ApiError(400, "invalid_input", "invalid input in field 'records': value is required")
        if rtype in ("A", "AAAA"):
            try:
                ip = ipaddress.ip_address(value)
            except ValueError:
                ip = None
            if ip is None or ip.version != (4 if rtype == "A" else 6):
                raise ApiError(400, "invalid_input", f"invalid input in field 'records': {value!r} is not an "
                                                     f"{'IPv4' if rtype == 'A' else 'IPv6'} address")
        out.append({"value": value, **({"comment": rec["comment"]} if rec.get("comment") else {})})
    return out


def _new_rrset(name: str, rtype: str, ttl: Any, labels: Any, records: list[dict[str, str]]) -> dict[str, Any]:
    return {"name": name, "type": rtype, "ttl": ttl, "labels": dict(labels or {}), "protected": False,
            "records": records}


class ZoneStore:
    """Zone state of one stand-in API; called with its lock held."""

    def __init__(self, api: FakeHcloud) -> None:
        self.api = api
        self.zones: dict[int, dict[str, Any]] = {}

    def _zone(self, ident: str) -> dict[str, Any]:
        z = self.zones.get(int(ident)) if ident.isdigit() else \
            next((z for z in self.zones.values() if z["name"] == ident), None)
        if z is None:
            raise ApiError(404, "not_found", f"zone with ID or name '{ident}' not found")
        return z

    def _action(self, command: str, z: dict[str, Any]) -> dict[str, Any]:
        return self.api._action(command, [{"id": z["id"], "type": "zone"}]).to_json()  # noqa: SLF001

    def handle(self, method: str, rest: list[str], query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        q = {k: v[0] for k, v in query.items()}
        body = body or {}
        if not rest:
            if method == "GET":
                items = [_zone_json(z) for z in sorted(self.zones.values(), key=lambda z: z["id"])
                         if q.get("name", z["name"]) == z["name"] and match_selector(z["labels"], q.get("label_selector", ""))]
                return 200, self.api._page("zones", items, q)  # noqa: SLF001
            if method == "POST":
                return self._create_zone(body)
        z = self._zone(rest[0])
        if len(rest) == 1:
            if method == "GET":
                return 200, {"zone": _zone_json(z)}
            if method == "PUT":
                if "labels" in body:
                    z["labels"] = dict(body["labels"] or {})
                return 200, {"zone": _zone_json(z)}
            if method == "DELETE":
                if z["protected"]:
                    raise ApiError(423, "protected", "zone is delete protected")
                del self.zones[z["id"]]
                return 200, {"action": self._action("delete_zone", z)}
        if len(rest) == 3 and rest[1] == "actions" and method == "POST":
            if rest[2] == "change_ttl":
                z["ttl"] = int(body.get("ttl") or z["ttl"])
            elif rest[2] == "change_protection":
                z["protected"] = bool(body.get("delete", z["protected"]))
            else:
                raise ApiError(404, "not_found", f"zone action '{rest[2]}' is not part of this stand-in")
            return 201, {"action": self._action(rest[2], z)}
        if rest[1:2] == ["rrsets"]:
            return self._rrsets(method, z, rest[2:], query, body)
        raise ApiError(404, "not_found", "not found")

    def _create_zone(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body.get("name")
        if not isinstance(name, str) or "." not in name or name != name.lower():
            raise ApiError(400, "invalid_input", "invalid input in field 'name'")
        if body.get("mode", "primary") != "primary":
            raise ApiError(400, "invalid_input", "only primary zones are part of this stand-in")
        if any(z["name"] == name for z in self.zones.values()):
            raise ApiError(409, "uniqueness_error", "zone name is already used", {"fields": [{"name": "name"}]})
        ttl = int(body.get("ttl") or 3600)
        zid = next(self.api.ids)
        soa = f"{NAMESERVERS[0]} dns.hetzner.com. 2026120101 86400 10800 3600000 3600"
        rrsets: dict[tuple[str, str], dict[str, Any]] = {
            ("@", "SOA"): _new_rrset("@", "SOA", None, {}, [{"value": soa}]),
            ("@", "NS"): _new_rrset("@", "NS", None, {}, [{"value": ns} for ns in NAMESERVERS])}
        z = {"id": zid, "name": name, "created": _now(), "ttl": ttl, "labels": dict(body.get("labels") or {}),
             "protected": False, "rrsets": rrsets}
        for r in body.get("rrsets") or []:
            key = (str(r.get("name")), str(r.get("type")))
            rrsets[key] = _new_rrset(key[0], key[1], r.get("ttl"), r.get("labels"),
                                          _records(key[1], r.get("records") or []))
        self.zones[zid] = z
        return 201, {"zone": _zone_json(z), "action": self._action("create_zone", z)}

    def _rrsets(self, method: str, z: dict[str, Any], rest: list[str], query: dict[str, list[str]],
                body: dict[str, Any]) -> tuple[int, Any]:
        q = {k: v[0] for k, v in query.items()}
        if not rest:
            if method == "GET":
                types = query.get("type") or list(TYPES)
                items = [_rrset_json(z, r) for (n, t), r in sorted(z["rrsets"].items())
                         if q.get("name", n) == n and t in types and match_selector(r["labels"], q.get("label_selector", ""))]
                return 200, self.api._page("rrsets", items, q)  # noqa: SLF001
            if method == "POST":
                name, rtype = body.get("name"), body.get("type")
                if not isinstance(name, str) or not name or name != name.lower() or name.endswith("."):
                    raise ApiError(400, "invalid_input", "invalid input in field 'name'")
                if rtype not in TYPES:
                    raise ApiError(400, "invalid_input", "invalid input in field 'type'")
                if (name, rtype) in z["rrsets"]:
                    raise ApiError(409, "uniqueness_error", "rrset already exists", {"fields": [{"name": "name"}]})
                r = _new_rrset(name, rtype, body.get("ttl"), body.get("labels"), _records(rtype, body.get("records") or []))
                z["rrsets"][(name, rtype)] = r
                return 201, {"rrset": _rrset_json(z, r), "action": self._action("create_rrset", z)}
        if len(rest) < 2:
            raise ApiError(404, "not_found", "not found")
        r = z["rrsets"].get((rest[0], rest[1]))
        if r is None:
            raise ApiError(404, "not_found", f"rrset '{rest[0]}/{rest[1]}' not found")
        if len(rest) == 2:
            if method == "GET":
                return 200, {"rrset": _rrset_json(z, r)}
            if method == "PUT":
                if "labels" in body:
                    r["labels"] = dict(body["labels"] or {})
                return 200, {"rrset": _rrset_json(z, r)}
            if method == "DELETE":
                if r["protected"]:
                    raise ApiError(423, "protected", "rrset is change protected")
                del z["rrsets"][(rest[0], rest[1])]
                return 200, {"action": self._action("delete_rrset", z)}
        if len(rest) == 4 and rest[2] == "actions" and method == "POST":
            return 201, {"action": self._rrset_action(z, r, rest[3], body)}
        raise ApiError(404, "not_found", "not found")

    def _rrset_action(self, z: dict[str, Any], r: dict[str, Any], name: str, body: dict[str, Any]) -> dict[str, Any]:
        if name == "change_protection":
            r["protected"] = bool(body.get("change", r["protected"]))
            return self._action("change_rrset_protection", z)
        if r["protected"]:
            raise ApiError(423, "protected", "rrset is change protected")
        if name == "change_ttl":
            r["ttl"] = body.get("ttl")
            return self._action("change_rrset_ttl", z)
        if name not in ("set_records", "add_records", "remove_records"):
            raise ApiError(404, "not_found", f"rrset action '{name}' is not part of this stand-in")
        records = _records(r["type"], body.get("records") or [])
        if name == "set_records":
            r["records"] = records
        elif name == "add_records":
            have = {x["value"] for x in r["records"]}
            r["records"] += [x for x in records if x["value"] not in have]
            if "ttl" in body:
                r["ttl"] = body["ttl"]
        else:
            gone = {x["value"] for x in records}
            r["records"] = [x for x in r["records"] if x["value"] not in gone]
            if not r["records"]:  # Hetzner drops an RRSet whose last record goes
                del z["rrsets"][(r["name"], r["type"])]
        return self._action(f"{name.replace('_records', '')}_rrset_records", z)
