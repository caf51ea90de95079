"""A replayable event source: recorded engine events instead of the engine (tests, demos).

Recordings may contain two markers besides events: `AskHostKey` (the source asks the TUI
about a new host key, as the engine does through RunOptions.confirm_new_host_key) and
`Gate` (wait until the test opens it, to look at the screen mid-run).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from homelab.events import NOT_RUN, HostFailed, LayerFinished, LayerStarted, RunFinished, RunStarted
from homelab.tui.sources import RunRequest
from homelab.tui.view_state import LayerInfo


@dataclass(frozen=True)
class AskHostKey:
    host: str
    address: str
    fingerprint: str


@dataclass(frozen=True)
class Gate:
    opened: threading.Event = field(default_factory=threading.Event, compare=False)

    def open(self) -> None:
        self.opened.set()


class ReplayRun:
    def __init__(self, events: Sequence[Any], request: RunRequest, delay: float) -> None:
        self.events = events
        self.request = request
        self.delay = delay
        self.cancelled = threading.Event()
        self.answers: list[tuple[str, bool]] = []

    def __iter__(self) -> Iterator[Any]:
        layers: tuple[str, ...] = ()
        started: set[str] = set()
        for ev in self.events:
            if self.cancelled.is_set():  # as the engine ends a cancelled run: the rest marked, then finished
                for name in layers:
                    if name not in started:
                        yield LayerFinished(name, 0, 0, NOT_RUN)
                yield RunFinished(self.request.command, False, 0, message="cancelled", cancelled=True)
                return
            if isinstance(ev, RunStarted):
                layers = ev.layers
            elif isinstance(ev, LayerStarted):
                started.add(ev.layer)
            if isinstance(ev, Gate):
                while not ev.opened.wait(0.02):
                    if self.cancelled.is_set():
                        break
                continue
            if isinstance(ev, AskHostKey):
                ok = self.request.accept_new_host_keys or (
                    self.request.ask_host_key is not None
                    and self.request.ask_host_key(ev.host, ev.address, ev.fingerprint))
                self.answers.append((ev.host, ok))
                if not ok:
                    yield HostFailed(ev.host, "connect", f"{ev.host}: unknown host key refused",
                                     "pin it when asked, or --accept-new-host-keys")
                continue
            yield ev
            if self.delay:
                time.sleep(self.delay)

    def cancel(self) -> None:
        self.cancelled.set()


class ReplaySource:
    """Plays `recordings[command]`; remembers every request and run (tests assert on them).

    A recording is a list of events, or a list of such lists: run n of a command plays the
    n-th (the last one again once they run out) — e.g. two different status checks.
    """

    def __init__(self, recordings: Mapping[str, Sequence[Any]], layers: tuple[LayerInfo, ...],
                 delay: float = 0.0) -> None:
        self.recordings = recordings
        self._layers = layers
        self.delay = delay
        self.requests: list[RunRequest] = []
        self.runs: list[ReplayRun] = []

    def layers(self) -> tuple[LayerInfo, ...]:
        return self._layers

    def start(self, request: RunRequest) -> ReplayRun:
        self.requests.append(request)
        recording = list(self.recordings.get(request.command, ()))
        if recording and isinstance(recording[0], list):
            done = sum(1 for r in self.requests[:-1] if r.command == request.command)
            recording = recording[min(done, len(recording) - 1)]
        run = ReplayRun(recording, request, self.delay)
        self.runs.append(run)
        return run

    def commands(self) -> list[str]:
        return [r.command for r in self.requests]
