"""Hosts of a run: state in words, changes applied, and the last output line."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from homelab.tui.view_state import RunView

_STYLE = {"failed": "bold red", "unreachable": "bold red", "changed": "green", "ok": "green", "working": "bold",
          "no answer": "bold yellow"}


class HostTable(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("host", width=12, key="host")
        self.add_column("state", width=11, key="state")
        self.add_column("chg", width=4, key="changes")
        self.add_column("last line / error", width=44, key="last")

    def show(self, view: RunView) -> None:
        rows = {str(k.value) for k in self.rows}
        for h in view.hosts:
            last = h.error if h.error else h.last_line
            cells = (Text(h.name), Text(h.state.upper() if h.state in ("failed", "unreachable") else h.state,
                                        style=_STYLE.get(h.state, "")),
                     Text(str(h.applied)), Text(last[:44]))
            if h.name not in rows:
                self.add_row(*cells, key=h.name)
            else:
                for col, cell in zip(("host", "state", "changes", "last"), cells):
                    self.update_cell(h.name, col, cell)
        for gone in rows - {h.name for h in view.hosts}:
            self.remove_row(gone)
