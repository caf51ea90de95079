"""Output lines of a run, streamed; failures stand out by word (FAILED, hint) and by style."""
from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from homelab.tui.view_state import RunView


def styled(line: str) -> Text:
    if line.startswith("FAILED"):
        return Text(line, style="bold red")
    if line.startswith("  hint:"):
        return Text(line, style="yellow")
    if line.startswith("done "):
        return Text(line, style="green")
    if line.startswith("..."):
        return Text(line, style="dim")
    return Text(line)


class RunLog(RichLog):
    """Appends only what is new since the last `show` (the view keeps a bounded window)."""

    def __init__(self, **kwargs: object) -> None:
        # wrap: a long output line (an error from a host) is read whole, at any width
        super().__init__(max_lines=2000, wrap=True, markup=False, **kwargs)  # type: ignore[arg-type]
        self._run = -1
        self._count = 0
        self.host_filter: str | None = None
        self._host_lines: tuple[str, ...] = ()

    def show(self, view: RunView) -> None:
        if self.host_filter is not None:  # one host's lines: redraw them when they change
            host = view.host(self.host_filter)
            if host is not None and host.output != self._host_lines:
                self.show_host(view, self.host_filter)
            return
        if view.runs != self._run:
            self.clear()
            self._run, self._count = view.runs, 0
        new = view.log_count - self._count
        if new > 0:
            for line in view.log[-min(new, len(view.log)):]:
                self.write(styled(line))
            self._count = view.log_count

    def show_host(self, view: RunView, host: str | None) -> None:
        """Only `host`'s output (None: everything again)."""
        self.host_filter = host
        self.clear()
        self._count = 0
        if host is None:
            self._run = -1
            self.show(view)
            return
        hv = view.host(host)
        self._host_lines = hv.output if hv else ()
        self.write(Text(f"output of {host} (enter again: all hosts)", style="bold"))
        for line in self._host_lines:
            self.write(styled(line))
