"""The plan a person reviewed, and the rule that apply runs only that.

`homelab plan --out plan.json` saves one; interactive `apply` and the TUI keep the one they
showed. During apply every layer still looks at its hosts first (the lower layers just changed
them), and its fresh plan is checked against the reviewed one:

- a change that was not reviewed stops the apply there (nothing above runs): the config or
  what the hosts report changed since the plan was made — plan again;
- a reviewed change that is no longer needed is simply not done (the host already is so);
- allowed beyond the review: what the plan announced without being able to spell it out —
  the later passes of a layer that showed deferred changes on that host, and everything on a
  server this apply creates (the plan showed its creation).

A change is compared by its key (layer, target, action, summary, operations, with secret
values as placeholders), so the file holds no secret.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from homelab.errors import HomelabError, UsageError
from homelab.model import Change, LayerPlan

FORMAT = 1


@dataclass(frozen=True)
class ReviewedPlan:
    config_path: str
    config_sha256: str
    keys: Mapping[str, frozenset[str]] = field(default_factory=dict)  # layer -> change keys
    deferred: Mapping[str, frozenset[str]] = field(default_factory=dict)  # layer -> hosts with deferred changes
    summaries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # for people reading the file
    created: float = 0.0

    @classmethod
    def of(cls, config_path: Path, digest: str, plans: Iterable[LayerPlan]) -> ReviewedPlan:
        plans = list(plans)
        return cls(
            str(config_path.resolve()), digest,
            {p.layer: frozenset(c.key for c in p.changes) for p in plans},
            {p.layer: frozenset(c.host for c in p.changes if c.deferred and c.host) for p in plans},
            {p.layer: tuple(f"{c.symbol} {c.target}: {c.summary}" for c in p.changes) for p in plans if p.changes},
            time.time())

    @property
    def changes(self) -> int:
        return sum(len(k) for k in self.keys.values())

    def unreviewed(self, plan: LayerPlan, created_hosts: set[str], later_pass: bool = False) -> list[Change]:
        """The changes of a fresh plan that the review did not show."""
        keys = self.keys.get(plan.layer, frozenset())
        deferred = self.deferred.get(plan.layer, frozenset())
        out = []
        for change in plan.changes:
            if change.key in keys or (change.host is not None and change.host in created_hosts):
                continue
            if later_pass and change.host is not None and change.host in deferred:
                continue
            out.append(change)
        return out

    # ------------------------------------------------------------------ file --
    def to_json(self) -> dict[str, Any]:
        return {"homelab_plan": FORMAT, "config": self.config_path, "config_sha256": self.config_sha256,
                "created": round(self.created, 3),
                "layers": {layer: {"keys": sorted(keys), "deferred_hosts": sorted(self.deferred.get(layer, ())),
                                   "changes": list(self.summaries.get(layer, ()))}
                           for layer, keys in self.keys.items()}}

    def save(self, path: Path) -> None:
        from homelab.state import write_atomic

        write_atomic(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], where: str) -> ReviewedPlan:
        if doc.get("homelab_plan") != FORMAT:
            raise UsageError(f"{where}: not a homelab plan (format {doc.get('homelab_plan')!r})",
                             "make one with `homelab plan CONFIG --out FILE`")
        try:
            layers = doc["layers"]
            return cls(str(doc["config"]), str(doc["config_sha256"]),
                       {k: frozenset(v["keys"]) for k, v in layers.items()},
                       {k: frozenset(v.get("deferred_hosts", ())) for k, v in layers.items()},
                       {k: tuple(v.get("changes", ())) for k, v in layers.items()},
                       float(doc.get("created", 0)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{where}: a damaged homelab plan ({exc})", "make it again with `homelab plan`") from None


def load_plan_file(path: Path) -> ReviewedPlan | None:
    """The saved plan in `path`, or None when the file is not one (a config, then)."""
    try:
        head = path.read_bytes()[:64]
    except OSError:
        return None
    if not head.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not readable as a saved plan: {exc}") from None
    if not isinstance(doc, dict) or "homelab_plan" not in doc:
        return None
    return ReviewedPlan.from_json(doc, str(path))


def check_config_unchanged(plan: ReviewedPlan, digest: str) -> None:
    if plan.config_sha256 != digest:
        raise HomelabError(f"{plan.config_path} changed since this plan was made; nothing was applied",
                           "run `homelab plan` again, review it, then apply the new plan")
