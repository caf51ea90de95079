"""Apply progress per layer: one line each, the state in words."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from homelab.tui.present import apply_progress
from homelab.tui.view_state import DONE, FAILED, RUNNING, SKIPPED, RunView

_MARK = {DONE: ("done", "green"), FAILED: ("FAIL", "bold red"), RUNNING: ("....", "bold"),
         SKIPPED: ("skip", "dim")}


class LayerProgress(Static):
    def show(self, view: RunView) -> None:
        text = Text()
        for i, lv in enumerate(view.layers):
            if i:
                text.append("\n")
            mark, style = _MARK.get(lv.state, ("wait", "dim"))
            text.append(f"[{mark}] ", style=style)
            text.append(f"{lv.label:<16}", style="bold" if lv.state == RUNNING else "")
            text.append(apply_progress(lv))
        self.update(text)
