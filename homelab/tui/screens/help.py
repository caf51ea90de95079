"""Every key binding of every screen, collected from the screens themselves (never out of date)."""
from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from homelab.tui.keys import QUIT

_KEY_NAMES = {"question_mark": "?", "escape": "esc", "enter": "enter", "backspace": "backspace",
              "space": "space", "down": "↓", "up": "↑"}


def key_label(keys: str) -> str:
    return ", ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in keys.split(","))


def _binding(b: BindingType) -> Binding:
    return b if isinstance(b, Binding) else Binding(*b)


def help_rows(sections: Iterable[tuple[str, Iterable[type]]]) -> list[tuple[str, str, str]]:
    """(section, keys, what) for every binding of the given classes, in order, without repeats."""
    rows: list[tuple[str, str, str]] = []
    for title, classes in sections:
        seen: set[str] = set()
        for cls in classes:
            for b in map(_binding, getattr(cls, "BINDINGS", [])):
                if b.key in seen or b.system:
                    continue
                seen.add(b.key)
                rows.append((title, key_label(b.key), b.description or b.action))
    return rows


class HelpScreen(Screen[None]):
    BINDINGS = [Binding("escape,question_mark,f1", "app.pop_screen", "close help"), QUIT]

    def __init__(self, sections: list[tuple[str, list[type]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        yield Static("homelab — keys", id="title")
        text = Text()
        current = None
        for title, keys, what in help_rows(self.sections):
            if title != current:
                text.append(("\n" if current else "") + title + "\n", style="bold")
                current = title
            text.append(f"  {keys:<22}", style="cyan")
            text.append(f"{what}\n")
        with VerticalScroll(id="help-box"):
            yield Static(text, id="help-text")
        yield Footer()
