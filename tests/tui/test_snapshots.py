"""How every screen looks at 80x24 (pytest-textual-snapshot; review diffs, then --snapshot-update).

Events are replayed from `recorded`, times are fixed and the time zone is UTC, so nothing
here depends on the clock or on real hosts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from textual.pilot import Pilot

from homelab.events import ChangeApplied, HostConnected
from homelab.tui.app import HomelabApp
from homelab.tui.screens.apply import ApplyScreen
from homelab.tui.screens.confirm_apply import ConfirmApplyScreen
from homelab.tui.screens.dashboard import DashboardScreen
from homelab.tui.screens.host_key import HostKeyScreen
from homelab.tui.screens.layer_detail import LayerDetailScreen
from homelab.tui.screens.plan_review import PlanScreen
from homelab.tui.screens.wizard import WizardScreen
from homelab.tui.widgets.layer_pane import LayerPane
from tests.tui import recorded
from tests.tui.conftest import make_source
from tests.tui.replay import AskHostKey, Gate
from tests.tui.test_pilot import type_text, until

SnapCompare = Callable[..., bool]
SIZE = (80, 24)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a temp dir so screens show a short relative config path."""
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("version: 1\ncompute:\n  machines:\n    - {name: h1, address: 10.44.0.2}\n")
    return tmp_path


def app_on(config: str, **recordings: Any) -> HomelabApp:
    source = make_source(**recordings)
    return HomelabApp(Path(config), source_factory=lambda p: source, refresh_seconds=30)


async def at_dashboard(pilot: Pilot) -> None:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
    await pilot.pause(0.1)


async def on_wizard_step(pilot: Pilot, section: str) -> None:
    wizard = pilot.app.screen
    assert isinstance(wizard, WizardScreen)
    while wizard.index < len(wizard.steps) and wizard.steps[wizard.index].section != section:
        await pilot.press("ctrl+n")
    await pilot.pause(0.1)


def wizard_at(section: str, then: Callable[[Pilot], Awaitable[None]] | None = None) -> Callable[[Pilot], Any]:
    async def run(pilot: Pilot) -> None:
        await on_wizard_step(pilot, section)
        if then is not None:
            await then(pilot)
        await pilot.pause(0.1)

    return run


# ---------------------------------------------------------------------- wizard --
def test_wizard_budget_with_a_problem(snap_compare: SnapCompare, here: Path) -> None:
    async def typed(pilot: Pilot) -> None:
        await type_text(pilot, "twenty")

    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=wizard_at("billing", typed))


@pytest.mark.parametrize("section", ["privilege", "mesh", "permissions"])
def test_wizard_step(snap_compare: SnapCompare, here: Path, section: str) -> None:
    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=wizard_at(section))


def test_wizard_machines(snap_compare: SnapCompare, here: Path) -> None:
    async def rows(pilot: Pilot) -> None:
        await pilot.click("#add-machines")
        await type_text(pilot, "h1")
        await pilot.press("tab")
        await type_text(pilot, "10.44.0.2")
        await pilot.click("#add-hetzner-servers")
        await type_text(pilot, "web-1")

    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=wizard_at("compute", rows))


def test_wizard_storage_rows(snap_compare: SnapCompare, here: Path) -> None:
    """A disk and a repository row, each whole within 80 columns, scrolled to the repositories."""
    async def rows(pilot: Pilot) -> None:
        for add, name in (("#add-disks", "data1"), ("#add-repositories", "offsite")):
            pilot.app.screen.query_one(add).focus()  # (scrolls it into view)
            await pilot.press("enter")
            await pilot.pause(0.2)
            await type_text(pilot, name)
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=wizard_at("storage", rows))


def test_wizard_app_machines_pick_list(snap_compare: SnapCompare, here: Path) -> None:
    """The apps step's pick list of the machines step's machines, one ticked (fits 80x24)."""
    async def machines(pilot: Pilot) -> None:
        for name, address in (("h1", "10.44.0.2"), ("h2", "10.44.0.3")):
            await pilot.click("#add-machines")
            await type_text(pilot, name)
            await pilot.press("tab")
            await type_text(pilot, address)
        await on_wizard_step(pilot, "apps")
        pilot.app.clear_notifications()  # the mesh step's "press next again" toast: its 4 s are a race
        await pilot.press("enter")  # "+ add an app"
        await type_text(pilot, "hello")
        await pilot.press("tab", "tab", "tab", "enter")  # recipe, machines, its ▾
        await pilot.pause(0.1)
        await pilot.press("down", "space")

    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=wizard_at("compute", machines))


def test_wizard_write(snap_compare: SnapCompare, here: Path) -> None:
    async def budget_then_write(pilot: Pilot) -> None:
        await type_text(pilot, "20")
        await on_wizard_step(pilot, "write")

    assert snap_compare(app_on("new.yaml"), terminal_size=SIZE, run_before=budget_then_write)


# ------------------------------------------------------------------- dashboard --
def test_dashboard(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=at_dashboard)


def test_dashboard_unreachable_host(snap_compare: SnapCompare, here: Path) -> None:
    status = recorded.unreachable(recorded.status_events(), "h3", "connect to h3 (10.44.0.4:22): connection refused",
                                  "is the machine on and sshd running?")
    assert snap_compare(app_on("config.yaml", status=status), terminal_size=SIZE, run_before=at_dashboard)


def drill_to(layer: str) -> Callable[[Pilot], Awaitable[None]]:
    async def drill(pilot: Pilot) -> None:
        await at_dashboard(pilot)
        pilot.app.screen.query_one(f"#pane-{layer}", LayerPane).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(pilot.app.screen, LayerDetailScreen))
        await pilot.pause(0.2)

    return drill


def test_layer_detail_mesh_matrix(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=drill_to("mesh"))


def test_help(snap_compare: SnapCompare, here: Path) -> None:
    async def help_screen(pilot: Pilot) -> None:
        await at_dashboard(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)

    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=help_screen)


def test_config_problems(snap_compare: SnapCompare, here: Path) -> None:
    Path("bad.yaml").write_text("version: 1\ncompute:\n  machines:\n    - {name: Pi, address: 10.0.0.1, port: 0}\n"
                                "  bsae: {}\n")
    assert snap_compare(app_on("bad.yaml"), terminal_size=SIZE)


# --------------------------------------------------------------- plan / apply --
async def at_plan(pilot: Pilot) -> None:
    await at_dashboard(pilot)
    await pilot.press("p")
    await until(pilot, lambda: isinstance(pilot.app.screen, PlanScreen) and pilot.app.screen.view.finished is not None)
    await pilot.pause(0.1)


def test_plan_review(snap_compare: SnapCompare, here: Path) -> None:
    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=at_plan)


def test_confirm_apply(snap_compare: SnapCompare, here: Path) -> None:
    async def confirm(pilot: Pilot) -> None:
        await at_plan(pilot)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmApplyScreen))
        await pilot.pause(0.1)

    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=confirm)


def test_host_key_question(snap_compare: SnapCompare, here: Path) -> None:
    plan = recorded.plan_events()
    plan = [plan[0], AskHostKey("h1", "10.44.0.2:22", "SHA256:qA2t4mX1lK9oVbCw8zYf0pR3sE6uH7jN5dG"), *plan[1:]]

    async def asked(pilot: Pilot) -> None:
        await at_dashboard(pilot)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(pilot.app.screen, HostKeyScreen))
        await pilot.pause(0.1)

    assert snap_compare(app_on("config.yaml", plan=plan), terminal_size=SIZE, run_before=asked)


async def start_apply(pilot: Pilot) -> None:
    await at_plan(pilot)
    await pilot.press("a")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmApplyScreen))
    await pilot.press("y")
    await until(pilot, lambda: isinstance(pilot.app.screen, ApplyScreen))


def test_apply_in_progress(snap_compare: SnapCompare, here: Path) -> None:
    gate = Gate()
    events = recorded.apply_events()
    cut = [i for i, e in enumerate(events) if isinstance(e, ChangeApplied)][2] + 1

    async def mid_run(pilot: Pilot) -> None:
        await start_apply(pilot)
        await until(pilot, lambda: pilot.app.screen.view.layer("compute").applied == 3)
        await pilot.pause(0.1)

    assert snap_compare(app_on("config.yaml", apply=[*events[:cut], gate, *events[cut:]]), terminal_size=SIZE,
                        run_before=mid_run)
    gate.open()


def test_apply_failed_with_hints(snap_compare: SnapCompare, here: Path) -> None:
    async def finished(pilot: Pilot) -> None:
        await start_apply(pilot)
        await until(pilot, lambda: pilot.app.screen.view.finished is not None)
        await pilot.pause(0.1)

    assert snap_compare(app_on("config.yaml"), terminal_size=SIZE, run_before=finished)


def test_recordings_connect_every_host() -> None:
    assert {e.host for e in recorded.status_events() if isinstance(e, HostConnected)} == set(recorded.HOSTS)
