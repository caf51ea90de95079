"""Drill-down of one layer: the pair matrix (mesh) when monitors are about pairs, every
monitor with its reason and time, and the hosts the last run saw."""
from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from homelab.tui.keys import BACK_KEYS, QUIT
from homelab.tui.present import layer_headline, layer_summary, pair_matrix
from homelab.tui.view_state import LayerView, RunView
from homelab.tui.widgets.mesh_matrix import MeshMatrix
from homelab.tui.widgets.monitor_table import MonitorTable, monitor_detail


def hosts_text(view: RunView) -> Text:
    text = Text()
    for i, h in enumerate(view.hosts):
        if i:
            text.append("\n")
        bad = h.state in ("failed", "unreachable")
        text.append(f"{h.name:<14}", style="bold")
        text.append(f"{h.state.upper() if bad else h.state:<12}", style="bold red" if bad else "")
        text.append(h.error if bad else h.detail)
    return text


class LayerDetailScreen(Screen[None]):
    BINDINGS = [
        Binding(f"{BACK_KEYS},backspace", "dismiss", "back"),
        Binding("r", "recheck", "re-check"),
        Binding("b", "app_action('rollback')", "rollback app"),
        Binding("s", "app_action('restart')", "restart app"),
        Binding("n", "storage_action('backup')", "backup now"),
        Binding("d", "storage_action('drill')", "restore drill"),
        Binding("l", "storage_action('list')", "snapshots"),
        Binding("question_mark", "app.help", "help"),
        QUIT,
    ]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Rollback and restart are for the apps layer's drill-down only, backup now and drill for
        storage's (the row's app)."""
        if action == "app_action":
            return self.layer_name == "apps"
        if action == "storage_action":
            return self.layer_name == "storage"
        return True

    def selected_app(self) -> str | None:
        row = self._highlighted_row()
        if row is None:
            return None
        subject = str(row[1])
        # "feeds.db", or "hello@pi-1.whoami" for one copy of an app on several machines
        return subject.split(".", 1)[0].split("@", 1)[0] or None

    def _highlighted_row(self) -> list[object] | None:
        """The monitor table's highlighted row (health, subject, name, ...), if it has rows."""
        table = self.query_one(MonitorTable)
        return list(table.get_row_at(table.cursor_row)) if table.row_count else None

    def _report(self, ok: bool, message: str, timeout: float) -> None:
        """From a worker thread: an action's result as a notice; a re-check when it worked."""
        self.app.call_from_thread(self.notify, message, severity="information" if ok else "error", timeout=timeout)
        if ok:
            self.app.call_from_thread(self.action_recheck)

    def selected_backup(self) -> tuple[str, str] | None:
        """(app, repository) of the highlighted storage row: an app's backup, drill and check rows
        are "APP->REPO" (append-only's "HOST->REPO" and free space's "HOST:PATH" are not an app's)."""
        row = self._highlighted_row()
        if row is None:
            return None
        app, arrow, repo = str(row[1]).partition("->")
        return (app, repo) if arrow and app and repo and str(row[2]) in ("backup", "drill", "check") else None

    def action_storage_action(self, what: str) -> None:
        target = self.selected_backup()
        config = getattr(self.app, "config_path", None)
        if target is None or config is None:
            self.notify("select an app's backup row first (APP->REPOSITORY)", severity="warning")
            return
        app_name, repo = target
        self.notify(f"{what} {app_name} -> {repo} ...", timeout=3)
        self.run_worker(lambda: self._run_storage_action(what, app_name, repo, config), thread=True, exclusive=True)

    def _run_storage_action(self, what: str, app_name: str, repo: str, config: object) -> None:
        from homelab.tui.app_actions import run_storage_action

        ok, message = run_storage_action(what, str(config), app_name, repo)
        if what == "list" and ok:  # the snapshots, one a line, where the highlighted row's detail goes
            self.app.call_from_thread(self.query_one("#monitor-detail", Static).update, message)
            return
        self._report(ok, message, timeout=12)

    def action_app_action(self, what: str) -> None:
        app_name = self.selected_app()
        config = getattr(self.app, "config_path", None)
        if app_name is None or config is None:
            self.notify("select an app's row first", severity="warning")
            return
        self.notify(f"{what} {app_name} ...", timeout=3)
        self.run_worker(lambda: self._run_app_action(what, app_name, config), thread=True, exclusive=True)

    def _run_app_action(self, what: str, app_name: str, config: object) -> None:
        # on a worker thread: the engine (paramiko) loads here, never on the UI thread
        from homelab.tui.app_actions import run_app_action

        ok, message = run_app_action(what, str(config), app_name)
        self._report(ok, message, timeout=8)

    def __init__(self, layer: LayerView, view: RunView) -> None:
        super().__init__()
        self.layer_name = layer.name
        self.layer_view = layer
        self.run_view = view

    def compose(self) -> ComposeResult:
        yield Static("", id="title")
        with VerticalScroll(id="detail"):
            yield Static("", id="detail-summary")
            yield Static("pairs (row → column):", id="matrix-label")
            yield MeshMatrix(id="matrix", cursor_type="none")
            yield MonitorTable(id="monitors")
            yield Static("", id="monitor-detail")
            yield Static("hosts:", classes="section-label")
            yield Static("", id="hosts")
        yield Footer()

    def on_mount(self) -> None:
        self.show_layer(self.layer_view, self.run_view)
        self.query_one(MonitorTable).focus()

    def show_layer(self, layer: LayerView, view: RunView) -> None:
        self.layer_view, self.run_view = layer, view
        self.query_one("#title", Static).update(f"homelab — {layer_headline(layer)}")
        self.query_one("#detail-summary", Static).update(f"{layer.health.value} · {layer_summary(layer)}")
        matrix = pair_matrix(layer.monitors)
        self.query_one("#matrix-label").display = matrix is not None
        grid = self.query_one(MeshMatrix)
        grid.display = matrix is not None
        if matrix is not None:
            grid.show(matrix)
        self.query_one(MonitorTable).show(layer.monitors)
        self._show_highlighted()
        self.query_one("#hosts", Static).update(hosts_text(view))

    @on(DataTable.RowHighlighted, "#monitors")
    def _show_highlighted(self) -> None:
        """The highlighted monitor in full, wrapped: a long reason is read here, never cut."""
        m = self.query_one(MonitorTable).highlighted()
        self.query_one("#monitor-detail", Static).update(monitor_detail(m) if m else "")

    def action_recheck(self) -> None:
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        recheck = getattr(below, "action_recheck", None)
        if recheck is not None:
            recheck()
