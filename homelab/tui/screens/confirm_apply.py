"""Confirm before apply: the counts, and the explicit choices apply may not assume."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static

from homelab.tui.present import plural
from homelab.tui.widgets.tick_box import TickBox


@dataclass(frozen=True)
class ApplyChoice:
    accept_new_host_keys: bool = False  # pin keys of machines first seen during apply (new servers)
    confirm_destructive: bool = False
    plans: tuple[Any, ...] = ()  # the LayerPlans reviewed on screen: apply runs exactly these
    config_digest: str = ""


class ConfirmApplyScreen(ModalScreen[ApplyChoice | None]):
    BINDINGS = [
        Binding("y", "apply", "apply"),
        Binding("n,escape", "cancel", "cancel"),
    ]

    def __init__(self, changes: int, layers: int, hosts: int, destructive: int) -> None:
        super().__init__()
        self.changes, self.layer_count, self.hosts, self.destructive = changes, layers, hosts, destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"Apply {plural(self.changes, 'change')} in {plural(self.layer_count, 'layer')} "
                         f"on {plural(self.hosts, 'host')}?", classes="dialog-title")
            yield TickBox("pin new host keys without asking", False, id="accept-keys", compact=True)
            yield Static("Machines never seen before (e.g. servers this apply creates) offer host keys. "
                         "Unticked: you are asked for each one.", classes="dialog-note")
            if self.destructive:
                yield TickBox(f"also carry out {plural(self.destructive, 'delete')}", False,
                              id="confirm-deletes", compact=True)
                yield Static("Unticked: deletes are skipped and reported.", classes="dialog-note")
            with Horizontal(classes="dialog-buttons"):
                yield Button("apply (y)", id="apply", variant="primary", compact=True, action="screen.apply")
                yield Button("cancel (n)", id="cancel", compact=True, action="screen.cancel")

    def on_mount(self) -> None:
        self.query_one("#apply", Button).focus()

    def action_apply(self) -> None:
        deletes = self.query("#confirm-deletes")
        self.dismiss(ApplyChoice(
            accept_new_host_keys=self.query_one("#accept-keys", Checkbox).value,
            confirm_destructive=bool(deletes) and deletes.first(Checkbox).value,
        ))

    def action_cancel(self) -> None:
        self.dismiss(None)
