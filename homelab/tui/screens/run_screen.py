"""A screen that shows engine runs: it owns a runner and a RunView, widgets get the view."""
from __future__ import annotations

from textual import on
from textual.screen import Screen

from homelab.tui.run_worker import EngineRunner, EventsPending
from homelab.tui.sources import EventSource, RunRequest
from homelab.tui.view_state import RunView, reduce_all


class RunScreen(Screen[None]):
    def __init__(self, source: EventSource) -> None:
        super().__init__()
        self.source = source
        self.runner = EngineRunner(self, source)
        self.view = RunView()

    def start_run(self, request: RunRequest) -> bool:
        return self.runner.start(request)

    def request(self, command: str, **options: object) -> RunRequest:
        """A request whose unknown host keys are asked about on screen (never accepted silently)."""
        ask = getattr(self.app, "ask_host_key", None)
        return RunRequest(command, ask_host_key=ask, **options)  # type: ignore[arg-type]

    @on(EventsPending)
    def _events(self, message: EventsPending) -> None:
        events = self.runner.drain()
        if not events:
            return
        self.view = reduce_all(self.view, events)
        self.show_view(self.view)

    def show_view(self, view: RunView) -> None:
        """Hand the new view to the widgets (subclasses)."""

    def on_unmount(self) -> None:
        self.runner.cancel()  # a screen that goes away stops its run
