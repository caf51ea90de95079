"""A dashboard pane: one layer, its health in words, and its worst monitors."""
from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.message import Message
from textual.widgets import Static

from homelab.tui.present import (
    layer_headline, layer_health_word, layer_summary, monitor_line, plural, worst_first,
)
from homelab.tui.view_state import LayerView

MONITOR_LINES = 2  # per pane in the stacked list (80x24); the rest is one key away (enter: details)
GRID_MONITOR_LINES = 5  # per pane when panes stand side by side in a grid (wide terminals)
_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "UNKNOWN": "dim", "OFF": "dim"}


def render_pane(lv: LayerView, width: int = 74, lines: int = MONITOR_LINES) -> Text:
    """The pane's text, monitor lines cut to `width` (the pane's own; enter shows them whole)."""
    word = layer_health_word(lv)
    text = Text()
    text.append(f"{word:<8}", style=_STYLE.get(word, ""))
    text.append(layer_headline(lv), style="bold")
    text.append(f" · {layer_summary(lv)}")
    monitors = worst_first(lv.monitors)
    for m in monitors[:lines]:
        text.append("\n  ")
        text.append(f"{m.health.value:<7}", style=_STYLE[m.health.value])
        text.append(monitor_line(m, width - 2)[7:])
    if len(monitors) > lines:
        text.append(f"\n  … {plural(len(monitors) - lines, 'more monitor')} (enter: details)", style="dim")
    return text


class LayerPane(Static, can_focus=True):
    """Focus it and press enter to drill down (posts `LayerPane.Selected`)."""

    BINDINGS = [("enter", "select", "details")]

    class Selected(Message):
        def __init__(self, layer: str) -> None:
            super().__init__()
            self.layer = layer

    def __init__(self, layer: LayerView) -> None:
        super().__init__(id=f"pane-{layer.name}", classes="layer-pane")
        self.layer_view = layer

    def on_mount(self) -> None:
        self.show(self.layer_view)

    def show(self, layer: LayerView) -> None:
        self.layer_view = layer
        word = layer_health_word(layer)
        for cls in ("OK", "WARN", "FAIL", "UNKNOWN", "OFF"):
            self.set_class(cls == word, f"-{cls.lower()}")
        width = self.content_size.width or 74  # 0 before the first layout
        lines = GRID_MONITOR_LINES if self.has_class("-in-grid") else MONITOR_LINES
        self.update(render_pane(layer, width, lines))

    def on_resize(self, event: Resize) -> None:
        self.show(self.layer_view)  # the terminal's width, not a fixed 80 columns

    def action_select(self) -> None:
        self.post_message(self.Selected(self.layer_view.name))
