"""The plain data every layer produces: planned changes, host operations, monitors.

All frozen: a plan is a value that can be printed, compared, tested and then executed.
Host operations are *data* (an operation name plus keyword arguments), not callables, so a
pure `diff` can produce them, tests can assert on them, and they can be shipped to the
pyinfra worker process that runs them over SSH.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping


@dataclass(frozen=True)
class Op:
    """One pyinfra operation to run on a host, e.g. Op("apt.packages", {"packages": ["jq"]})."""

    name: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> list[Any]:
        return [self.name, dict(self.kwargs)]


@dataclass(frozen=True)
class Change:
    """One thing a layer will change; `summary` is what plan prints (never a secret)."""

    layer: str
    target: str  # host name, or a resource like "server web-1"
    action: str  # create | update | delete | resize | run
    summary: str
    ops: tuple[Op, ...] = ()  # host operations; empty for API changes the layer applies itself
    host: str | None = None  # host the ops run on (None: the layer applies it itself)
    destructive: bool = False  # deletes or replaces something: needs explicit confirmation
    detail: tuple[str, ...] = ()  # extra lines (diff of a file, old -> new)

    @property
    def symbol(self) -> str:
        return {"create": "+", "delete": "-", "update": "~", "resize": "~"}.get(self.action, "*")


@dataclass(frozen=True)
class LayerPlan:
    """What one layer will do: changes, and for everything else why nothing is needed."""

    layer: str
    changes: tuple[Change, ...] = ()
    unchanged: tuple[str, ...] = ()  # "h1: hostname is h1", i.e. "nothing to do because ..."
    warnings: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()  # reasons the plan must not be applied (budget exceeded, ...)
    notes: tuple[str, ...] = ()  # always shown, never a change: "monthly cost: 9.02 EUR (now 4.51 EUR)"

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


def worst(healths: list[Health]) -> Health:
    """The health a pane shows for a set of monitors."""
    order = [Health.FAIL, Health.WARN, Health.UNKNOWN, Health.OK]
    for h in order:
        if h in healths:
            return h
    return Health.UNKNOWN
