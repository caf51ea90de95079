"""Changes to operations and back: the bookkeeping between a layer's changes and the worker.

Each host's changes are flattened into one op list; a change owns a span of op indexes and is
applied when the last op of its span succeeded. Every change whose ops did not all succeed is
reported failed, including ones never run (the host stopped at an earlier failure).
"""
from __future__ import annotations

import threading
from typing import Any, Iterator, Mapping, Sequence

from homelab.events import ChangeApplied, ChangeFailed, Event, HostFailed, HostOutput, Progress
from homelab.model import Change, Op
from homelab.secrets import Secret, SecretText
from homelab.transport import OpsRun


def flatten(by_host: Mapping[str, Sequence[Change]]) -> tuple[dict[str, list[Op]], dict[str, list[tuple[Change, range]]]]:
    """Pure: per host, the op list and each change's span in it."""
    ops: dict[str, list[Op]] = {}
    spans: dict[str, list[tuple[Change, range]]] = {}
    for host, changes in by_host.items():
        ops[host], spans[host] = [], []
        for change in changes:
            spans[host].append((change, range(len(ops[host]), len(ops[host]) + len(change.ops))))
            ops[host].extend(change.ops)
    return ops, spans


def secrets_in(ops: Mapping[str, Sequence[Op]]) -> list[Secret]:
    """Secrets the ops carry (revealed for the worker only): the worker masks them in output."""
    found: list[Secret] = []

    def walk(v: Any) -> None:
        if isinstance(v, Secret):
            found.append(v)
        elif isinstance(v, SecretText):
            found.extend(v.secrets)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for host_ops in ops.values():
        for op in host_ops:
            walk(dict(op.kwargs))
    return found


def track(run: OpsRun, layer: str, spans: Mapping[str, list[tuple[Change, range]]],
          failed_hosts: dict[str, str], cancelled: threading.Event | None = None) -> Iterator[Event]:
    """Turn the worker's events into ours; hosts that fail are recorded in `failed_hosts`.
    After a cancel, what did not run says "cancelled" (its host did not fail)."""
    owner: dict[str, dict[int, tuple[Change, bool]]] = {
        host: {k: (change, k == span[-1]) for change, span in host_spans for k in span}
        for host, host_spans in spans.items()}
    done: dict[str, set[int]] = {host: set() for host in spans}
    run_error = "not run: the provisioning worker stopped"
    for ev in run.events():
        kind, host = ev.get("event"), ev.get("host", "")
        if kind == "output":
            yield HostOutput(host, layer, ev.get("line", ""))
        elif kind == "progress":  # a wait on the host (the apt lock): "h1: waiting for ..."
            yield Progress(layer, ev.get("message", ""))
        elif kind == "op_ok" and ev.get("index") is not None and host in owner:
            change, last = owner[host][ev["index"]]
            done[host].add(ev["index"])
            if last:
                yield ChangeApplied(change)
        elif kind == "run_error":
            run_error = ev.get("error") or "the provisioning worker stopped"
        elif kind in ("op_error", "connect_error") and host:
            error = ev.get("error") or "failed"
            failed_hosts[host] = error
            yield HostFailed(host, layer, error, "see the output above and the run log")
    for host, host_spans in spans.items():
        for change, span in host_spans:
            if not all(k in done[host] for k in span):
                if cancelled is not None and cancelled.is_set() and host not in failed_hosts:
                    yield ChangeFailed(change, "cancelled: not run", "apply again to finish")
                    continue
                why = failed_hosts.get(host, run_error)
                failed_hosts.setdefault(host, why)
                yield ChangeFailed(change, why, "see the run log; the next apply retries it")
