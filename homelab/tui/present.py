"""Pure text for the panes: health in words, times, counts, the mesh matrix.

States are always written as words (OK / WARN / FAIL / UNKNOWN, done / failed ...): colour
only repeats what the word says, so the TUI reads the same on a monochrome terminal.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Mapping

from rich.text import Text

from homelab.model import WORST_FIRST, Health, Monitor, worst
from homelab.model import health_counts as model_health_counts
from homelab.tui.view_state import LayerView

_SEVERITY = {h: i for i, h in enumerate(WORST_FIRST)}


def format_clock(ts: float | None) -> str:
    """Local wall-clock time of a check, or "never"."""
    if ts is None:
        return "never"
    return time.strftime("%H:%M:%S", time.localtime(ts))


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def append_failure(text: Text, what: str, error: str, hint: str = "", lead: str = "") -> Text:
    """"<what>: <error> (hint: <hint>)" — the words say it failed; the style only repeats it."""
    text.append(f"{lead}{what}: {error}", style="bold red")
    if hint:
        text.append(f" (hint: {hint})", style="yellow")
    return text


def worst_first(monitors: Iterable[Monitor]) -> list[Monitor]:
    return sorted(monitors, key=lambda m: (_SEVERITY[m.health], m.subject, m.name))


def health_counts(monitors: Iterable[Monitor]) -> str:
    """"1 FAIL, 2 OK" in severity order; "no monitors" when empty."""
    return model_health_counts(m.health for m in monitors)


def monitor_line(m: Monitor, width: int = 76) -> str:
    line = f"{m.health.value:<7} {m.subject}: {m.name}: {m.reason}"
    return line if len(line) <= width else line[: width - 1] + "…"


def layer_health_word(lv: LayerView) -> str:
    """What a dashboard pane says about its layer, in one word."""
    if lv.skipped_reason and not lv.monitors:
        return "OFF"
    return lv.health.value


def layer_headline(lv: LayerView) -> str:
    """The first line of a dashboard pane: number, name, title."""
    title = f" — {lv.title}" if lv.title and lv.title != lv.name else ""
    return f"layer {lv.label.strip()}{title}"


def layer_summary(lv: LayerView) -> str:
    if lv.skipped_reason and not lv.monitors:
        return lv.skipped_reason
    return f"{health_counts(lv.monitors)} · checked {format_clock(lv.checked_at)}"


def plan_counts(lv: LayerView) -> str:
    if lv.plan is None:
        return lv.skipped_reason or ("not planned" if lv.state != "running" else "planning…")
    if lv.plan.blocked:
        return f"BLOCKED, {plural(len(lv.plan.changes), 'change')}"
    if lv.plan.unplanned:
        return f"NOT PLANNED on {plural(len(lv.plan.unplanned), 'host')}" + (
            f", {plural(len(lv.plan.changes), 'change')}" if lv.plan.changes else "")
    if not lv.plan.changes:
        checked = f" ({len(lv.plan.unchanged)} checked)" if lv.plan.unchanged else ""
        return f"no changes{checked}"
    return plural(len(lv.plan.changes), "change")


def apply_progress(lv: LayerView) -> str:
    """"applying 2/5", "done 5/5", "failed 1 of 5", "skipped: nothing configured" ..."""
    # a layer may apply more than it first planned (mesh: peers are planned once keys exist)
    total = max(lv.planned, lv.applied + lv.failed)
    if lv.state == "skipped":
        return f"skipped: {lv.skipped_reason}"
    if lv.state == "waiting":
        return "waiting"
    if lv.state == "running":
        return f"applying {lv.applied}/{total}" if lv.plan is not None else "planning…"
    if lv.failed:
        return f"FAILED {lv.failed}, done {lv.applied}/{total}"
    return f"done {lv.applied}/{total}" if total else "done, no changes"


# ---------------------------------------------------------------- mesh matrix --
@dataclass(frozen=True)
class Matrix:
    """Health per pair of nodes, from monitors whose subject is "a<->b" (or directed "a->b")."""

    nodes: tuple[str, ...]
    cells: Mapping[tuple[str, str], Health]

    def cell(self, a: str, b: str) -> str:
        if a == b:
            return "—"
        h = self.cells.get((a, b))
        return h.value if h is not None else "·"


def split_pair(subject: str) -> tuple[str, str, bool] | None:
    """("a", "b", symmetric) for "a<->b" / "a->b"; None for a plain subject."""
    for sep, symmetric in (("<->", True), ("->", False)):
        a, found, b = subject.partition(sep)
        if found and a.strip() and b.strip():
            return a.strip(), b.strip(), symmetric
    return None


def pair_matrix(monitors: Iterable[Monitor]) -> Matrix | None:
    """The matrix of pair monitors; None if no monitor is about a pair (no matrix to draw)."""
    per_cell: dict[tuple[str, str], list[Health]] = {}
    nodes: set[str] = set()
    for m in monitors:
        pair = split_pair(m.subject)
        if pair is None:
            continue
        a, b, symmetric = pair
        nodes.update((a, b))
        per_cell.setdefault((a, b), []).append(m.health)
        if symmetric:
            per_cell.setdefault((b, a), []).append(m.health)
    if not per_cell:
        return None
    return Matrix(tuple(sorted(nodes)), {k: worst(v) for k, v in per_cell.items()})
