"""Events the engine yields; the CLI prints them as lines, the TUI renders them as panes.

Past tense, frozen, no behaviour. A front end is `for event in engine.apply(): render(event)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from homelab.model import Change, LayerPlan, Monitor


@dataclass(frozen=True)
class RunStarted:
    command: str  # plan | apply | status | destroy
    layers: tuple[str, ...]
    hosts: tuple[str, ...]
    log_path: str = ""
    config_digest: str = ""  # which config this run read (a reviewed plan is for exactly that one)


@dataclass(frozen=True)
class HostConnected:
    host: str
    detail: str  # "debian 13 arm64, 0.08 s"


@dataclass(frozen=True)
class HostFailed:
    host: str
    layer: str
    error: str
    hint: str = ""


@dataclass(frozen=True)
class LayerStarted:
    layer: str
    number: int
    title: str


@dataclass(frozen=True)
class LayerPlanned:
    layer: str
    plan: LayerPlan


@dataclass(frozen=True)
class ChangeApplied:
    change: Change


@dataclass(frozen=True)
class ChangeFailed:
    change: Change
    error: str
    hint: str = ""


@dataclass(frozen=True)
class HostOutput:
    host: str
    layer: str
    line: str


@dataclass(frozen=True)
class Progress:
    layer: str
    message: str  # "waiting for server web-1 to answer SSH (12 s)"
    host: str = ""  # the host it is about, when one is waited for ("connect": it does not answer yet)


@dataclass(frozen=True)
class LayerStatus:
    layer: str
    monitors: tuple[Monitor, ...]


NOT_RUN = "cancelled: not run"  # LayerFinished.skipped_reason of each layer a cancel left out


@dataclass(frozen=True)
class LayerFinished:
    layer: str
    changed: int
    failed: int
    skipped_reason: str = ""  # "not in --layer", "nothing configured", "cancelled: not run"


@dataclass(frozen=True)
class HostSummary:
    host: str
    result: str  # ok | changed | failed | unreachable
    changes: int = 0
    error: str = ""


@dataclass(frozen=True)
class RunFinished:
    command: str
    ok: bool
    changes: int
    hosts: tuple[HostSummary, ...] = field(default_factory=tuple)
    log_path: str = ""
    message: str = ""
    cancelled: bool = False  # stopped on request: what ran is in `hosts`, the rest is marked "not run"


Event = Union[
    RunStarted,
    HostConnected,
    HostFailed,
    LayerStarted,
    LayerPlanned,
    ChangeApplied,
    ChangeFailed,
    HostOutput,
    Progress,
    LayerStatus,
    LayerFinished,
    RunFinished,
]
