"""The plain data every layer produces: planned changes, host operations, monitors.

All frozen: a plan is a value that can be printed, compared, tested and then executed.
Host operations are *data* (an operation name plus keyword arguments), not callables, so a
pure `diff` can produce them, tests can assert on them, and they can be shipped to the
pyinfra worker process that runs them over SSH.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Mapping

from homelab.secrets import Secret, SecretText


@dataclass(frozen=True)
class Op:
    """One pyinfra operation to run on a host, e.g. Op("apt.packages", {"packages": ["jq"]})."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self, reveal: bool = True) -> list[Any]:
        """[name, kwargs] for the worker. Secrets in kwargs are revealed here only — this is
        the one place an op's secret becomes text (the job goes to the worker on stdin)."""
        return [self.name, _plain(dict(self.kwargs), reveal)]


def _plain(value: Any, reveal: bool) -> Any:
    if isinstance(value, (Secret, SecretText)):
        return value.reveal() if reveal else str(value)
    if isinstance(value, dict):
        return {k: _plain(v, reveal) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, reveal) for v in value]
    return value


@dataclass(frozen=True)
class Change:
    """One thing a layer will change; `summary` is what plan prints (never a secret)."""

    layer: str
    target: str  # host name, or a resource like "server web-1"
    action: str  # create | update | delete | resize | run | wait (a server still coming up)
    summary: str
    ops: tuple[Op, ...] = ()  # host operations; empty for API changes the layer applies itself
    host: str | None = None  # host the ops run on (None: the layer applies it itself)
    destructive: bool = False  # deletes or replaces something: needs explicit confirmation
    detail: tuple[str, ...] = ()  # extra lines (diff of a file, old -> new)
    # Why this change cannot be written yet (it needs what earlier changes of this apply make,
    # e.g. public keys generated on the nodes); shown by plan, planned in full by a later pass.
    deferred: str = ""
    outputs: tuple[Any, ...] = ()  # typed outputs (homelab.outputs) that hold once this is applied
    writes: tuple[StateWrite, ...] = ()  # the layer's state, written once this is applied

    @property
    def symbol(self) -> str:
        return {"create": "+", "delete": "-", "update": "~", "resize": "~"}.get(self.action, "*")

    @property
    def key(self) -> str:
        """Identity of the change for comparing a reviewed plan with a fresh one: what it does
        and to what, with secret values as placeholders (never their content)."""
        body = json.dumps([self.layer, self.target, self.action, self.summary, self.host,
                           [op.to_json(reveal=False) for op in self.ops], self.deferred],
                          sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StateWrite:
    """Set (or, with `discard`, remove from a list) one value in a layer's state section."""

    path: tuple[str, ...]  # keys below the section, e.g. ("hosts", "h1", "users")
    value: Any = None
    discard: bool = False

    def apply_to(self, section: dict[str, Any]) -> None:
        node = section
        for key in self.path[:-1]:
            node = node.setdefault(key, {})
        last = self.path[-1]
        if self.discard:
            node[last] = [v for v in node.get(last, []) if v != self.value]
        else:
            node[last] = self.value


@dataclass(frozen=True)
class LayerPlan:
    """What one layer will do: changes, and for everything else why nothing is needed."""

    layer: str
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()  # "h1: hostname is h1", i.e. "nothing to do because ..."
    warnings: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()  # reasons the plan must not be applied (budget exceeded, ...)
    notes: tuple[str, ...] = ()  # always shown, never a change: "monthly cost: 9.02 EUR (now 4.51 EUR)"
    # What holds once this plan's pass ran (applied or not: e.g. which users the layer manages);
    # the writes of the changes that were applied come after these.
    writes: tuple[StateWrite, ...] = ()
    outputs: tuple[Any, ...] = ()  # typed outputs that hold once the pass ran without failures
    # Probes the next pass needs on a host (a key a node made, to copy to its peer): explicit
    # here rather than remembered by the layer object.
    followup_probes: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # "h2: cannot connect ...": hosts this layer could not look at. A plan with any is not
    # "no changes": nobody knows what those hosts need (the run fails, exit 1).
    unplanned: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes


class Health(str, Enum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class Monitor:
    """A live check: `subject` (host or pair) `name` is `health` because `reason`."""

    layer: str
    subject: str
    name: str
    health: Health
    reason: str
    checked_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "subject": self.subject,
            "name": self.name,
            "health": self.health.value,
            "reason": self.reason,
            "checked_at": round(self.checked_at, 3),
        }


WORST_FIRST = (Health.FAIL, Health.WARN, Health.UNKNOWN, Health.OK)


def worst(healths: list[Health]) -> Health:
    """The health a pane shows for a set of monitors."""
    for h in WORST_FIRST:
        if h in healths:
            return h
    return Health.UNKNOWN


def health_counts(healths: Iterable[Health]) -> str:
    """"1 FAIL, 2 OK": how many monitors of each health, worst first; "no monitors" when none."""
    counts: dict[Health, int] = {}
    for h in healths:
        counts[h] = counts.get(h, 0) + 1
    return ", ".join(f"{counts[h]} {h.value}" for h in WORST_FIRST if h in counts) or "no monitors"
