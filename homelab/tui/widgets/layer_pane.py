"""A dashboard pane: one layer, its health in words, and its worst monitors."""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Static

from homelab.tui.present import (
    layer_headline, layer_health_word, layer_summary, monitor_line, plural, worst_first,
)
from homelab.tui.view_state import LayerView

MONITOR_LINES = 2  # per pane; the rest is one key away (enter: details)
_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "UNKNOWN": "dim", "OFF": "dim"}


def render_pane(lv: LayerView, width: int = 74) -> Text:
    word = layer_health_word(lv)
    text = Text()
    text.append(f"{word:<8}", style=_STYLE.get(word, ""))
    text.append(layer_headline(lv), style="bold")
    text.append(f" · {layer_summary(lv)}")
    monitors = worst_first(lv.monitors)
    for m in monitors[:MONITOR_LINES]:
        text.append("\n  ")
        text.append(f"{m.health.value:<7}", style=_STYLE[m.health.value])
        text.append(monitor_line(m, width)[7:])
    if len(monitors) > MONITOR_LINES:
        text.append(f"\n  … {plural(len(monitors) - MONITOR_LINES, 'more monitor')} (enter: details)", style="dim")
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
        self.update(render_pane(layer))

    def action_select(self) -> None:
        self.post_message(self.Selected(self.layer_view.name))
