"""Pick one or more names from a list (the wizard's machines of an app): keys only.

space ticks or unticks the highlighted name, enter takes the ticked ones, esc changes nothing.
Names typed before that the list does not know stay offered (ticked), so picking never drops
what was typed; the config parser then says what is wrong with them.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, SelectionList, Static

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

    def __init__(self, title: str, known: tuple[tuple[str, str], ...], chosen: tuple[str, ...]) -> None:
        super().__init__()
        self.title_text = title
        self.options = pick_options(known, chosen)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            if self.options:
                yield SelectionList[str](*self.options, id="pick-list", compact=True)
            else:
                yield Static("No machine yet: give them in the machines step (ctrl+p), or type the names.",
                             id="pick-none")
            yield Static("space: tick or untick   enter: take them   esc: cancel", classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                # not focusable: enter is the list's "take them", wherever the focus is
                for label, id_, action in (("take them (enter)", "pick-done", "screen.done"),
                                           ("cancel (esc)", "pick-cancel", "screen.cancel")):
                    button = Button(label, id=id_, compact=True, action=action)
                    button.can_focus = False
                    yield button

    def action_done(self) -> None:
        lists = self.query(SelectionList)
        if not lists:
            self.dismiss(None)
            return
        ticked = set(lists.first().selected)  # in the order they were ticked: answer in list order
        self.dismiss(tuple(name for _, name, _ in self.options if name in ticked))

    def action_cancel(self) -> None:
        self.dismiss(None)
