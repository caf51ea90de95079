"""How the engine reaches hosts: connect, run a probe script, run operations. Injected.

The engine talks to hosts only through a `Transport`, so it can be driven in tests by a
transport that never opens a socket. The real one chooses per host: SSH (paramiko sessions for
probes, the pyinfra worker process for operations), or, for a machine with `address: local`,
a local shell for probes and pyinfra's `@local` connector in the same worker.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from homelab.hosts import HostTarget
from homelab.model import Op

AcceptNew = Callable[[HostTarget, str], bool]


class ScriptResult(Protocol):
    @property
    def rc(self) -> int: ...

    @property
    def stdout(self) -> str: ...

    @property
    def stderr(self) -> str: ...


class Session(Protocol):
    """An open connection to one host."""

    commands: int  # remote commands run so far (the no-op budget is counted with this)

    def run_script(self, script: str, timeout: float = 600.0) -> ScriptResult: ...

    def close(self) -> None: ...


class OpsRun(Protocol):
    """Operations running on hosts; `events()` yields the worker's JSON events as dicts:
    {"event": "op_ok"|"op_error"|"output"|"connect_error"|"run_error"|"done", "host", ...}."""

    def events(self) -> Iterator[dict[str, Any]]: ...

    def cancel(self) -> None: ...


class Transport(Protocol):
    def connect(self, target: HostTarget, pinned: str | None, accept_new: AcceptNew | None,
                use_agent: bool) -> tuple[Session, str]:
        """(session, the host key line offered). Raises HomelabError (HostKeyError for keys)."""
        ...

    def run_ops(self, targets: Sequence[HostTarget], ops: Mapping[str, Sequence[Op]],
                pins: Mapping[HostTarget, str], redact: Sequence[str], parallel: int) -> OpsRun: ...


class SshTransport:
    """The real thing: paramiko for probes, the pyinfra worker child process for operations;
    the machine homelab runs on (`address: local`) through a local shell, no host key."""

    def connect(self, target: HostTarget, pinned: str | None, accept_new: AcceptNew | None,
                use_agent: bool) -> tuple[Session, str]:
        from homelab.local import LocalSession

        if target.local:
            return LocalSession(target), ""
        from homelab.ssh import Connection  # paramiko: only when a host is remote

        session, key = Connection.open(target, pinned, accept_new, use_agent)
        return session, key

    def run_ops(self, targets: Sequence[HostTarget], ops: Mapping[str, Sequence[Op]],
                pins: Mapping[HostTarget, str], redact: Sequence[str], parallel: int) -> OpsRun:
        from homelab.provision.runner import WorkerRun

        return WorkerRun(targets, ops, pins, redact, parallel)
