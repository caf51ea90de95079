"""Layer 3, the Hetzner volumes the storage disks ask for (`NeedsVolume` claims).

`diff_volumes` is pure: the claims + the volumes the API lists under our labels + our servers
-> Changes whose ops describe API calls as data. The rules follow the servers' (hetzner.py):
- a volume is ours by its labels (managed-by, homelab/cluster); others are never touched;
- a missing volume is created attached to its server, unformatted (storage formats it) and
  with delete protection as the config says; a smaller size is a planned grow, a larger one
  is refused (Hetzner cannot shrink a volume); storage grows the filesystem after a grow;
- a volume gone from the config is a planned delete (destructive: --confirm-delete), blocked
  while it is delete-protected.

`apply_volume_change` does the I/O and publishes `VolumeDevices` for the storage layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from homelab.claims import NeedsVolume
from homelab.config.hetzner import DISK_LABEL, HetznerConfig, volume_name
from homelab.errors import HomelabError
from homelab.events import Event, Progress
from homelab.layers.compute.gone import plan_gone
from homelab.model import Change, Op
from homelab.outputs import VolumeDevice, VolumeDevices

LAYER = "compute"


@dataclass(frozen=True)
class VolumeDiff:
    changes: tuple[Change, ...] = ()
    same: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()


def _target(name: str) -> str:
    return f"volume {name}"


def diff_volumes(cfg: HetznerConfig, claims: Sequence[NeedsVolume], existing: Sequence[Any],
                 servers: Mapping[str, Any]) -> VolumeDiff:
    """Pure. `existing`: CloudVolume-like objects listed by our selector; `servers`: name ->
    CloudServer-like of the servers that exist now (a server created by this apply is not there)."""
    by_name = {v.name: v for v in existing}
    changes: list[Change] = []
    same: list[str] = []
    warnings: list[str] = []
    blocked: list[str] = []
    for claim in claims:
        name = volume_name(claim.host, claim.disk)
        have = by_name.get(name)
        server = servers.get(claim.host)
        prot = "delete protection on" if claim.protection else "no delete protection"
        if have is None:
            changes.append(Change(LAYER, _target(name), "create",
                                  f"create {claim.size_gb} GB volume attached to {claim.host} (for disk "
                                  f"{claim.disk}), {prot}",
                                  ops=(Op("hetzner.create_volume", {
                                      "name": name, "server": claim.host, "disk": claim.disk,
                                      "size_gb": claim.size_gb, "labels": cfg.volume_labels(claim.host, claim.disk),
                                      "protection": claim.protection}),)))
            continue
        before = len(changes)
        if have.size_gb < claim.size_gb:
            changes.append(Change(LAYER, _target(name), "resize",
                                  f"grow {have.size_gb} -> {claim.size_gb} GB (storage then grows the filesystem)",
                                  ops=(Op("hetzner.resize_volume", {"name": name, "id": have.id,
                                                                    "size_gb": claim.size_gb}),)))
        elif have.size_gb > claim.size_gb:
            warnings.append(f"volume {name} is {have.size_gb} GB, the config says {claim.size_gb}: Hetzner cannot "
                            "shrink a volume (make a new disk and move the data)")
        if server is not None and have.server_id != server.id:
            if have.server_id is None:
                changes.append(Change(LAYER, _target(name), "update", f"attach to {claim.host}",
                                      ops=(Op("hetzner.attach_volume", {"name": name, "id": have.id,
                                                                        "server": claim.host}),)))
            else:
                blocked.append(f"volume {name} is attached to another server (id {have.server_id}), not "
                               f"{claim.host}: detach it there first")
        if have.protected != claim.protection:
            changes.append(Change(LAYER, _target(name), "update",
                                  f"delete protection {'on' if claim.protection else 'off'}",
                                  ops=(Op("hetzner.protect_volume", {"name": name, "id": have.id,
                                                                     "on": claim.protection}),)))
        if len(changes) == before:
            same.append(f"volume {name}: {have.size_gb} GB, attached to {claim.host}"
                        + (", protected" if have.protected else ""))
    gone = plan_gone("volume", existing, {volume_name(c.host, c.disk) for c in claims},
                     lambda have: f"delete volume ({have.size_gb} GB) and everything on it")
    changes += gone.changes
    blocked += gone.blocked
    return VolumeDiff(tuple(changes), tuple(same), tuple(warnings), tuple(blocked))


def devices(volumes: Sequence[Any], servers: Mapping[str, Any]) -> VolumeDevices:
    """Pure: the attached volumes, by the disk name in their label (for the storage layer)."""
    by_id = {s.id: name for name, s in servers.items()}
    out = {}
    for v in volumes:
        disk, host = v.labels.get(DISK_LABEL), by_id.get(v.server_id)
        if disk and host:
            out[disk] = VolumeDevice(host, disk, v.id, v.linux_device, v.size_gb)
    return VolumeDevices(out)


def is_ours(cfg: HetznerConfig, volume: Any) -> bool:
    return bool(volume.labels.get("managed-by") == "homelab" and volume.labels.get("homelab/cluster") == cfg.cluster)


# --------------------------------------------------------------------------- I/O --
def apply_volume_change(ctx: Any, api: Any, cfg: HetznerConfig, change: Change) -> Iterator[Event]:
    """Carry out one planned volume change through `api` (a HcloudApi)."""
    op = change.ops[0]
    kw = op.kwargs
    name = kw["name"]
    if op.name == "hetzner.create_volume":
        server = api.find_server(kw["server"])
        if server is None:
            raise HomelabError(f"create volume {name}: server {kw['server']} does not exist",
                               "its creation failed earlier in this apply; fix that and apply again")
        found = api.find_volume(name)
        if found is not None and not is_ours(cfg, found):
            raise HomelabError(f"create volume {name}: a volume of that name exists but is not managed by this config",
                               "rename the disk, or delete/relabel the other volume by hand")
        yield Progress(LAYER, f"creating volume {name} ({kw['size_gb']} GB) for {kw['server']}")
        vol = found or api.create_volume(name=name, size_gb=int(kw["size_gb"]), server_id=server.id,
                                         labels=kw["labels"], timeout=cfg.action_timeout)
        if vol.server_id is None:
            api.attach_volume(vol, server.id, cfg.action_timeout)
        if kw.get("protection"):
            api.protect_volume(vol, True, cfg.action_timeout)
    else:
        vol = next((v for v in api.list_volumes(cfg.selector()) if v.id == int(kw["id"])), None)
        if vol is None or not is_ours(cfg, vol):
            raise HomelabError(f"{change.summary} of volume {name}: it is gone or no longer carries this config's "
                               "labels; not touching it")
        if op.name == "hetzner.delete_volume":
            yield Progress(LAYER, f"deleting volume {name}")
            if vol.server_id is not None:
                api.detach_volume(vol, cfg.action_timeout)
            api.delete_volume(vol)
        elif op.name == "hetzner.resize_volume":
            api.resize_volume(vol, int(kw["size_gb"]), cfg.action_timeout)
        elif op.name == "hetzner.attach_volume":
            server = api.find_server(kw["server"])
            if server is None:
                raise HomelabError(f"attach volume {name}: server {kw['server']} does not exist")
            api.attach_volume(vol, server.id, cfg.action_timeout)
        elif op.name == "hetzner.protect_volume":
            api.protect_volume(vol, bool(kw["on"]), cfg.action_timeout)
        else:  # pragma: no cover - diff makes only the ops above
            raise HomelabError(f"compute: unknown change {op.name}")
    publish_devices(ctx, api, cfg)


def publish_devices(ctx: Any, api: Any, cfg: HetznerConfig) -> None:
    """Read our volumes and servers again and publish where each disk's volume is now."""
    servers = {s.name: s for s in api.list_servers(cfg.selector())}
    ctx.outputs.publish(devices(api.list_volumes(cfg.selector()), servers))
