"""Layer 0, privilege: who homelab is when it logs in, and what it may do in the cloud.

- The operator key: an existing file, keys in ssh-agent, or a new ed25519 key homelab
  generates (OpenSSH format, 0600). With cloud servers configured, its public half is
  uploaded to the Hetzner project (found by fingerprint first: never twice).
- The Hetzner API token: read from env or a command (never the config), registered for
  redaction in every event, checked for validity and write permission.
- Host keys: pinned in state by the engine; status counts them.

What this layer produces for the layers above goes to state section "privilege":
`hcloud_ssh_key` = {id, name, fingerprint} (compute attaches that key to new servers).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Mapping

from homelab.config.hetzner import HetznerConfig
from homelab.errors import HomelabError
from homelab.events import Event, Progress
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.model import Change, Health, LayerPlan, Monitor, Op
from homelab.outputs import OperatorKey
from homelab.probe import ProbeResult
from homelab.providers.keys import generate_ed25519, key_type, md5_fingerprint, read_public_key, write_key_pair

LAYER = "privilege"
KEY_LABELS = {"managed-by": "homelab"}


@dataclass(frozen=True)
class TokenSeen:
    valid: bool
    read_write: bool
    detail: str


@dataclass(frozen=True)
class Seen:
    key_path: str
    public_key: str | None  # None: no key file yet
    agent_keys: int
    hetzner: bool  # cloud servers configured: token and key upload matter
    token: TokenSeen | None = None
    cloud_key: Mapping[str, Any] | None = None  # {id, name, fingerprint} of our key in the project
    pinned: int = 0
    hosts: int = 0


def count_agent_keys(use_agent: bool) -> int:
    if not use_agent or not os.environ.get("SSH_AUTH_SOCK"):
        return 0
    import paramiko

    agent = paramiko.Agent()
    try:
        return len(agent.get_keys())
    finally:
        agent.close()


def diff_privilege(seen: Seen, generate: bool, key_name: str) -> LayerPlan:
    """Pure: key generation, key upload, and what blocks a cloud apply."""
    changes: list[Change] = []
    same: list[str] = []
    warnings: list[str] = []
    blocked: list[str] = []
    if seen.public_key is None:
        if generate:
            changes.append(Change(LAYER, "operator key", "create", f"generate ed25519 key {seen.key_path} (0600)",
                                  ops=(Op("local.generate_key", {"path": seen.key_path, "type": "ed25519"}),)))
        elif seen.agent_keys:
            same.append(f"operator key: {seen.agent_keys} key(s) in ssh-agent")
        else:
            msg = f"operator key {seen.key_path} does not exist and ssh-agent holds no key"
            (blocked if seen.hetzner else warnings).append(
                msg + ": set privilege.generate_key: true, or point privilege.ssh_key at your key")
    else:
        same.append(f"operator key {seen.key_path} ({key_type(seen.public_key)})")
    if seen.hetzner:
        if seen.token is not None and not seen.token.valid:
            blocked.append(f"Hetzner API token: {seen.token.detail}")
        elif seen.token is not None and not seen.token.read_write:
            blocked.append(f"Hetzner API token is not read-write ({seen.token.detail}): "
                           "create a Read & Write token in the Hetzner Cloud Console")
        if seen.cloud_key is not None:
            same.append(f"operator key is in the Hetzner project as {seen.cloud_key['name']!r}")
        elif seen.public_key is not None or generate:
            where = "generated above" if seen.public_key is None else md5_fingerprint(seen.public_key)
            changes.append(Change(LAYER, "operator key", "create",
                                  f"upload operator public key ({where}) to Hetzner as {key_name!r}",
                                  ops=(Op("hetzner.create_ssh_key", {"name": key_name, "path": seen.key_path}),)))
    return LayerPlan(LAYER, tuple(changes), tuple(same), tuple(warnings), tuple(blocked))


def count_pinned(targets: Iterable[HostTarget], learned: Mapping[str, Any]) -> tuple[int, int]:
    """Pure: (host keys pinned, hosts that have one): a machine provisioned in place
    (`address: local`) is reached without SSH, so it has no host key to pin."""
    remote = [t.name for t in targets if not t.local]
    return sum(1 for n in remote if learned.get(n, {}).get("host_key")), len(remote)


def privilege_monitors(seen: Seen) -> list[Monitor]:
    """Pure: key present and its type, token valid and read-write, host keys pinned."""
    out: list[Monitor] = []
    if seen.public_key is not None:
        out.append(Monitor(LAYER, "operator", "key", Health.OK, f"{key_type(seen.public_key)} at {seen.key_path}"))
    elif seen.agent_keys:
        out.append(Monitor(LAYER, "operator", "key", Health.OK, f"{seen.agent_keys} key(s) in ssh-agent"))
    else:
        out.append(Monitor(LAYER, "operator", "key", Health.FAIL, f"{seen.key_path} does not exist"))
    if seen.token is not None:
        health = Health.OK if seen.token.valid and seen.token.read_write else Health.FAIL
        out.append(Monitor(LAYER, "hetzner", "API token", health,
                           "valid, read-write" if health is Health.OK else seen.token.detail))
    if seen.hetzner:
        out.append(Monitor(LAYER, "hetzner", "operator key uploaded",
                           Health.OK if seen.cloud_key else Health.WARN,
                           f"as {seen.cloud_key['name']!r}" if seen.cloud_key else "not yet (apply uploads it)"))
    health = Health.OK if seen.pinned >= seen.hosts else Health.WARN
    out.append(Monitor(LAYER, "hosts", "host keys pinned", health, f"{seen.pinned} of {seen.hosts}"))
    return out


class PrivilegeLayer(Layer):
    name: ClassVar[str] = "privilege"

    @staticmethod
    def _hetzner(ctx: RunContext) -> HetznerConfig | None:
        hz: HetznerConfig | None = ctx.config.compute.hetzner
        return hz

    def _api(self, ctx: RunContext) -> Any:
        from homelab.providers.hcloud_api import open_api  # lazy: no hcloud without cloud servers

        hz = self._hetzner(ctx)
        return open_api(ctx.secret(ctx.config.privilege.token_source), ctx.options.api_endpoint,
                        hz.api_endpoint if hz else None)

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        priv = ctx.config.privilege
        path = Path(os.path.expanduser(priv.ssh_key))
        public = read_public_key(path)
        ctx.outputs.publish(OperatorKey(public, str(path)))
        pinned, remote = count_pinned(ctx.hosts.values(), ctx.state.data.get("hosts", {}))
        seen = Seen(str(path), public, count_agent_keys(priv.use_agent), self._hetzner(ctx) is not None,
                    pinned=pinned, hosts=remote)
        if seen.hetzner:
            api = self._api(ctx)
            check = api.check_token()
            token = TokenSeen(check.valid, check.read_write, check.detail)
            cloud_key = None
            if check.valid and public is not None:
                found = api.find_ssh_key(md5_fingerprint(public))
                if found is not None:
                    cloud_key = {"id": found.id, "name": found.name, "fingerprint": found.fingerprint}
                    ctx.state.section(LAYER)["hcloud_ssh_key"] = cloud_key
            seen = Seen(seen.key_path, public, seen.agent_keys, True, token, cloud_key, seen.pinned, seen.hosts)
        return Observed(hosts=probed, api=seen)

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        hz = self._hetzner(ctx)
        return diff_privilege(observed.api, ctx.config.privilege.generate_key,
                              hz.ssh_key_name if hz else "homelab-operator")

    def apply_change(self, ctx: RunContext, change: Change) -> Iterator[Event]:
        op = change.ops[0]
        path = Path(op.kwargs["path"])
        if op.name == "local.generate_key":
            write_key_pair(path, generate_ed25519(f"homelab-operator@{os.uname().nodename}"))
            ctx.outputs.publish(OperatorKey(read_public_key(path), str(path)))
            yield Progress(LAYER, f"generated {path} and {path}.pub")
        elif op.name == "hetzner.create_ssh_key":
            public = read_public_key(path)
            if public is None:
                raise HomelabError(f"upload operator key: {path} has no readable public key",
                                   f"put the public key in {path}.pub")
            api = self._api(ctx)
            found = api.find_ssh_key(md5_fingerprint(public))
            key = found or api.create_ssh_key(op.kwargs["name"], public, KEY_LABELS)
            ctx.state.section(LAYER)["hcloud_ssh_key"] = {"id": key.id, "name": key.name,
                                                         "fingerprint": key.fingerprint}
        else:  # pragma: no cover - diff makes only the two above
            raise HomelabError(f"privilege: unknown change {op.name}")

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        return privilege_monitors(observed.api)
