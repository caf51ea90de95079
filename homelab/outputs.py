"""Typed outputs: what a lower layer knows and the layers above may read, published per run.

Claims flow down (what a layer needs, from the config); outputs flow up (what a layer found
or made, at run time): the operator's public key (privilege), how homelab logs in to a host
(permissions), the mesh address of every node (mesh), a host's OS (compute). A layer reads
`ctx.outputs.get(MeshAddresses)`, never another layer's state section by key.

An output published by a change travels with that change (`Change.outputs`) and takes effect
only when the change was applied; the engine persists the ones that must outlive a run
(`LoginAs` into the host's state).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, TypeVar


@dataclass(frozen=True)
class OperatorKey:
    """The operator's public key line and the private key's path (never its content)."""

    public: str | None
    private_path: str


@dataclass(frozen=True)
class LoginAs:
    """How homelab logs in to `host` from now on (permissions made that user and port)."""

    host: str
    user: str
    port: int
    key_path: str | None = None


@dataclass(frozen=True)
class LoginCandidate:
    """A login a layer may have made on `host` (permissions' operator user): the engine tries it
    when the recorded and the configured logins both fail."""

    host: str
    user: str
    port: int
    key_path: str | None = None


@dataclass(frozen=True)
class MeshAddresses:
    """Each mesh node's address on the mesh, and the interface it lives on."""

    addresses: Mapping[str, str] = field(default_factory=dict)
    interface: str = "wg0"


@dataclass(frozen=True)
class VolumeDevice:
    """A Hetzner volume attached to server `host` for storage disk `disk` (published by compute)."""

    host: str
    disk: str
    volume_id: int
    device: str  # /dev/disk/by-id/scsi-0HC_Volume_<id>, as the API names it
    size_gb: int


@dataclass(frozen=True)
class VolumeDevices:
    """Every attached volume homelab made, by storage disk name (one output for the run)."""

    by_disk: Mapping[str, VolumeDevice] = field(default_factory=dict)


@dataclass(frozen=True)
class HostFacts:
    host: str
    os: str
    arch: str
    memory_mb: int | None = None


T = TypeVar("T")


class Outputs:
    """One run's published outputs: keyed by type, and by host for per-host ones."""

    def __init__(self) -> None:
        self._values: dict[tuple[type, str], Any] = {}
        self._lock = threading.Lock()

    def publish(self, value: Any) -> None:
        with self._lock:
            self._values[(type(value), getattr(value, "host", ""))] = value

    def get(self, kind: type[T], host: str = "") -> T | None:
        with self._lock:
            found = self._values.get((kind, host))
        return found if isinstance(found, kind) else None

    def all(self, kind: type[T]) -> list[T]:
        with self._lock:
            return [v for (k, _), v in sorted(self._values.items(), key=lambda kv: kv[0][1]) if k is kind]
