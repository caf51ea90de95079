"""Every monitor of a layer, one row each: health in words, subject, check, reason, when."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from homelab.model import Monitor
from homelab.tui.present import format_clock, worst_first

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "UNKNOWN": "dim"}


class MonitorTable(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for name, width in (("health", 7), ("subject", 11), ("check", 11), ("reason", 29), ("checked", 8)):
            self.add_column(name, width=width)

    def show(self, monitors: tuple[Monitor, ...]) -> None:
        self.clear()
        for m in worst_first(monitors):
            self.add_row(Text(m.health.value, style=_STYLE[m.health.value]), Text(m.subject), Text(m.name),
                         Text(m.reason), Text(format_clock(m.checked_at)))
