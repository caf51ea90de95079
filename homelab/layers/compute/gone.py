"""Layer 3: what homelab made in the Hetzner project but the config no longer names.

One rule for servers and volumes alike (pure): a listed resource (ours by its labels: the
caller lists only those) whose name the config does not want is
- blocked while it is delete-protected (the config must drop protection first, so removing
  an entry can never delete a protected resource by itself);
- otherwise a planned delete, destructive, so it waits for --confirm-delete.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

from homelab.model import Change, Op

LAYER = "compute"


@dataclass(frozen=True)
class Gone:
    changes: tuple[Change, ...] = ()
    blocked: tuple[str, ...] = ()


def plan_gone(kind: str, existing: Sequence[Any], wanted: Collection[str],
              describe: Callable[[Any], str]) -> Gone:
    """`kind` names the resource in targets, messages and the op (`hetzner.delete_<kind>`);
    `existing` objects have .name, .id and .protected; `describe(resource)` is the delete's
    summary (what is lost)."""
    changes: list[Change] = []
    blocked: list[str] = []
    for have in existing:
        if have.name in wanted:
            continue
        if have.protected:
            blocked.append(f"{kind} {have.name} is not in the config any more but is delete-protected: put it "
                           "back with protection: false, apply, then remove it")
            continue
        changes.append(Change(LAYER, f"{kind} {have.name}", "delete", describe(have),
                              ops=(Op(f"hetzner.delete_{kind}", {"name": have.name, "id": have.id}),),
                              destructive=True))
    return Gone(tuple(changes), tuple(blocked))
