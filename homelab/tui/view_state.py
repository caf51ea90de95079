"""What the screens show, derived from engine events by a pure `reduce(view, event) -> view`.

Widgets never interpret events themselves: a screen folds every event it receives into a
frozen `RunView` and hands the parts to its widgets as attributes. That keeps all the
"what does this event mean for the display" decisions here, testable without a terminal.

Besides the engine's events, three TUI events exist: `LayersKnown` (the layer catalog, so
panes exist before the first status arrives), `RunCrashed` (the run raised instead of
finishing) and `CancelRequested` (the person pressed cancel; the engine stops at the next
safe point).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import reduce as _fold
from typing import Any, Iterable, Union

from homelab.events import (
    ChangeApplied, ChangeFailed, Event, HostConnected, HostFailed, HostOutput, LayerFinished,
    LayerPlanned, LayerStarted, LayerStatus, Progress, RunFinished, RunStarted,
)
from homelab.model import Health, LayerPlan, Monitor, worst

MAX_HOST_LINES = 200  # output lines kept per host (older ones are in the run log)
MAX_LOG_LINES = 500  # lines kept in the combined run log pane


@dataclass(frozen=True)
class LayerInfo:
    """A layer as the model numbers it (-1 billing ... 7 integration)."""

    name: str
    number: int
    title: str


@dataclass(frozen=True)
class LayersKnown:
    """The built layers, in display order (sent before a run so panes exist at once)."""

    layers: tuple[LayerInfo, ...]


@dataclass(frozen=True)
class RunCrashed:
    """The run raised instead of yielding RunFinished (bad config, lock held, a bug)."""

    message: str
    hint: str = ""


@dataclass(frozen=True)
class CancelRequested:
    """The person asked to cancel; the engine stops between layers / operations."""


TuiEvent = Union[Event, LayersKnown, RunCrashed, CancelRequested]

# Layer states, in words (shown as they are)
WAITING, RUNNING, DONE, FAILED, SKIPPED = "waiting", "running", "done", "failed", "skipped"
# Host states
CONNECTED, WORKING, CHANGED, OK, UNREACHABLE = "connected", "working", "changed", "ok", "unreachable"
NO_ANSWER = "no answer"  # a host met before that is being tried again (rebooting?)


@dataclass(frozen=True)
class Failure:
    """Something that went wrong, with what to do about it."""

    layer: str
    subject: str  # host name, change target or "run"
    error: str
    hint: str = ""
    summary: str = ""  # the change that failed, if any


@dataclass(frozen=True)
class LayerView:
    name: str
    number: int | None = None  # None until the catalog or LayerStarted says
    title: str = ""
    state: str = WAITING
    plan: LayerPlan | None = None
    applied: int = 0
    failed: int = 0
    skipped_reason: str = ""
    monitors: tuple[Monitor, ...] = ()

    @property
    def planned(self) -> int:
        return len(self.plan.changes) if self.plan else 0

    @property
    def health(self) -> Health:
        return worst([m.health for m in self.monitors])

    @property
    def checked_at(self) -> float | None:
        return max((m.checked_at for m in self.monitors), default=None)

    @property
    def label(self) -> str:
        num = "?" if self.number is None else str(self.number)
        return f"{num:>2} {self.name}"


@dataclass(frozen=True)
class HostView:
    name: str
    state: str = WAITING
    detail: str = ""  # "admin@10.0.0.2:22, 0.08 s"
    layer: str = ""  # layer whose output came last
    output: tuple[str, ...] = ()
    applied: int = 0
    error: str = ""
    hint: str = ""

    @property
    def last_line(self) -> str:
        return self.output[-1] if self.output else ""


@dataclass(frozen=True)
class RunView:
    command: str = ""
    running: bool = False
    cancelling: bool = False
    runs: int = 0  # how many runs started (a screen can tell a fresh run)
    current_layer: str = ""
    layers: tuple[LayerView, ...] = ()
    hosts: tuple[HostView, ...] = ()
    log: tuple[str, ...] = ()
    log_count: int = 0  # lines ever logged this run (the log pane appends only the new ones)
    failures: tuple[Failure, ...] = ()
    progress: str = ""
    finished: RunFinished | None = None
    crashed: RunCrashed | None = None
    config_digest: str = ""  # of the config this run read

    def layer(self, name: str) -> LayerView | None:
        return next((lv for lv in self.layers if lv.name == name), None)

    def host(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    @property
    def planned(self) -> int:
        return sum(lv.planned for lv in self.layers)

    @property
    def blocked(self) -> tuple[str, ...]:
        return tuple(b for lv in self.layers if lv.plan for b in lv.plan.blocked)

    @property
    def destructive(self) -> int:
        return sum(1 for lv in self.layers if lv.plan for c in lv.plan.changes if c.destructive)

    @property
    def checked_at(self) -> float | None:
        """When the newest monitor was checked (the engine's clock, not ours)."""
        return max((t for lv in self.layers if (t := lv.checked_at) is not None), default=None)

    @property
    def ok(self) -> bool:
        return self.finished is not None and self.finished.ok and self.crashed is None


# ------------------------------------------------------------------ helpers --
def _order(layers: Iterable[LayerView]) -> tuple[LayerView, ...]:
    """Display order: by layer number; unknown numbers last, in arrival order."""
    indexed = list(enumerate(layers))
    indexed.sort(key=lambda p: (p[1].number is None, p[1].number if p[1].number is not None else 0, p[0]))
    return tuple(lv for _, lv in indexed)


def _with_layer(view: RunView, name: str, **changes: Any) -> RunView:
    found = False
    out = []
    for lv in view.layers:
        if lv.name == name:
            lv = dataclasses.replace(lv, **changes)
            found = True
        out.append(lv)
    if not found:
        out.append(dataclasses.replace(LayerView(name), **changes))
    return dataclasses.replace(view, layers=_order(out))


def _counts(view: RunView, name: str) -> LayerView:
    return view.layer(name) or LayerView(name)


def _with_host(view: RunView, name: str, fn: Any) -> RunView:
    hosts = list(view.hosts)
    for i, h in enumerate(hosts):
        if h.name == name:
            hosts[i] = fn(h)
            return dataclasses.replace(view, hosts=tuple(hosts))
    return dataclasses.replace(view, hosts=(*hosts, fn(HostView(name))))


def _log(view: RunView, *lines: str) -> RunView:
    return dataclasses.replace(view, log=(*view.log, *lines)[-MAX_LOG_LINES:], log_count=view.log_count + len(lines))


def _fail(view: RunView, failure: Failure) -> RunView:
    return dataclasses.replace(view, failures=(*view.failures, failure))


# ------------------------------------------------------------------- reduce --
def reduce(view: RunView, event: TuiEvent) -> RunView:
    """The view after `event`. Pure: no I/O, no clock, no widgets."""
    if isinstance(event, LayersKnown):
        for info in event.layers:
            view = _with_layer(view, info.name, number=info.number, title=info.title)
        return view
    if isinstance(event, RunStarted):
        # a new run: per-run facts reset; monitors stay until fresh ones arrive (live refresh)
        layers = [dataclasses.replace(lv, state=WAITING, plan=None, applied=0, failed=0, skipped_reason="")
                  for lv in view.layers]
        known = {lv.name for lv in layers}
        layers += [LayerView(name) for name in event.layers if name not in known]
        return dataclasses.replace(
            view, command=event.command, running=True, cancelling=False, runs=view.runs + 1, current_layer="",
            layers=_order(layers), hosts=tuple(HostView(h) for h in event.hosts), log=(), log_count=0, failures=(),
            progress="", finished=None, crashed=None, config_digest=event.config_digest)
    if isinstance(event, HostConnected):
        return _with_host(view, event.host, lambda h: dataclasses.replace(h, state=CONNECTED, detail=event.detail))
    if isinstance(event, HostFailed):
        state = UNREACHABLE if event.layer == "connect" else FAILED
        view = _with_host(view, event.host, lambda h: dataclasses.replace(
            h, state=state, error=event.error, hint=event.hint))
        view = _fail(view, Failure(event.layer, event.host, event.error, event.hint))
        return _log(view, f"FAILED {event.host} [{event.layer}]: {event.error}",
                    *([f"  hint: {event.hint}"] if event.hint else []))
    if isinstance(event, LayerStarted):
        view = _with_layer(view, event.layer, number=event.number, title=event.title, state=RUNNING)
        return dataclasses.replace(view, current_layer=event.layer)
    if isinstance(event, LayerPlanned):
        return _with_layer(view, event.layer, plan=event.plan)
    if isinstance(event, ChangeApplied):
        change = event.change
        view = _with_layer(view, change.layer, applied=_counts(view, change.layer).applied + 1)
        if change.host:
            view = _with_host(view, change.host, lambda h: dataclasses.replace(
                h, state=h.state if h.state == FAILED else CHANGED, applied=h.applied + 1))
        return _log(view, f"done  {change.target}: {change.summary}")
    if isinstance(event, ChangeFailed):
        change = event.change
        view = _with_layer(view, change.layer, failed=_counts(view, change.layer).failed + 1)
        if change.host:
            view = _with_host(view, change.host, lambda h: dataclasses.replace(
                h, state=FAILED, error=h.error or event.error, hint=h.hint or event.hint))
        view = _fail(view, Failure(change.layer, change.target, event.error, event.hint, change.summary))
        return _log(view, f"FAILED {change.target}: {change.summary}: {event.error}",
                    *([f"  hint: {event.hint}"] if event.hint else []))
    if isinstance(event, HostOutput):
        def add(h: HostView) -> HostView:
            state = h.state if h.state in (FAILED, UNREACHABLE, CHANGED) else WORKING
            return dataclasses.replace(h, state=state, layer=event.layer,
                                       output=(*h.output, event.line)[-MAX_HOST_LINES:])
        return _log(_with_host(view, event.host, add), f"[{event.host}] {event.line}")
    if isinstance(event, Progress):
        view = _log(dataclasses.replace(view, progress=event.message), f"... {event.message}")
        if event.host:
            view = _with_host(view, event.host, lambda h: dataclasses.replace(
                h, state=NO_ANSWER, output=(*h.output, event.message)[-MAX_HOST_LINES:]))
        return view
    if isinstance(event, LayerStatus):
        return _with_layer(view, event.layer, monitors=event.monitors)
    if isinstance(event, LayerFinished):
        state = SKIPPED if event.skipped_reason else (FAILED if event.failed else DONE)
        return _with_layer(view, event.layer, state=state, applied=event.changed, failed=event.failed,
                           skipped_reason=event.skipped_reason)
    if isinstance(event, RunFinished):
        for summary in event.hosts:
            view = _with_host(view, summary.host, lambda h, s=summary: dataclasses.replace(
                h, state=s.result, applied=max(h.applied, s.changes), error=s.error or h.error))
        return dataclasses.replace(view, running=False, cancelling=False, finished=event, current_layer="")
    if isinstance(event, RunCrashed):
        view = _fail(view, Failure("run", "run", event.message, event.hint))
        return dataclasses.replace(view, running=False, cancelling=False, crashed=event, current_layer="")
    if isinstance(event, CancelRequested):
        return dataclasses.replace(view, cancelling=view.running)
    return view  # an event this front end does not show (newer engine): ignore, never crash


def reduce_all(view: RunView, events: Iterable[TuiEvent]) -> RunView:
    """Fold a batch of events (the TUI coalesces floods into batches)."""
    return _fold(reduce, events, view)
