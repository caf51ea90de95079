"""The contract every layer keeps: observe -> diff (pure) -> apply -> status.

A layer never imports another layer. What a lower layer produces (hosts, addresses, public
keys) reaches the others through the RunContext (hosts) and the State (per-layer sections).

Most layers work on hosts: they name read-only shell probes per host (the engine batches all
layers' probes into one command per host), turn wanted config + probe results into Changes
whose operations are data, and let the engine run those operations through pyinfra. Layers
that talk to an API (billing, hetzner) override `observe` and `apply_change`.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator, Mapping

from homelab import registry
from homelab.config.schema import Config
from homelab.registry import LayerEntry
from homelab.events import Event
from homelab.hosts import HostTarget
from homelab.model import Change, LayerPlan, Monitor
from homelab.outputs import Outputs
from homelab.probe import AnyProbe, ProbeResult
from homelab.secrets import Secret, SecretRef
from homelab.state import State

log = logging.getLogger("homelab")


@dataclass
class RunOptions:
    accept_new_host_keys: bool = False
    confirm_new_host_key: Callable[[HostTarget, str], bool] | None = None  # interactive prompt
    yes: bool = False
    confirm_destructive: bool = False  # `--confirm-delete`: deletes of servers etc.
    bundle: str | None = None  # `apply --bundle FILE`: docker images for hosts that cannot pull
    purge_data: bool = False  # `--purge-data`: an app that left the config loses its data (with --confirm-delete)
    layers: tuple[str, ...] = ()  # empty: all
    parallel: int = 10
    # seconds to keep trying a host homelab met before (its key is pinned) that takes no TCP
    # connection, as one does while it reboots; 0: report it unreachable at once (status)
    wait_for_hosts: float = 0.0
    api_endpoint: str | None = None  # overrides the Hetzner API (tests, fakes)


@dataclass
class RunContext:
    """What one run knows: config, state, hosts, secrets. Shared by all layers of the run."""

    config: Config
    state: State
    options: RunOptions = field(default_factory=RunOptions)
    # "plan" | "apply" | "status": checks only monitors read (the mesh's pings) run for status
    command: str = "apply"
    hosts: dict[str, HostTarget] = field(default_factory=dict)
    failed_hosts: dict[str, str] = field(default_factory=dict)  # name -> why
    outputs: Outputs = field(default_factory=Outputs)  # typed values lower layers published
    cancelled: threading.Event = field(default_factory=threading.Event)  # set by Engine.cancel: long waits stop
    _secrets: dict[SecretRef, Secret] = field(default_factory=dict)
    _found_secrets: list[Secret] = field(default_factory=list)  # read from hosts during the run
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def secret(self, ref: SecretRef) -> Secret:
        """Resolve a secret once per run; its value is redacted from every event."""
        with self._lock:
            if ref not in self._secrets:
                self._secrets[ref] = ref.resolve()
            return self._secrets[ref]

    def add_secret(self, secret: Secret) -> None:
        """A secret a layer read from a host (e.g. a preshared key it must copy): redacted like the rest."""
        with self._lock:
            self._found_secrets.append(secret)

    @property
    def secrets(self) -> list[Secret]:
        return [*self._secrets.values(), *self._found_secrets]

    def add_host(self, target: HostTarget) -> None:
        self.hosts[target.name] = target

    def live_hosts(self) -> list[HostTarget]:
        return [h for n, h in sorted(self.hosts.items()) if n not in self.failed_hosts]


@dataclass(frozen=True)
class Observed:
    """What observe found: probe results per host (missing = not reachable / not created yet)."""

    hosts: Mapping[str, Mapping[str, ProbeResult]] = field(default_factory=dict)
    api: Any = None  # whatever an API-facing layer read

    def probe(self, host: str, key: str) -> ProbeResult | None:
        return self.hosts.get(host, {}).get(key)


class Layer:
    name: ClassVar[str]  # the registry entry's id: config section, state section, --layer name

    @property
    def entry(self) -> LayerEntry:
        found = registry.find(self.name)
        assert found is not None, f"layer {self.name!r} has no registry entry"
        return found

    @property
    def number(self) -> int:
        return self.entry.number

    @property
    def title(self) -> str:
        return self.entry.title

    def enabled(self, ctx: RunContext) -> bool:
        """Whether the config asks this layer for anything (else it is skipped, with a reason)."""
        return True

    def contribute_hosts(self, ctx: RunContext) -> None:
        """Add the hosts this layer knows about to ctx.hosts, as configured (compute does)."""

    def targets(self, ctx: RunContext) -> list[HostTarget]:
        return ctx.live_hosts()

    def probes(self, ctx: RunContext, host: HostTarget) -> Mapping[str, AnyProbe]:
        """Read-only checks (run as root) whose output diff/status need: a shell snippet, or a
        `Probe` with its own timeout and parser. Keys start with the layer's name."""
        return {}

    def observe(self, ctx: RunContext, probed: Mapping[str, Mapping[str, ProbeResult]]) -> Observed:
        """I/O beyond probes (APIs). Default: just the probe results."""
        return Observed(hosts=probed)

    def diff(self, ctx: RunContext, observed: Observed) -> LayerPlan:
        """Pure: wanted (config + state) vs observed -> changes, or why nothing is needed."""
        return LayerPlan(self.name)

    def apply_change(self, ctx: RunContext, change: Change) -> Iterator[Event]:
        """Apply a change that has no host ops (API work). Raise HomelabError on failure."""
        raise NotImplementedError(f"{self.name} cannot apply {change.summary}")
        yield  # pragma: no cover

    def plan_again(self, ctx: RunContext, plan: LayerPlan) -> bool:
        """After `plan` was applied: must this layer look (probe) and plan once more in the same
        apply? Yes when it holds deferred changes (`Change.deferred`: they can only be written
        once earlier ones exist, e.g. WireGuard keys generated on the nodes). What a layer must
        record after applying travels with the plan (`Change.writes`, `outputs`)."""
        return any(c.deferred for c in plan.changes)

    def status(self, ctx: RunContext, observed: Observed) -> list[Monitor]:
        """Monitors from observed data (pure evaluation of probe output)."""
        return []
