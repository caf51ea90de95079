"""Asked when a machine offers a host key homelab has never seen: pin it, or refuse."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class HostKeyScreen(ModalScreen[bool]):
    AUTO_FOCUS = ""  # no button has focus: a stray enter (or esc) answers nothing; y, n or a click does
    BINDINGS = [
        Binding("y", "pin", "pin the key"),
        Binding("n", "refuse", "refuse"),  # never esc: closing things is a reflex, this is a security answer
    ]

    def __init__(self, host: str, address: str, fingerprint: str) -> None:
        super().__init__()
        self.host, self.address, self.fingerprint = host, address, fingerprint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"New machine: {self.host} ({self.address})", classes="dialog-title")
            yield Static(f"It offers the host key\n  {self.fingerprint}\nhomelab has never seen it. If it matches "
                         "the machine's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), pin it: "
                         "every later connection must then show this key.")
            with Horizontal(classes="dialog-buttons"):
                yield Button("pin (y)", id="pin", variant="primary", compact=True, action="screen.pin")
                yield Button("refuse (n)", id="refuse", compact=True, action="screen.refuse")

    def action_pin(self) -> None:
        self.dismiss(True)

    def action_refuse(self) -> None:
        self.dismiss(False)
