"""The keys that mean the same on every screen: `q` quits (ctrl+q too, even while typing),
`esc` goes back one screen. Screens take these instead of each spelling its own.

Two exceptions, on purpose: the wizard's fields take typed text, so there `q` is a letter
(ctrl+q quits); and the new-host-key dialog takes only an explicit y or n — esc, the reflex
that closes things, must never answer a security question.
"""
from __future__ import annotations

from textual.binding import Binding

QUIT = Binding("q", "app.quit", "quit")
BACK_KEYS = "escape"


def back(action: str = "back", description: str = "back") -> Binding:
    return Binding(BACK_KEYS, action, description)
