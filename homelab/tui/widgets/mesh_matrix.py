"""Pairs of nodes as a matrix (row → column), each cell the pair's health in words."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from homelab.tui.present import Matrix

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "UNKNOWN": "dim"}


class MeshMatrix(DataTable[Text]):
    def show(self, matrix: Matrix) -> None:
        self.clear(columns=True)
        self.add_column("", width=max(len(n) for n in matrix.nodes) + 1)
        for n in matrix.nodes:
            self.add_column(n, width=max(len(n), 7))
        for a in matrix.nodes:
            cells = [Text(a, style="bold")]
            for b in matrix.nodes:
                word = matrix.cell(a, b)
                cells.append(Text(word, style=_STYLE.get(word, "dim")))
            self.add_row(*cells)
