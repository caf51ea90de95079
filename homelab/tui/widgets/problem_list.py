"""The problems of a wizard step, worded exactly as `homelab validate` words them."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class ProblemList(Static):
    """A short list of problems under the form; empty (and hidden) when there are none."""

    def show(self, lines: list[str], note: str = "") -> None:
        self.set_class(not lines and not note, "-empty")
        text = Text()
        for i, line in enumerate(lines):
            if i:
                text.append("\n")
            text.append("PROBLEM ", style="bold")
            text.append(line)
        if note:
            if lines:
                text.append("\n")
            text.append(note, style="italic")
        self.update(text)
