"""The dashboard: one pane per layer with its monitors, refreshed live by `status` runs.

A status run every `refresh_seconds` while this screen (or its drill-down) is in front;
panes exist from the first frame (the layer catalog: homelab/registry.py, read before
compose — no run, no engine import) and keep their last monitors until fresh ones arrive,
with the time they were checked. The first status run starts after the first frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.events import Resize
from textual.widgets import Footer, Static

from homelab.tui.keys import QUIT
from homelab.tui.present import append_failure, format_clock
from homelab.tui.screens.run_screen import RunScreen
from homelab.tui.sources import EventSource, RunRequest
from homelab.tui.view_state import LayersKnown, RunView, reduce
from homelab.tui.widgets.layer_pane import LayerPane

if TYPE_CHECKING:
    from homelab.tui.screens.layer_detail import LayerDetailScreen


GRID_MIN_WIDTH = 120  # columns from which the panes stand side by side


def grid_columns(width: int) -> int:
    """Panes per row at `width` terminal columns: 1 (the stacked list) below 120, then as many
    as fit at ~60 columns each (a pane is never narrower than ~58), at most 3."""
    return 1 if width < GRID_MIN_WIDTH else min(3, width // 60)


def moved(index: int, count: int, columns: int, rows: int, steps: int) -> int:
    """The pane `rows` rows and `steps` panes away from pane `index` (reading order, `columns`
    per row), kept on the board: a move off its edge stays at the first or last pane."""
    return max(0, min(count - 1, index + rows * columns + steps))


def run_line(view: RunView, refresh_seconds: float) -> Text:
    """The line under the panes: what the last status run found, in words."""
    text = Text()
    if view.running:
        text.append("checking… ", style="bold")
    if view.crashed is not None:
        return append_failure(text, "status FAILED", view.crashed.message, view.crashed.hint)
    for h in view.hosts:
        if h.state in ("unreachable", "failed"):
            append_failure(text, f"{h.name} {h.state.upper()}", h.error, h.hint)
            text.append("\n")
    if view.finished is not None and not view.running:
        text.append(f"checked {format_clock(view.checked_at)} · again every {refresh_seconds:g} s · "
                    "enter: details")
    return text


class DashboardScreen(RunScreen):
    BINDINGS = [
        Binding("r", "recheck", "re-check"),
        Binding("p", "plan", "plan"),
        Binding("a", "apply", "apply"),
        Binding("question_mark", "app.help", "help"),
        QUIT,
        # the same keys at every width: in the grid up/down move by a row, left/right by a pane;
        # in the stacked list (one column) both pairs go to the previous/next layer
        Binding("down,j", "move(1, 0)", "layer below", show=False),
        Binding("up,k", "move(-1, 0)", "layer above", show=False),
        Binding("right,l", "move(0, 1)", "next layer", show=False),
        Binding("left,h", "move(0, -1)", "previous layer", show=False),
    ]

    def __init__(self, source: EventSource, config_path: Path, refresh_seconds: float = 15.0) -> None:
        super().__init__(source)
        self.config_path = config_path
        self.refresh_seconds = refresh_seconds
        self.detail: LayerDetailScreen | None = None
        self.view = reduce(self.view, LayersKnown(source.layers()))
        # by layer name, in display order
        self.panes: dict[str, LayerPane] = {lv.name: LayerPane(lv) for lv in self.view.layers}
        self.columns = 1  # panes per row, set by _lay_out

    def compose(self) -> ComposeResult:
        yield Static(f"homelab — {self.config_path} — dashboard", id="title")
        yield VerticalScroll(*self.panes.values(), id="panes")
        yield Static("", id="run-line")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(self.refresh_seconds, self._tick)
        self._lay_out(self.app.size.width)
        self.call_after_refresh(self._focus_first)

    def on_resize(self, event: Resize) -> None:
        self._lay_out(event.size.width)

    def _lay_out(self, width: int) -> None:
        """120+ columns: the layers side by side as panes in a grid; narrower: the stacked list."""
        wide = width >= GRID_MIN_WIDTH
        box = self.query_one("#panes")
        box.set_class(wide, "-grid")
        self.columns = grid_columns(width)
        if wide:
            box.styles.grid_size_columns = self.columns
        for pane in self.panes.values():
            pane.set_class(wide, "-in-grid")
            pane.show(pane.layer_view)

    def on_screen_resume(self) -> None:
        self.call_after_refresh(self._tick)  # shown (first time, or back from plan/apply): look now

    def _tick(self) -> None:
        front = self.app.screen
        if front is self or front is self.detail:
            self.action_recheck()

    def action_recheck(self) -> None:
        # status never asks about unknown host keys (it repeats every few seconds): such
        # hosts show as unreachable until a plan, which asks, has pinned their keys
        self.start_run(RunRequest("status"))

    def action_plan(self) -> None:
        self.app.open_plan(apply_after=False)  # type: ignore[attr-defined]

    def action_apply(self) -> None:
        self.app.open_plan(apply_after=True)  # type: ignore[attr-defined]

    def show_view(self, view: RunView) -> None:
        names = [lv.name for lv in view.layers]
        if names != list(self.panes):  # a layer appeared (catalog, or a newer engine): lay out again
            box = self.query_one("#panes", VerticalScroll)
            for pane in self.panes.values():
                pane.remove()
            self.panes = {lv.name: LayerPane(lv) for lv in view.layers}
            box.mount_all(self.panes.values())
            self._lay_out(self.size.width)
            self.call_after_refresh(self._focus_first)
        else:
            for lv in view.layers:
                self.panes[lv.name].show(lv)
        self.query_one("#run-line", Static).update(run_line(view, self.refresh_seconds))
        if self.detail is not None and self.detail.is_attached:
            detailed = view.layer(self.detail.layer_name)
            if detailed is not None:
                self.detail.show_layer(detailed, view)

    def action_move(self, rows: int, steps: int) -> None:
        panes = list(self.panes.values())
        if not panes:
            return
        here = next((i for i, p in enumerate(panes) if p is self.focused), 0)
        panes[moved(here, len(panes), self.columns, rows, steps)].focus()

    def _focus_first(self) -> None:
        panes = list(self.query(LayerPane))
        if panes and not isinstance(self.focused, LayerPane):
            panes[0].focus()

    @on(LayerPane.Selected)
    def _drill_down(self, event: LayerPane.Selected) -> None:
        from homelab.tui.screens.layer_detail import LayerDetailScreen

        lv = self.view.layer(event.layer)
        if lv is None:
            return
        self.detail = LayerDetailScreen(lv, self.view)
        self.app.push_screen(self.detail, callback=lambda _: setattr(self, "detail", None))
