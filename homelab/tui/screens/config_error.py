"""A config that does not validate: every problem, worded exactly as `homelab validate` does."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from homelab.tui.keys import QUIT


class ConfigErrorScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "reload", "read it again"),
        QUIT,
        Binding("question_mark", "app.help", "help"),
    ]

    def __init__(self, path: Path, lines: list[str], hint: str = "") -> None:
        super().__init__()
        self.path, self.lines, self.hint = path, lines, hint

    def compose(self) -> ComposeResult:
        yield Static(f"homelab — {self.path} has problems", id="title")
        text = Text()
        for line in self.lines:
            text.append(line + "\n")
        if self.hint:
            text.append(f"\nhint: {self.hint}", style="yellow")
        text.append("\nFix them in your editor, then press r. `homelab validate` prints the same list.",
                    style="dim")
        with VerticalScroll(id="problems-box"):
            yield Static(text, id="config-problems")
        yield Footer()

    def action_reload(self) -> None:
        self.app.open_config(self.path)  # type: ignore[attr-defined]
