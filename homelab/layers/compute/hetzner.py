"""Layer 3, the Hetzner part: servers the config asks for, against servers carrying our labels.

`diff_servers` is pure: wanted servers + what the API lists -> Changes whose ops describe the
API calls as data (`hetzner.create_server`, `hetzner.change_type`, ...). Rules:
- labels (managed-by=homelab, homelab/cluster=<cluster>) mark a server as ours; a server
  without them is never changed or deleted;
- a changed type is a planned resize (power off, change type keeping the disk, power on),
  never a replace; a changed location cannot be done in place and is only reported;
- a server gone from the config is a planned delete (destructive: --confirm-delete), and
  while it is delete-protected the plan is blocked: drop protection in the config first.

`apply_server_change` does the I/O. A create pins the new server's host key in state BEFORE
the API call (generated here, sent in cloud-init user data, private half forgotten after),
waits for the action and then until the server is up (boot.py: running, an address, SSH with
that key), and only then adds the host to the run. A server an earlier apply made that is
still coming up gets the same wait (`hetzner.wait_server`, planned by boot.plan_waits).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from homelab.config.hetzner import HetznerConfig, Server
from homelab.errors import HomelabError
from homelab.events import Event, Progress
from homelab.hosts import HostTarget
from homelab.layers.compute.gone import plan_gone
from homelab.model import Change, Op

LAYER = "compute"
STATE_KEY = "servers"  # state.section("compute")["servers"][name] = {id, ipv4, type, location}


@dataclass(frozen=True)
class ServerDiff:
    changes: tuple[Change, ...] = ()
    same: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    creates: tuple[str, ...] = ()  # names of servers this plan creates (their base is planned too)


def _server_target(name: str) -> str:
    return f"server {name}"


def server_name(change: Change) -> str:
    return change.target.split(" ", 1)[1]


def diff_servers(cfg: HetznerConfig, existing: Sequence[Any], known: Mapping[str, Any]) -> ServerDiff:
    """Pure. `existing`: CloudServer-like objects listed by our label selector; `known`: the
    servers state remembers (to tell "new" from "deleted outside homelab")."""
    by_name = {s.name: s for s in existing}
    changes: list[Change] = []
    same: list[str] = []
    warnings: list[str] = []
    blocked: list[str] = []
    creates: list[str] = []
    for want in cfg.servers:
        have = by_name.get(want.name)
        target = _server_target(want.name)
        if have is None:
            if want.name in known:
                warnings.append(f"server {want.name} is gone from the Hetzner project (deleted outside homelab?): "
                                "it will be created again")
            prot = "delete protection on" if want.protection else "no delete protection"
            changes.append(Change(LAYER, target, "create",
                                  f"create {want.type} in {want.location} from {want.image}, {prot}"
                                  + (", backups" if want.backups else ""),
                                  ops=(Op("hetzner.create_server", {
                                      "name": want.name, "type": want.type, "location": want.location,
                                      "image": want.image, "labels": cfg.labels_for(want),
                                      "protection": want.protection, "backups": want.backups}),)))
            creates.append(want.name)
            continue
        changes += _server_updates(cfg, want, have, target, warnings)
        if not any(c.target == target for c in changes):
            same.append(f"{target}: {have.type} in {have.location}, {have.status}"
                        + (", protected" if have.protected else ""))
    gone = plan_gone("server", existing, {s.name for s in cfg.servers},
                     lambda have: f"delete server ({have.type} in {have.location}, {have.ipv4 or 'no IPv4'}) "
                                  "and everything on its disk")
    changes += gone.changes
    blocked += gone.blocked
    return ServerDiff(tuple(changes), tuple(same), tuple(warnings), tuple(blocked), tuple(creates))


def _server_updates(cfg: HetznerConfig, want: Server, have: Any, target: str, warnings: list[str]) -> list[Change]:
    out: list[Change] = []
    if have.location != want.location:
        warnings.append(f"server {want.name} is in {have.location}, the config says {want.location}: a server cannot "
                        "move, and homelab never replaces one silently (add a new server, then remove this one)")
    if have.type != want.type:
        out.append(Change(LAYER, target, "resize",
                          f"resize {have.type} -> {want.type} (powers the server off and on; disk kept, "
                          "so it can be downsized again)",
                          ops=(Op("hetzner.change_type", {"name": want.name, "id": have.id, "from": have.type,
                                                          "to": want.type}),)))
    if have.protected != want.protection:
        out.append(Change(LAYER, target, "update",
                          f"delete protection {'on' if want.protection else 'off'}",
                          ops=(Op("hetzner.set_protection", {"name": want.name, "id": have.id,
                                                             "on": want.protection}),)))
    if have.backups != want.backups:
        out.append(Change(LAYER, target, "update", f"backups {'on' if want.backups else 'off'}",
                          ops=(Op("hetzner.set_backups", {"name": want.name, "id": have.id, "on": want.backups}),)))
    labels = cfg.labels_for(want)
    if dict(have.labels) != labels:
        old = ", ".join(f"{k}={v}" for k, v in sorted(have.labels.items()))
        new = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out.append(Change(LAYER, target, "update", "labels", detail=(f"- {old}", f"+ {new}"),
                          ops=(Op("hetzner.set_labels", {"name": want.name, "id": have.id, "labels": labels}),)))
    return out


def is_ours(cfg: HetznerConfig, server: Any) -> bool:
    labels = server.labels
    return bool(labels.get("managed-by") == "homelab" and labels.get("homelab/cluster") == cfg.cluster)


def host_target(ctx: Any, name: str, address: str, key_path: str | None, ipv6: str | None = None) -> HostTarget:
    """A cloud server as a host, as it boots: root (the engine then uses the recorded login
    of an earlier run, `LoginAs`, if there is one); ipv6 its public IPv6 (AAAA records)."""
    return HostTarget(name, address, 22, "root", key_path, kind="server", ipv6=ipv6)


def server_record(server: Any) -> dict[str, Any]:
    """What state keeps of a server (STATE_KEY): found again without asking the API."""
    return {"id": server.id, "ipv4": server.ipv4, "ipv6": server.ipv6, "type": server.type,
            "location": server.location}


# --------------------------------------------------------------------------- I/O --
def apply_server_change(ctx: Any, api: Any, cfg: HetznerConfig, change: Change,
                        key_path: str | None) -> Iterator[Event]:
    """Carry out one planned server change through `api` (a HcloudApi)."""
    op = change.ops[0]
    kw = op.kwargs
    name = kw["name"]
    servers = ctx.state.section(LAYER).setdefault(STATE_KEY, {})
    if op.name == "hetzner.create_server":
        yield from _fails_its_host(ctx, name, _create(ctx, api, cfg, kw, key_path))
        return
    if op.name == "hetzner.wait_server":  # made by an earlier apply, still coming up (boot.py)
        yield from _fails_its_host(ctx, name, _wait(ctx, api, cfg, name, int(kw["id"]), key_path))
        return
    current = api.get_server(int(kw["id"]), name)
    if op.name == "hetzner.delete_server":
        if not is_ours(cfg, current):
            raise HomelabError(f"delete server {name}: it no longer carries this config's labels; not deleting it")
        yield Progress(LAYER, f"deleting server {name}")
        api.delete_server(current, cfg.action_timeout)
        servers.pop(name, None)
        ctx.state.data.get("hosts", {}).pop(name, None)  # its pinned key dies with it
    elif op.name == "hetzner.change_type":
        yield Progress(LAYER, f"resizing server {name} {kw['from']} -> {kw['to']} (off, resize, on)")
        api.change_type(current, kw["to"], cfg.action_timeout)
        servers.setdefault(name, {})["type"] = kw["to"]
        if current.ipv4:
            _wait_ssh(ctx, name, current.ipv4, cfg)
    elif op.name == "hetzner.set_protection":
        api.set_protection(current, bool(kw["on"]), cfg.action_timeout)
    elif op.name == "hetzner.set_backups":
        api.set_backups(current, bool(kw["on"]), cfg.action_timeout)
    elif op.name == "hetzner.set_labels":
        api.set_labels(current, kw["labels"])
    else:  # pragma: no cover - diff makes only the ops above
        raise HomelabError(f"compute: unknown change {op.name}")


def _fails_its_host(ctx: Any, name: str, steps: Iterator[Event]) -> Iterator[Event]:
    """A server that could not be made or seen up fails its host: the base changes planned for
    it are then skipped ("failed earlier"), not run against nothing."""
    try:
        yield from steps
    except HomelabError as exc:
        ctx.failed_hosts[name] = exc.message
        raise


def _create(ctx: Any, api: Any, cfg: HetznerConfig, kw: Mapping[str, Any], key_path: str | None) -> Iterator[Event]:
    from homelab.providers.cloud_init import render_user_data
    from homelab.providers.keys import generate_ed25519

    name = kw["name"]
    found = api.find_server(name)
    if found is not None and is_ours(cfg, found):
        # made by an earlier run that stopped before it recorded the server: adopt it; its host
        # key was pinned (and saved) before that run's create, so the connection stays verified
        yield Progress(LAYER, f"server {name} exists already (an earlier create); adopting it")
        server = found
    else:
        host = generate_ed25519()
        pinned = " ".join(host.public.split()[:2])
        # pinned and saved before the API call: whatever happens next, a server of this name
        # can only ever be trusted with this key
        ctx.state.update_host(name, host_key=pinned)
        ctx.state.save()
        ssh_key = ctx.state.section("privilege").get("hcloud_ssh_key", {}).get("id") or cfg.ssh_key_name
        yield Progress(LAYER, f"creating server {name} ({kw['type']} in {kw['location']})")
        server = api.create_server(name=name, type=kw["type"], location=kw["location"], image=kw["image"],
                                   ssh_key=ssh_key, labels=kw["labels"],
                                   user_data=render_user_data(host.private_openssh, host.public),
                                   timeout=cfg.action_timeout, is_ours=lambda s: is_ours(cfg, s))
        del host  # the private host key lives on only on the server
    # before waiting for it to boot: protected from its first minute
    if kw.get("protection") and not server.protected:
        api.set_protection(server, True, cfg.action_timeout)
    if kw.get("backups") and not server.backups:
        api.set_backups(server, True, cfg.action_timeout)
    yield from _up(ctx, api, cfg, server, key_path)


def _wait(ctx: Any, api: Any, cfg: HetznerConfig, name: str, server_id: int, key_path: str | None) -> Iterator[Event]:
    yield from _up(ctx, api, cfg, api.get_server(server_id, name), key_path)


def _up(ctx: Any, api: Any, cfg: HetznerConfig, server: Any, key_path: str | None) -> Iterator[Event]:
    """Wait until `server` is up (boot.py: running, an address, SSH with the pinned key), then
    record it and make it a host of this run."""
    from homelab.layers.compute.boot import wait_until_up

    name = server.name
    server = yield from wait_until_up(api, cfg, server, ctx.state.host(name).get("host_key"), ctx.cancelled.is_set)
    ctx.state.section(LAYER).setdefault(STATE_KEY, {})[name] = server_record(server)
    ctx.state.update_host(name, address=server.ipv4)
    ctx.add_host(host_target(ctx, name, server.ipv4, key_path, server.ipv6))


def _wait_ssh(ctx: Any, name: str, address: str, cfg: HetznerConfig) -> None:
    from homelab.providers.ssh_wait import wait_for_ssh

    wait_for_ssh(name, address, 22, ctx.state.host(name).get("host_key"), float(cfg.ssh_timeout))

