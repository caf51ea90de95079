"""Pick names from a list (the wizard's machines of a field): keys only.

`PickNamesScreen` (a field of one or more names): space ticks or unticks the highlighted name,
enter takes the ticked ones. `PickOneScreen` (a field of exactly one name): no ticks, so two
can never be chosen; enter or space takes the highlighted name, which starts on the one typed.
esc changes nothing in either. Names typed before that the list does not know stay offered,
so picking never drops what was typed; the config parser then says what is wrong with them.
"""
from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, OptionList, SelectionList, Static

from homelab.tui.keys import back


def pick_options(known: tuple[tuple[str, str], ...], chosen: tuple[str, ...]) -> list[tuple[str, str, bool]]:
    """(label, name, ticked) in the list's order, then typed names the list does not know. Pure."""
    names = {n for _, n in known}
    out = [(label, name, name in chosen) for label, name in known]
    out += [(f"{name}  (not in the machines step)", name, True) for name in chosen if name not in names]
    return out


class PickNamesScreen(ModalScreen["tuple[str, ...] | None"]):
    """Answers the ticked names in list order, or None when cancelled."""

    BINDINGS = [
        # priority: enter takes the choice; the list's own enter would only tick (space does that)
        Binding("enter", "done", "take the ticked names", priority=True),
        back("cancel", "cancel"),
    ]
    NOTE: ClassVar[str] = "space: tick or untick   enter: take them   esc: cancel"
    DONE: ClassVar[str] = "take them (enter)"

    def __init__(self, title: str, known: tuple[tuple[str, str], ...], chosen: tuple[str, ...]) -> None:
        super().__init__()
        self.title_text = title
        self.options = pick_options(known, chosen)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            if self.options:
                yield self.pick_list()
            else:
                yield Static("No machine yet: give them in the machines step (ctrl+p), or type the names.",
                             id="pick-none")
            yield Static(self.NOTE, classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                # not focusable: enter is the list's "take them", wherever the focus is
                for label, id_, action in ((self.DONE, "pick-done", "screen.done"),
                                           ("cancel (esc)", "pick-cancel", "screen.cancel")):
                    button = Button(label, id=id_, compact=True, action=action)
                    button.can_focus = False
                    yield button

    def pick_list(self) -> Widget:
        return SelectionList[str](*self.options, id="pick-list", compact=True)

    def picked(self) -> tuple[str, ...]:
        ticked = set(self.query_one(SelectionList).selected)  # in the order they were ticked
        return tuple(name for _, name, _ in self.options if name in ticked)

    def action_done(self) -> None:
        self.dismiss(self.picked() if self.options else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PickOneScreen(PickNamesScreen):
    """Answers the highlighted name alone, or None when cancelled."""

    BINDINGS = [Binding("space", "done", "take this name")]  # besides enter and esc
    NOTE = "↑↓: move   enter or space: take this one   esc: cancel"
    DONE = "take it (enter)"

    def pick_list(self) -> Widget:
        names = OptionList(*(label for label, _, _ in self.options), id="pick-list", markup=False, compact=True)
        # start on the name typed (the first, if several were typed where one belongs)
        names.highlighted = next((i for i, (_, _, typed) in enumerate(self.options) if typed), 0)
        return names

    def picked(self) -> tuple[str, ...]:
        at = self.query_one(OptionList).highlighted
        return () if at is None else (self.options[at][1],)
