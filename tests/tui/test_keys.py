"""The same keys on every screen (issue 12): q quits, esc goes back; the new-host-key dialog
takes only an explicit y or n — esc, enter and closing help over it never answer it."""
from __future__ import annotations

from typing import Any, Callable

from textual.pilot import Pilot

from homelab.tui.app import HomelabApp
from homelab.tui.screens.apply import ApplyScreen
from homelab.tui.screens.confirm_apply import ConfirmApplyScreen
from homelab.tui.screens.dashboard import DashboardScreen, grid_columns, moved
from homelab.tui.screens.help import HelpScreen
from homelab.tui.screens.host_key import HostKeyScreen
from homelab.tui.screens.layer_detail import LayerDetailScreen
from homelab.tui.screens.plan_review import PlanScreen
from homelab.tui.screens.wizard import WizardScreen
from homelab.tui.widgets.layer_pane import LayerPane
from tests.tui import recorded
from tests.tui.replay import AskHostKey, Gate
from tests.tui.test_pilot import SIZE, until

AppFor = Callable[..., tuple[HomelabApp, Any]]


async def test_esc_and_closing_help_never_answer_the_host_key_dialog(app_for: AppFor) -> None:
    """The question pops up while help is open: the esc meant for help must not refuse the key."""
    plan, gate = recorded.plan_events(), Gate()
    app, source = app_for(plan=[plan[0], gate, AskHostKey("h1", "10.44.0.2:22", "SHA256:abc"), *plan[1:]])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        gate.opened.set()
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        dialog = app.screen
        await pilot.press("escape", "enter", "q", "escape")  # reflexes: none of them is an answer
        await pilot.pause(0.2)
        assert app.screen is dialog and source.runs[-1].answers == [] and app.is_running
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))  # help is still there, under it
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
    assert source.runs[-1].answers == [("h1", True)]


async def _back_then_quit(pilot: Pilot, app: HomelabApp, screen: type, came_from: type) -> None:
    await until(pilot, lambda: isinstance(app.screen, screen))
    await pilot.press("escape")
    await until(pilot, lambda: isinstance(app.screen, came_from))


async def test_esc_goes_back_on_every_screen(app_for: AppFor) -> None:
    app, _ = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.panes)
        await pilot.press("enter")
        await _back_then_quit(pilot, app, LayerDetailScreen, DashboardScreen)
        await pilot.press("question_mark")
        await _back_then_quit(pilot, app, HelpScreen, DashboardScreen)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
        await pilot.press("a")
        await _back_then_quit(pilot, app, ConfirmApplyScreen, PlanScreen)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmApplyScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.view.finished is not None)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_q_quits_from_every_screen_that_takes_no_text(app_for: AppFor) -> None:
    for keys, screen in ((("enter",), LayerDetailScreen), (("question_mark",), HelpScreen), (("p",), PlanScreen),
                         ((), DashboardScreen)):
        app, _ = app_for()
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.panes)
            await pilot.press(*keys)
            await until(pilot, lambda: isinstance(app.screen, screen))
            await pilot.press("q")
            await pilot.pause(0.1)
            assert not app.is_running, screen.__name__


async def test_the_wizard_takes_q_as_a_letter_and_esc_as_back(tmp_path: Any) -> None:
    app = HomelabApp(tmp_path / "new.yaml", refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert wizard.index == 1
        await pilot.press("escape")
        await pilot.pause()
        assert wizard.index == 0 and app.is_running
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running  # typed into the field, not quit
        await pilot.press("ctrl+q")
        await pilot.pause(0.1)
        assert not app.is_running


# ------------------------------------------------------------ dashboard grid --
def test_panes_per_row_follow_the_width() -> None:
    assert [grid_columns(w) for w in (60, 80, 119, 120, 179, 180, 200, 300)] == [1, 1, 1, 2, 2, 3, 3, 3]


def test_moves_on_the_grid_stay_on_the_board() -> None:
    # 5 panes, 2 per row:  0 1 / 2 3 / 4
    assert [moved(0, 5, 2, 0, 1), moved(1, 5, 2, 1, 0), moved(3, 5, 2, 0, -1)] == [1, 3, 2]
    assert [moved(0, 5, 2, -1, 0), moved(3, 5, 2, 1, 0), moved(4, 5, 2, 0, 1)] == [0, 4, 4]
    assert [moved(2, 5, 1, 1, 0), moved(2, 5, 1, 0, 1), moved(2, 5, 1, -1, 0)] == [3, 3, 1]  # stacked list


def _focused_layer(app: HomelabApp) -> str:
    focused = app.screen.focused
    assert isinstance(focused, LayerPane)
    return focused.layer_view.name


async def _walk(pilot: Pilot, *keys: str) -> list[str]:
    """The layer focused after each key."""
    out = []
    for key in keys:
        await pilot.press(key)
        out.append(_focused_layer(pilot.app))  # type: ignore[arg-type]
    return out


async def test_arrow_keys_move_on_the_grid_and_enter_drills_down(app_for: AppFor) -> None:
    """120 columns: billing privilege / mesh permissions / compute (layers by number)."""
    app, _ = app_for()
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
        await pilot.pause(0.1)
        names = list(app.screen.panes)  # type: ignore[attr-defined]
        assert names == [info.name for info in recorded.LAYERS] and _focused_layer(app) == names[0]
        assert await _walk(pilot, "right", "down", "left", "down", "down", "up", "k", "l", "h", "j") == [
            "privilege", "permissions", "mesh", "compute", "compute", "mesh", "billing", "privilege",
            "billing", "mesh"]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LayerDetailScreen))
        assert app.screen.layer_name == "mesh"  # type: ignore[attr-defined]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        assert _focused_layer(app) == "mesh"  # back where the drill-down started


async def test_the_same_keys_walk_the_stacked_list_at_80x24(app_for: AppFor) -> None:
    app, _ = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
        await pilot.pause(0.1)
        assert not app.screen.query_one("#panes").has_class("-grid")
        assert await _walk(pilot, "down", "right", "up", "left", "left", "j", "j", "j", "j", "j") == [
            "privilege", "mesh", "privilege", "billing", "billing", "privilege", "mesh", "permissions",
            "compute", "compute"]
        await pilot.resize_terminal(120, 40)  # wider now: the same focus, laid out as a grid
        await pilot.pause(0.2)
        assert app.screen.query_one("#panes").has_class("-grid") and _focused_layer(app) == "compute"
        await pilot.press("up")
        assert _focused_layer(app) == "mesh"
