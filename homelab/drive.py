"""Running an engine command to its end: every event logged and rendered, the results kept.

Shared by the CLI and the commands layers add (`homelab mesh rotate`), so neither imports the
other (this module imports no front end).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from homelab.events import LayerPlanned, LayerStatus, RunFinished
from homelab.model import LayerPlan

log = logging.getLogger("homelab")


@dataclass
class Driven:
    finished: RunFinished | None = None
    plans: list[LayerPlan] = field(default_factory=list)
    statuses: list[LayerStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.finished is not None and self.finished.ok

    @property
    def blocked(self) -> bool:
        return any(p.blocked for p in self.plans)

    @property
    def changes(self) -> int:
        return sum(len(p.changes) for p in self.plans)


def drive(events: Iterable[Any], renderer: Callable[[Any], None] | None) -> Driven:
    """Render every event; return the RunFinished, the planned layers and the statuses."""
    out = Driven()
    for event in events:
        log.info("%s", event)
        if renderer is not None:
            renderer(event)
        if isinstance(event, RunFinished):
            out.finished = event
        elif isinstance(event, LayerPlanned):
            out.plans.append(event.plan)
        elif isinstance(event, LayerStatus):
            out.statuses.append(event)
    return out
