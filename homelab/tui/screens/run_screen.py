"""A screen that shows engine runs: it owns a runner and a RunView, widgets get the view.

Every batch of events is folded into the view at once (cheap, pure); the widgets are
redrawn at most every REDRAW_SECONDS, so a host printing thousands of lines costs a few
redraws per second, not one per line.
"""
from __future__ import annotations

import time

from textual import on
from textual.screen import Screen

from homelab.tui.run_worker import EngineRunner, EventsPending
from homelab.tui.sources import EventSource, RunRequest
from homelab.tui.view_state import RunView, reduce_all


REDRAW_SECONDS = 0.05


class RunScreen(Screen[None]):
    def __init__(self, source: EventSource) -> None:
        super().__init__()
        self.source = source
        self.runner = EngineRunner(self, source)
        self.view = RunView()
        self._drawn_at = 0.0
        self._redraw_pending = False

    @property
    def redraw_pending(self) -> bool:
        """The view has news the widgets do not show yet (the next redraw is on a timer)."""
        return self._redraw_pending

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
        if self._redraw_pending:
            return
        wait = self._drawn_at + REDRAW_SECONDS - time.monotonic()
        if wait > 0:
            self._redraw_pending = True
            self.set_timer(wait, self._redraw)
        else:
            self._redraw()

    def _redraw(self) -> None:
        self._redraw_pending = False
        self._drawn_at = time.monotonic()
        self.show_view(self.view)

    def show_view(self, view: RunView) -> None:
        """Hand the new view to the widgets (subclasses)."""

    def on_unmount(self) -> None:
        self.runner.cancel()  # a screen that goes away stops its run
