"""The stand-in Hetzner API's volumes, in the Cloud API's shapes (NOT Hetzner).

Served by `FakeHcloud` under /v1/volumes, driven in tests by the real `hcloud` library's
`client.volumes` (tests/unit/test_fake_hcloud_volumes.py):

- GET/POST /volumes (filters name, label_selector), GET/PUT/DELETE /volumes/{id},
  POST /volumes/{id}/actions/{attach,detach,resize,change_protection}; every change returns
  an Action, running until its work is done (`slow_actions` adds to that);
- a volume attached to a server becomes a block device of that server's host: the backend's
  `attach_disk` (for lab hosts: `Lab.attach_disk`, a loop device named
  /dev/disk/by-id/scsi-0HC_Volume_<id> with the volume id as its serial), the same path the
  volume's `linux_device` says.

Simplified on purpose: `format` and `automount` are refused (homelab formats and mounts
itself); a resize grows the server's block device too (`resize_disk`; for lab hosts the
loop device's file is made longer and the loop device told so, `losetup -c`: a stand-in
behaviour for the capacity change a real volume's VM sees), the action running until then;
the errors for deleting an attached or protected volume use the codes documented for other
resources (`locked`-like 423 `protected`, 409 `conflict`), unverified against Hetzner.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from homelab.lab.fake_hcloud import LOCATIONS, ApiError, _now, match_selector

if TYPE_CHECKING:
    from homelab.lab.fake_hcloud import FakeHcloud

GB = 2**30  # Hetzner's volume GB: the device has size * 2**30 bytes
NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


class VolumeStore:
    def __init__(self, api: FakeHcloud) -> None:
        self.api = api
        self.volumes: dict[int, dict[str, Any]] = {}

    def _json(self, v: dict[str, Any]) -> dict[str, Any]:
        loc = next(x for x in LOCATIONS if x["name"] == v["location"])
        return {"id": v["id"], "name": v["name"], "created": v["created"], "server": v["server"], "location": loc,
                "size": v["size"], "linux_device": f"/dev/disk/by-id/scsi-0HC_Volume_{v['id']}",
                "protection": {"delete": v["protected"]}, "labels": dict(v["labels"]), "status": v["status"],
                "format": None}

    def _volume(self, ident: str) -> dict[str, Any]:
        v = self.volumes.get(int(ident)) if ident.isdigit() else None
        if v is None:
            raise ApiError(404, "not_found", f"volume with ID '{ident}' not found")
        return v

    def handle(self, method: str, rest: list[str], q: dict[str, str], body: Any) -> tuple[int, Any]:
        body = body or {}
        if not rest:
            if method == "GET":
                items = [self._json(v) for v in sorted(self.volumes.values(), key=lambda v: v["id"])
                         if q.get("name", v["name"]) == v["name"] and match_selector(v["labels"], q.get("label_selector", ""))]
                return 200, self.api._page("volumes", items, q)  # noqa: SLF001
            if method == "POST":
                return self._create(body)
        v = self._volume(rest[0])
        res = [{"id": v["id"], "type": "volume"}]
        if len(rest) == 1:
            if method == "GET":
                return 200, {"volume": self._json(v)}
            if method == "PUT":
                if "labels" in body:
                    v["labels"] = dict(body["labels"])
                if "name" in body:
                    v["name"] = body["name"]
                return 200, {"volume": self._json(v)}
            if method == "DELETE":
                if v["protected"]:
                    raise ApiError(423, "protected", "volume is delete protected")
                if v["server"] is not None:
                    raise ApiError(409, "conflict", "volume is attached to a server: detach it first")
                del self.volumes[v["id"]]
                return 204, None
        if len(rest) == 3 and rest[1] == "actions" and method == "POST":
            return 201, {"action": self._action(v, rest[2], body, res).to_json()}
        raise ApiError(404, "not_found", "not found")

    def _create(self, body: dict[str, Any]) -> tuple[int, Any]:
        name, size = body.get("name"), body.get("size")
        server_id, location = body.get("server"), body.get("location")
        if not isinstance(name, str) or not NAME.match(name) or not isinstance(size, int) or not 10 <= size <= 10240:
            raise ApiError(400, "invalid_input", "invalid input in fields 'name', 'size'")
        if body.get("format") or body.get("automount"):
            raise ApiError(400, "invalid_input", "format and automount are not part of this stand-in")
        if (server_id is None) == (location is None):
            raise ApiError(400, "invalid_input", "give either server or location")
        if any(v["name"] == name for v in self.volumes.values()):
            raise ApiError(409, "uniqueness_error", "volume name is already used", {"fields": [{"name": "name"}]})
        server = self.api._find_server(str(server_id)) if server_id is not None else None  # noqa: SLF001
        vid = next(self.api.ids)
        v = {"id": vid, "name": name, "size": size, "created": _now(), "server": None,
             "location": server["location"] if server else location, "labels": dict(body.get("labels") or {}),
             "protected": False, "status": "available"}
        self.volumes[vid] = v
        res = [{"id": vid, "type": "volume"}]
        action = self.api._action("create_volume", res)  # noqa: SLF001
        nxt = [self._attach(v, server, res).to_json()] if server is not None else []
        return 201, {"volume": self._json(v), "action": action.to_json(), "next_actions": nxt}

    def _attach(self, v: dict[str, Any], server: dict[str, Any], res: list[dict[str, Any]]) -> Any:
        if v["server"] is not None:
            raise ApiError(409, "conflict", "volume is already attached")
        if server["location"] != v["location"]:
            raise ApiError(400, "invalid_input", "server and volume must be in the same location")
        v["server"] = server["id"]
        action = self.api._action("attach_volume", [*res, {"id": server["id"], "type": "server"}], ready=False)  # noqa: SLF001
        backend = self.api.backend
        self.api._in_background(  # noqa: SLF001
            server["name"], lambda: backend.attach_disk(server["name"], str(v["id"]), v["size"] * GB), action)
        return action

    def _action(self, v: dict[str, Any], name: str, body: dict[str, Any], res: list[dict[str, Any]]) -> Any:
        if name == "attach":
            if body.get("automount"):
                raise ApiError(400, "invalid_input", "automount is not part of this stand-in")
            return self._attach(v, self.api._find_server(str(body.get("server"))), res)  # noqa: SLF001
        if name == "detach":
            if v["server"] is None:
                raise ApiError(409, "conflict", "volume is not attached")
            server = self.api.servers.get(v["server"])
            v["server"] = None
            action = self.api._action("detach_volume", res, ready=False)  # noqa: SLF001
            backend = self.api.backend
            if server is None:
                action.ready.set()
            else:
                self.api._in_background(  # noqa: SLF001
                    server["name"], lambda: backend.detach_disk(server["name"], str(v["id"])), action)
            return action
        if name == "resize":
            size = body.get("size")
            if not isinstance(size, int) or size <= v["size"]:
                raise ApiError(400, "invalid_input", "a volume can only grow")
            v["size"] = size
            owner = self.api.servers.get(v["server"]) if v["server"] is not None else None
            if owner is None:
                return self.api._action("resize_volume", res)  # noqa: SLF001
            action = self.api._action("resize_volume", res, ready=False)  # noqa: SLF001
            backend, host = self.api.backend, str(owner["name"])
            self.api._in_background(  # noqa: SLF001
                host, lambda: backend.resize_disk(host, str(v["id"]), size * GB), action)
            return action
        if name == "change_protection":
            if "delete" in body:
                v["protected"] = bool(body["delete"])
            return self.api._action("change_protection", res)  # noqa: SLF001
        raise ApiError(404, "not_found", f"volume action '{name}' is not part of this stand-in")
