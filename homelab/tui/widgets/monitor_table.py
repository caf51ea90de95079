"""Every monitor of a layer, one row each: health in words, subject, check, reason, when.

The reason column takes what the terminal's width leaves; the highlighted row is also shown
whole, wrapped, under the table (`monitor_detail`), so no reason is ever only half readable."""
from __future__ import annotations

from rich.text import Text
from textual.events import Resize
from textual.widgets import DataTable

from homelab.model import Monitor
from homelab.tui.present import format_clock, worst_first

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "UNKNOWN": "dim"}
_FIXED = (("health", 7), ("subject", 11), ("check", 11))
_CHECKED = 8
MIN_REASON = 20


def column_widths(width: int) -> list[tuple[str, int]]:
    """Columns for a table `width` cells wide (each column also takes 2 cells of padding)."""
    fixed = sum(w + 2 for _, w in _FIXED) + _CHECKED + 2
    reason = max(MIN_REASON, width - fixed - 2 - 2)  # the table's scrollbar, a margin
    return [*_FIXED, ("reason", reason), ("checked", _CHECKED)]


def monitor_detail(m: Monitor) -> Text:
    text = Text()
    text.append(f"{m.health.value} ", style=_STYLE[m.health.value])
    text.append(f"{m.subject}: {m.name}", style="bold")
    text.append(f" (checked {format_clock(m.checked_at)})\n{m.reason}")
    return text


class MonitorTable(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.monitors: list[Monitor] = []
        self._width = 0
        self._columns(self.size.width or 80)

    def _columns(self, width: int) -> None:
        self._width = width
        self.clear(columns=True)
        for name, w in column_widths(width):
            self.add_column(name, width=w)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._width:
            self._columns(event.size.width)
            self.show(tuple(self.monitors))

    def show(self, monitors: tuple[Monitor, ...]) -> None:
        self.clear()
        self.monitors = worst_first(monitors)
        for m in self.monitors:
            self.add_row(Text(m.health.value, style=_STYLE[m.health.value]), Text(m.subject), Text(m.name),
                         Text(m.reason), Text(format_clock(m.checked_at)))

    def highlighted(self) -> Monitor | None:
        row = self.cursor_row
        return self.monitors[row] if 0 <= row < len(self.monitors) else None
