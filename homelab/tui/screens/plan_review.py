"""Plan review: what apply would change, grouped by layer with counts; confirm to apply."""
from __future__ import annotations

import dataclasses

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static, Tree

from homelab.tui.keys import QUIT, back
from homelab.tui.present import append_failure, plural
from homelab.tui.screens.confirm_apply import ApplyChoice, ConfirmApplyScreen
from homelab.tui.screens.run_screen import RunScreen
from homelab.tui.sources import EventSource
from homelab.tui.view_state import RunView
from homelab.tui.widgets.plan_tree import PlanTree


def plan_summary(view: RunView) -> Text:
    text = Text()
    if view.crashed is not None:
        return append_failure(text, "plan FAILED", view.crashed.message, view.crashed.hint)
    if view.running:
        where = f" ({view.current_layer})" if view.current_layer else " (connecting)"
        text.append(f"planning…{where}", style="bold")
    else:
        layers = sum(1 for lv in view.layers if lv.planned)
        unplanned = sorted({u.partition(":")[0] for lv in view.layers if lv.plan for u in lv.plan.unplanned})
        if unplanned:  # never "no changes" for hosts nobody could look at
            text.append(f"plan INCOMPLETE: {plural(len(unplanned), 'host')} not planned ({', '.join(unplanned)})"
                        f"{'; ' + plural(view.planned, 'change') + ' elsewhere' if view.planned else ''}",
                        style="bold red")
        elif view.planned:
            text.append(f"plan: {plural(view.planned, 'change')} in {plural(layers, 'layer')}", style="bold")
        else:
            text.append("plan: no changes — everything is as the config says", style="bold")
    connected = sum(1 for h in view.hosts if h.state not in ("unreachable", "failed", "waiting"))
    if view.hosts:
        text.append(f" · {connected}/{len(view.hosts)} hosts reached")
    for h in view.hosts:
        if h.state in ("unreachable", "failed"):
            append_failure(text, f"{h.name} {h.state.upper()}", h.error, h.hint, lead="\n")
    for f in view.failures:
        if f.subject not in {h.name for h in view.hosts}:
            append_failure(text, f"FAILED {f.subject}", f.error, f.hint, lead="\n")
    if not view.running and view.planned and not view.blocked and view.ok:
        text.append("\na: apply these changes · esc: back", style="dim")
    return text


class PlanScreen(RunScreen):
    BINDINGS = [
        Binding("a", "apply", "apply"),
        Binding("r", "replan", "plan again"),
        back(),
        Binding("question_mark", "app.help", "help"),
        QUIT,
    ]

    def __init__(self, source: EventSource, config_path: Path, apply_after: bool = False) -> None:
        super().__init__(source)
        self.config_path = config_path
        self.apply_after = apply_after  # came from "apply": ask for confirmation once planned

    def compose(self) -> ComposeResult:
        yield Static(f"homelab — {self.config_path} — plan", id="title")
        yield Static("", id="plan-summary")
        yield PlanTree(id="plan-tree")
        yield Static("", id="plan-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(PlanTree).focus()
        self.action_replan()

    @on(Tree.NodeHighlighted, "#plan-tree")
    def _show_whole(self, event: Tree.NodeHighlighted[str]) -> None:
        """The highlighted row in full, wrapped: a long change or warning is read here, never cut."""
        node = event.node
        self.query_one("#plan-detail", Static).update("" if node.is_root else node.label)

    def action_replan(self) -> None:
        self.start_run(self.request("plan"))

    def action_back(self) -> None:
        self.app.pop_screen()

    def show_view(self, view: RunView) -> None:
        self.query_one(PlanTree).show(view)
        self.query_one("#plan-summary", Static).update(plan_summary(view))
        if self.apply_after and view.finished is not None and not view.running:
            self.apply_after = False
            self.action_apply()

    def action_apply(self) -> None:
        view = self.view
        why = ("the plan is still running" if view.running else
               "some hosts were not planned (see above): reach them, then plan again (r)"
               if any(lv.plan.unplanned for lv in view.layers if lv.plan) else
               "the plan failed; see above" if not view.ok else
               "the plan is blocked; change the config" if view.blocked else
               "nothing to apply" if not view.planned else "")
        if why:
            self.notify(why, severity="warning", timeout=4)
            return
        hosts = len({c.host for lv in view.layers if lv.plan for c in lv.plan.changes if c.host})
        self.app.push_screen(ConfirmApplyScreen(view.planned, sum(1 for lv in view.layers if lv.planned), hosts,
                                                view.destructive), callback=self._confirmed)

    def _confirmed(self, choice: ApplyChoice | None) -> None:
        if choice is not None:
            reviewed = tuple(lv.plan for lv in self.view.layers if lv.plan is not None)
            choice = dataclasses.replace(choice, plans=reviewed, config_digest=self.view.config_digest)
            self.app.start_apply(choice)  # type: ignore[attr-defined]
