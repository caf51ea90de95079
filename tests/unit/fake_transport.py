"""A transport that opens no socket, for engine tests (the engine's injected seam).

Probe scripts run for real, locally, with bash (the fake layers' probes are harmless `cat`s of
files in a temp dir); operations are recorded and reported as the worker would, and a test
hook may give them an effect (write the file a later probe reads).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from homelab.errors import HomelabError
from homelab.hosts import HostTarget
from homelab.model import Op


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str


class FakeSession:
    def __init__(self, transport: FakeTransport, target: HostTarget) -> None:
        self.transport, self.target = transport, target
        self.commands = 0

    def run_script(self, script: str, timeout: float = 600.0) -> Result:
        self.commands += 1
        self.transport.scripts.append((self.target.name, script))
        try:
            out = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HomelabError(f"{self.target.name}: probe timed out after {timeout:.0f} s") from None
        return Result(out.returncode, out.stdout, out.stderr)

    def close(self) -> None:
        pass


class FakeOpsRun:
    def __init__(self, transport: FakeTransport, ops: Mapping[str, Sequence[Op]]) -> None:
        self.transport, self.ops = transport, ops

    cancelled = False

    def events(self) -> Iterator[dict[str, Any]]:
        for host, host_ops in self.ops.items():
            for i, op in enumerate(host_ops):
                if self.cancelled:  # like the worker: stops before the next operation
                    yield {"event": "done"}
                    return
                self.transport.ran.append((host, op.name, op.to_json()[1]))
                error = self.transport.on_op(host, op) if self.transport.on_op else None
                if error:
                    yield {"event": "op_error", "host": host, "index": i, "error": error}
                    break
                yield {"event": "op_ok", "host": host, "index": i}
        yield {"event": "done"}

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeTransport:
    on_op: Callable[[str, Op], str | None] | None = None  # effect of an op; returns an error to fail it
    # a connect error for this login (a message, or the error itself: HostDown), or None
    refuse: Callable[[HostTarget], str | HomelabError | None] | None = None
    scripts: list[tuple[str, str]] = field(default_factory=list)
    ran: list[tuple[str, str, Any]] = field(default_factory=list)
    logins: list[tuple[str, str, int]] = field(default_factory=list)

    def connect(self, target: HostTarget, pinned: str | None, accept_new: Any, use_agent: bool
                ) -> tuple[FakeSession, str]:
        self.logins.append((target.name, target.user, target.port))
        why = self.refuse(target) if self.refuse else None
        if isinstance(why, HomelabError):
            raise why
        if why:
            raise HomelabError(why, "fake transport refused")
        return FakeSession(self, target), pinned or "ssh-ed25519 AAAAfake"

    def run_ops(self, targets: Sequence[HostTarget], ops: Mapping[str, Sequence[Op]],
                pins: Mapping[HostTarget, str], redact: Sequence[str], parallel: int) -> FakeOpsRun:
        self.redacted = list(redact)
        return FakeOpsRun(self, ops)
