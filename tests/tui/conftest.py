"""TUI test setup: a fixed time zone (monitor times are shown as clock times) and app factories."""
from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from homelab.tui.app import HomelabApp
from tests.tui import recorded
from tests.tui.replay import ReplaySource


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run `async def` tests (Pilot needs them) without an extra pytest plugin."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture(autouse=True)
def steady_cursor(monkeypatch: pytest.MonkeyPatch) -> None:
    """An input's cursor blinks every 0.5 s: on a loaded machine a snapshot could catch it
    either way. In tests it stays shown (as right after a key press)."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)


@pytest.fixture(autouse=True)
def no_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Screens must not depend on a lab that happens to run on this machine."""
    from homelab.tui.wizard import lab_machines

    monkeypatch.setattr(lab_machines, "LAB_ROOT", tmp_path / "no-lab")
    monkeypatch.setattr(lab_machines, "_inventory_from_api", lambda: None)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A valid config (the engine never runs: events come from recordings)."""
    path = tmp_path / "config.yaml"
    path.write_text("version: 1\ncompute:\n  machines:\n    - {name: h1, address: 10.44.0.2, user: admin}\n")
    return path


def make_source(**recordings: Any) -> ReplaySource:
    base: dict[str, Any] = {"status": recorded.status_events(), "plan": recorded.plan_events(),
                            "apply": recorded.apply_events()}
    base.update(recordings)
    return ReplaySource(base, recorded.LAYERS)


@pytest.fixture
def app_for(config_file: Path) -> Callable[..., tuple[HomelabApp, ReplaySource]]:
    """app_for(**recordings) -> (app on config_file, its replay source)."""

    def make(path: Path | None = None, **recordings: Any) -> tuple[HomelabApp, ReplaySource]:
        source = make_source(**recordings)
        app = HomelabApp(path or config_file, source_factory=lambda p: source, refresh_seconds=3600)
        return app, source

    return make
