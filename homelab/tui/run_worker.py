"""Runs one engine command off the UI thread and hands its events to a screen in batches.

A Textual thread worker iterates the source's events and appends them to a queue, posting
an `EventsPending` message each time (`post_message` is thread-safe). Pending messages of
the same run replace each other in the screen's message queue (`can_replace`, as toolong
does for file updates), so a flood of output lines becomes one handler call that drains the
whole queue, folds it through `reduce` and redraws once.
"""
from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections import deque
from typing import Any

from textual.message import Message
from textual.widget import Widget

from homelab.errors import ConfigError, HomelabError
from homelab.events import RunFinished
from homelab.tui.sources import EventRun, EventSource, RunRequest
from homelab.tui.view_state import CancelRequested, LayersKnown, RunCrashed

log = logging.getLogger("homelab")
_run_ids = itertools.count(1)


class EventsPending(Message):
    """Events of run `run_id` are waiting in the runner's queue."""

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsPending) and message.run_id == self.run_id


class EngineRunner:
    """One run at a time for its owner (a screen); `drain()` from the owner's message handler."""

    def __init__(self, owner: Widget, source: EventSource) -> None:
        self.owner = owner
        self.source = source
        self.run_id = 0
        self._run: EventRun | None = None
        self._queue: deque[Any] = deque()
        self._active = threading.Event()

    @property
    def running(self) -> bool:
        return self._active.is_set()

    def start(self, request: RunRequest) -> bool:
        """Start `request` unless a run is active; False if one is (the caller may say so)."""
        if self._active.is_set():
            return False
        self._active.set()
        self.run_id = next(_run_ids)
        run = self.source.start(request)
        self._run = run
        self.owner.run_worker(lambda: self._pump(run, self.run_id), thread=True,
                              group=f"engine-{id(self)}", exit_on_error=False, name=request.command)
        return True

    def cancel(self) -> None:
        run = self._run
        if run is not None and self._active.is_set():
            self._queue.append(CancelRequested())
            self.owner.post_message(EventsPending(self.run_id))
            run.cancel()

    def drain(self) -> list[Any]:
        """Everything queued so far (events of older runs were already drained)."""
        out: list[Any] = []
        while self._queue:
            out.append(self._queue.popleft())
        return out

    # ----------------------------------------------------------- worker thread --
    def _emit(self, run_id: int, event: Any) -> None:
        self._queue.append(event)
        self.owner.post_message(EventsPending(run_id))

    def _pump(self, run: EventRun, run_id: int) -> None:
        finished = False
        try:
            self._emit(run_id, LayersKnown(self.source.layers()))  # panes before the first result
            for event in run:
                finished = finished or isinstance(event, RunFinished)
                self._emit(run_id, event)
            if not finished:  # e.g. cancelled before the engine started
                self._queue.append(RunCrashed("the run stopped before it finished", "start it again"))
        except ConfigError as exc:
            self._emit(run_id, RunCrashed(exc.render(), exc.hint))
        except HomelabError as exc:
            self._emit(run_id, RunCrashed(exc.message, exc.hint))
        except Exception as exc:  # the top of this thread: show one line, keep the traceback in the log
            log.error("TUI run failed\n%s", traceback.format_exc())
            self._emit(run_id, RunCrashed(f"unexpected {type(exc).__name__}: {exc}",
                                          "this is a bug in homelab; the run log has the traceback"))
        finally:
            self._run = None
            self._active.clear()
            self.owner.post_message(EventsPending(run_id))
