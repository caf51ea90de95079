"""Layer 4, storage: the glue between the engine and the pure diff (plan.py).

Its I/O is small: the repository passwords (operator-held, scope 1: `ctx.secret(ref)`), S3
keys, the mesh addresses a lower layer published (`MeshAddresses`; without a mesh, the
addresses homelab reaches the machines at, and the plan says so), and the rest credentials
the probes read back from the hosts (scope 3: each becomes a `Secret`, redacted everywhere).
What to back up comes only from `BackupPath` claims (the apps layer makes them from recipes).
The layer object keeps nothing between phases; it writes no state (no secret can land there).
"""
from __future__ import annotations

import dataclasses
import time
from typing import ClassVar, Mapping

from homelab.claims import BackupPath
from homelab.config.storage import StorageConfig
from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.layers.base import Layer, Observed, RunContext
from homelab.layers.storage.plan import StorageInputs, plan_storage, probe_layout
from homelab.layers.storage.probes import CREDENTIAL_SUFFIX, PREFIX, mounts_probe, parse_view, storage_probes
from homelab.layers.storage.repo import ETC
from homelab.layers.storage.status import storage_monitors
from homelab.model import LayerPlan, Monitor
from homelab.outputs import MeshAddresses, VolumeDevices
from homelab.probe import Probe, ProbeResult
from homelab.secrets import Secret


class StorageLayer(Layer):
    name: ClassVar[str] = "storage"

    @staticmethod
    def _config(ctx: RunContext) -> StorageConfig:
        cfg = ctx.config.get("storage")
        assert isinstance(cfg, StorageConfig)
        return cfg

    def enabled(self, ctx: RunContext) -> bool:
        return ctx.config.get("storage") is not None

    @staticmethod
    def _backups(ctx: RunContext) -> tuple[BackupPath, ...]:
        return tuple(ctx.config.claims.of(BackupPath))

    def _involved(self, ctx: RunContext) -> set[str]:
        cfg = self._config(ctx)
        return ({c.host for c in self._backups(ctx)} | {r.machine for r in cfg.repositories if r.type == "rest"
                                                         and r.machine} | {d.machine for d in cfg.disks})

    def targets(self, ctx: RunContext) -> list[HostTarget]:
        involved = self._involved(ctx)
        return [h for h in ctx.live_hosts() if h.name in involved]

    def probes(self, ctx: RunContext, host: HostTarget) -> dict[str, Probe]:
        if host.name not in self._involved(ctx):
            # a host whose last disk left the config may still have its mount unit (one file glob)
            return {PREFIX + "mounts": mounts_probe()}
        return storage_probes(probe_layout(self._config(ctx), self._backups(ctx), host.name),
                              checks=ctx.command == "status")

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        cfg = self._config(ctx)
        involved = self._involved(ctx)
        # hosts outside `involved` were asked only for their mount units (see probes)
        views = {name: parse_view(results) for name, results in probed.items()
                 if name in involved or PREFIX + "mounts" in results}
        credentials: dict[tuple[str, str], Secret] = {}
        for name, view in views.items():
            for path, value in view.credentials.items():
                repo_name = path.removeprefix(f"{ETC}/").removesuffix(CREDENTIAL_SUFFIX)
                if value:
                    secret = Secret(value)
                    ctx.add_secret(secret)  # redacted from every event, log line and worker output
                    credentials[(name, repo_name)] = secret
            # the parsed view keeps no credential text (only the Secrets above do)
            views[name] = dataclasses.replace(view, credentials={})
        passwords: dict[str, Secret] = {}
        s3: dict[str, tuple[Secret, Secret]] = {}
        errors: list[str] = []
        for repo in cfg.repositories:
            ref = cfg.password_of(repo)
            try:
                if ref is not None:
                    passwords[repo.name] = ctx.secret(ref)
                if repo.access_key is not None and repo.secret_key is not None:
                    s3[repo.name] = (ctx.secret(repo.access_key), ctx.secret(repo.secret_key))
            except HomelabError as exc:  # status still works without it; plan is blocked
                errors.append(f"repository {repo.name}: {exc.message} ({exc.hint})" if exc.hint else exc.message)
        mesh = ctx.outputs.get(MeshAddresses)
        addresses = {m.name: m.address for m in ctx.config.machines}
        addresses.update({name: t.address for name, t in ctx.hosts.items()})
        attached = ctx.outputs.get(VolumeDevices)  # compute's: which Hetzner volume is which disk
        volumes = {d.disk: (d.device, d.size_gb * 2**30) for d in (attached.by_disk.values() if attached else [])}
        inputs = StorageInputs(cfg, self._backups(ctx), addresses, dict(mesh.addresses) if mesh else {},
                               mesh.interface if mesh else "wg0", passwords, s3, views, credentials, volumes)
        return Observed(hosts=probed, api=(inputs, tuple(errors)))

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        inputs, errors = observed.api
        plan = plan_storage(inputs)
        if errors:
            plan = dataclasses.replace(plan, blocked=plan.blocked + tuple(errors))
        return plan

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        inputs, _ = observed.api
        return storage_monitors(inputs, time.time(), ctx.failed_hosts)
