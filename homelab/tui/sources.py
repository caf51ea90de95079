"""Where the TUI's events come from: the real engine, or anything that yields the same events.

The app takes an `EventSource`, so tests (and demos) feed it recorded events instead of
running the engine. `EngineSource` imports the engine — and with it paramiko and pyinfra —
only inside `run`, which the TUI calls on a worker thread: importing the TUI stays light and
the first screen paints before any of that is loaded.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from homelab.tui.view_state import LayerInfo

# (host, address, fingerprint) -> pin this never-seen host key?
AskHostKey = Callable[[str, str, str], bool]


@dataclass(frozen=True)
class RunRequest:
    command: str  # plan | apply | status
    accept_new_host_keys: bool = False  # from the confirm screen's checkbox; never implied
    confirm_destructive: bool = False  # deletes of servers, ticked separately
    ask_host_key: AskHostKey | None = None  # prompt for each unknown key (None: refuse them)
    reviewed: tuple[Any, str] | None = None  # apply: (the LayerPlans shown, the config digest they are for)


class EventRun(Protocol):
    """One engine command in progress: iterate for events (on a worker thread), cancel from any thread."""

    def __iter__(self) -> Iterator[Any]: ...

    def cancel(self) -> None: ...


class EventSource(Protocol):
    def layers(self) -> tuple[LayerInfo, ...]:
        """The built layers in display order (cheap: the dashboard reads it to lay out its first frame)."""
        ...

    def start(self, request: RunRequest) -> EventRun: ...


class EngineRun:
    """`Engine(config, RunOptions(...)).<command>()`, built lazily on the thread that iterates it."""

    def __init__(self, config_path: Path, request: RunRequest, log_path: Path | None) -> None:
        self.config_path = config_path
        self.request = request
        self.log_path = log_path
        self._engine: Any = None
        self._cancelled = False
        self._lock = threading.Lock()

    def _options(self) -> Any:
        from homelab.hosts import WAIT_FOR_HOSTS_S
        from homelab.layers.base import RunOptions
        from homelab.ssh import fingerprint

        ask = self.request.ask_host_key

        def confirm(target: Any, key: str) -> bool:
            return ask is not None and ask(target.name, f"{target.address}:{target.port}", fingerprint(key))

        return RunOptions(
            accept_new_host_keys=self.request.accept_new_host_keys,
            confirm_new_host_key=confirm if ask is not None else None,
            yes=True,  # the TUI asked already (plan review + confirm screen)
            confirm_destructive=self.request.confirm_destructive,
            # apply waits for a known machine that reboots, as the CLI's does; plan and status do not
            wait_for_hosts=WAIT_FOR_HOSTS_S if self.request.command == "apply" else 0.0,
            api_endpoint=os.environ.get("HOMELAB_HCLOUD_ENDPOINT") or None,
        )

    def __iter__(self) -> Iterator[Any]:
        from homelab.config import load_config
        from homelab.engine import Engine

        config = load_config(self.config_path)
        engine = Engine(config, self._options(), self.log_path)
        with self._lock:
            if self._cancelled:
                return
            self._engine = engine
        try:
            if self.request.command == "apply" and self.request.reviewed:
                from homelab.reviewed import ReviewedPlan

                plans, digest = self.request.reviewed
                yield from engine.apply(ReviewedPlan.of(config.path, digest or config.digest, plans))
                return
            yield from getattr(engine, self.request.command)()
        finally:
            with self._lock:
                self._engine = None

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            if self._engine is not None:
                self._engine.cancel()


class EngineSource:
    """The real engine for one config file."""

    def __init__(self, config_path: str | Path, log_path: Path | None = None) -> None:
        self.config_path = Path(config_path)
        self.log_path = log_path

    def layers(self) -> tuple[LayerInfo, ...]:
        from homelab import registry

        return tuple(LayerInfo(e.id, e.number, e.title) for e in registry.by_number(registry.built()))

    def start(self, request: RunRequest) -> EventRun:
        return EngineRun(self.config_path, request, self.log_path)


SourceFactory = Callable[[Path], EventSource]
