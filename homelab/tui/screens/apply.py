"""Apply in progress: per layer and per host, output streaming, failures with error and hint."""
from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Static

from homelab.events import NOT_RUN
from homelab.tui.keys import BACK_KEYS
from homelab.tui.present import append_failure, plural
from homelab.tui.screens.confirm_apply import ApplyChoice
from homelab.tui.screens.run_screen import RunScreen
from homelab.tui.sources import EventSource
from homelab.tui.view_state import RunView
from homelab.tui.widgets.host_table import HostTable
from homelab.tui.widgets.layer_progress import LayerProgress
from homelab.tui.widgets.run_log import RunLog


def apply_status(view: RunView) -> Text:
    text = Text()
    if view.crashed is not None:
        return append_failure(text, "apply FAILED", view.crashed.message, view.crashed.hint)
    if view.running:
        if view.cancelling:
            text.append("cancelling… (stops after the current step)", style="bold yellow")
        else:
            current = view.layer(view.current_layer)
            where = f" layer {current.label.strip()}" if current else ""
            text.append(f"applying…{where}", style="bold")
            text.append(" · c: cancel", style="dim")
        return text
    fin = view.finished
    if fin is None:
        text.append("starting…")
        return text
    if fin.cancelled:
        not_run = [lv.name for lv in view.layers if lv.skipped_reason == NOT_RUN]
        text.append(f"apply cancelled: {plural(fin.changes, 'change')} done", style="bold yellow")
        if not_run:
            text.append(f" · not run: {', '.join(not_run)}")
    elif fin.ok:
        text.append(f"apply ok: {plural(fin.changes, 'change')}", style="bold green")
    else:
        text.append(f"apply FAILED: {plural(len(view.failures), 'failure')}, {plural(fin.changes, 'change')} done",
                    style="bold red")
        if view.failures:
            first = view.failures[0]
            append_failure(text, first.subject, first.error, first.hint, lead=" — ")
    text.append(" · d: dashboard", style="dim")
    return text


class ApplyScreen(RunScreen):
    BINDINGS = [
        Binding("c", "cancel_run", "cancel"),
        Binding(f"d,{BACK_KEYS}", "done", "dashboard"),
        Binding("question_mark", "app.help", "help"),
        Binding("q", "quit_when_done", "quit"),
    ]

    def __init__(self, source: EventSource, config_path: Path, choice: ApplyChoice) -> None:
        super().__init__(source)
        self.config_path = config_path
        self.choice = choice

    def compose(self) -> ComposeResult:
        yield Static(f"homelab — {self.config_path} — apply", id="title")
        yield Static("", id="apply-status")
        yield LayerProgress(id="layer-progress")
        yield HostTable(id="hosts")
        yield RunLog(id="run-log")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(HostTable).focus()
        self.start_run(self.request("apply", accept_new_host_keys=self.choice.accept_new_host_keys,
                                    confirm_destructive=self.choice.confirm_destructive,
                                    reviewed=(self.choice.plans, self.choice.config_digest)))

    def show_view(self, view: RunView) -> None:
        self.query_one("#apply-status", Static).update(apply_status(view))
        self.query_one(LayerProgress).show(view)
        self.query_one(HostTable).show(view)
        self.query_one(RunLog).show(view)

    def action_cancel_run(self) -> None:
        if self.view.running:
            self.runner.cancel()

    def action_done(self) -> None:
        if self.view.running:
            self.notify("apply is running: c cancels it", severity="warning", timeout=3)
            return
        self.app.pop_screen()

    def action_quit_when_done(self) -> None:
        """q quits here too, but never cuts an apply short by accident (ctrl+q still does)."""
        if self.view.running:
            self.notify("apply is running: c cancels it, ctrl+q quits anyway", severity="warning", timeout=3)
            return
        self.app.exit()

    @on(DataTable.RowSelected, "#hosts")
    def _host_selected(self, event: DataTable.RowSelected) -> None:
        log = self.query_one(RunLog)
        host = str(event.row_key.value)
        log.show_host(self.view, None if log.host_filter == host else host)
