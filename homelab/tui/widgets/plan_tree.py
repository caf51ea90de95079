"""The plan as a tree: layers (with counts) → changes → their details; why nothing else changes."""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree

from homelab.host_lines import grouped_by_host
from homelab.tui.present import plan_counts, plural
from homelab.tui.view_state import RunView

_SYMBOL_STYLE = {"+": "green", "-": "bold red", "~": "yellow", "*": "cyan"}


class PlanTree(Tree[str]):
    """Rebuilt when the plan changes; layers with changes start expanded."""

    # Tree's own keys, named for what they do here (help lists them)
    BINDINGS = [
        Binding("enter,space", "toggle_node", "expand / collapse the row", show=False),
        Binding("shift+space", "toggle_expand_all", "expand / collapse all", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__("plan", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        self._shown: tuple[object, ...] = ()

    def show(self, view: RunView) -> None:
        key = tuple((lv.name, lv.plan, lv.state) for lv in view.layers)
        if key == self._shown:
            return
        self._shown = key
        self.clear()
        for lv in view.layers:
            label = Text()
            label.append(f"layer {lv.label.strip()}", style="bold")
            label.append(f" — {plan_counts(lv)}")
            plan = lv.plan
            node = self.root.add(label, data=lv.name, expand=bool(plan and (plan.changes or plan.blocked)))
            if plan is None:
                node.allow_expand = False
                continue
            for b in plan.blocked:
                node.add_leaf(Text(f"BLOCKED: {b}", style="bold red"))
            for note in getattr(plan, "notes", ()) or ():
                node.add_leaf(Text(f"note: {note}", style="cyan"))
            for w in grouped_by_host(plan.warnings, {h.name for h in view.hosts}):
                node.add_leaf(Text(f"WARNING: {w}", style="yellow"))
            for c in plan.changes:
                text = Text()
                text.append(f"{c.symbol} ", style=_SYMBOL_STYLE.get(c.symbol, ""))
                text.append(f"{c.target}: {c.summary}")
                if c.destructive:
                    text.append("  (destructive)", style="bold red")
                if c.detail:
                    child = node.add(text, expand=False)
                    for line in c.detail:
                        child.add_leaf(Text(line, style="dim"))
                else:
                    node.add_leaf(text)
            if plan.unchanged:
                same = node.add(Text(f"= {plural(len(plan.unchanged), 'thing')} already right", style="dim"),
                                expand=False)
                for line in plan.unchanged:
                    same.add_leaf(Text(f"= {line}", style="dim"))
            if not node.children:
                node.allow_expand = False
