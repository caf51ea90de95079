"""The layout uses the terminal's width (issue 12): at 200x50 nothing is cut at 75 columns and
the dashboard's layers stand side by side as panes in a grid (120+ columns); at 60x20 it
stays usable; any long line can be read whole (a detail line under the monitor table and
the plan tree). Pilot for behaviour, snapshots for looks."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from textual.widgets import Button, Label, Static

from homelab.model import Health
from homelab.tui.app import HomelabApp
from homelab.tui.screens.dashboard import DashboardScreen
from homelab.tui.screens.layer_detail import LayerDetailScreen
from homelab.tui.screens.plan_review import PlanScreen
from homelab.tui.widgets.layer_pane import LayerPane
from homelab.tui.widgets.monitor_table import column_widths
from homelab.tui.widgets.step_form import ItemRow, _dom_id
from homelab.tui.widgets.tick_box import TickBox
from homelab.tui.wizard.fields import ListField
from tests.tui import recorded
from tests.tui.test_pilot import until
from tests.tui.test_snapshots import (SnapCompare, app_on, at_dashboard, at_plan, drill_to,  # noqa: F401 (fixture)
                                      here, on_wizard_step)

LONG = ("apt: 14 packages held back (linux-image-amd64, systemd, openssh-server and 11 more); "
        "run apt full-upgrade on the host, then reboot it for the new kernel")
AppFor = Callable[..., tuple[HomelabApp, Any]]


def with_long_reason() -> list[object]:
    monitors = dict(recorded.MONITORS)
    first = monitors["compute"][0]
    monitors["compute"] = (dataclasses.replace(first, health=Health.WARN, reason=LONG), *monitors["compute"][1:])
    return recorded.status_events(monitors)


def pane_text(app: HomelabApp, layer: str) -> str:
    return str(app.screen.query_one(f"#pane-{layer}", LayerPane).render())


async def test_wide_terminals_show_a_grid_of_panes_with_whole_lines(app_for: AppFor) -> None:
    app, _ = app_for(status=with_long_reason())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
        await pilot.pause(0.2)
        panes = list(app.screen.query(LayerPane))
        assert app.screen.query_one("#panes").has_class("-grid")
        rows = {p.region.y for p in panes}
        assert len(rows) < len(panes)  # some stand side by side
        assert all(p.region.width >= 58 for p in panes)
        assert "… 2 more monitors" in pane_text(app, "compute")  # 5 of its 7 monitors (2 when stacked)


async def test_at_200_columns_nothing_is_cut_at_75(app_for: AppFor) -> None:
    app, _ = app_for(status=with_long_reason())
    async with app.run_test(size=(200, 50)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
        await pilot.pause(0.2)
        app.screen.query_one("#pane-compute", LayerPane).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LayerDetailScreen))
        await pilot.pause(0.2)
        widths = dict(column_widths(app.screen.query_one("#monitors").size.width))
        assert widths["reason"] > 75 + 40  # the reason column takes what 200 columns leave
        detail = str(app.screen.query_one("#monitor-detail", Static).render())
        assert LONG in detail.replace("\n", " ")  # the highlighted (worst) monitor, whole


async def test_stacked_at_80_and_usable_at_60x20(app_for: AppFor) -> None:
    for size in ((80, 24), (60, 20)):
        app, _ = app_for(status=with_long_reason())
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
            await pilot.pause(0.2)
            assert not app.screen.query_one("#panes").has_class("-grid")
            panes = list(app.screen.query(LayerPane))
            assert len({p.region.y for p in panes}) == len(panes)  # one under the other
            assert "… 5 more monitors" in pane_text(app, "compute")
            for line in pane_text(app, "compute").splitlines():
                assert len(line) <= size[0] - 3, line  # cut to the pane, with "…", never past it
            await pilot.press("p")  # plan review works there too
            await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
            await pilot.press("down", "down")
            await pilot.pause(0.1)
            assert str(app.screen.query_one("#plan-detail", Static).render()).strip()


async def test_every_wizard_row_and_label_fits_80_columns(tmp_path: Path) -> None:
    """Keyboard users at 80x24 see no tooltips and cannot scroll a row sideways with ease: each
    list row (one blank item added to every list) fits the form's width, and no column head or
    field label is cut."""
    app = HomelabApp(tmp_path / "new.yaml")
    async with app.run_test(size=(80, 24)) as pilot:
        wizard = app.screen
        for step in wizard.steps:  # type: ignore[attr-defined]
            await on_wizard_step(pilot, step.section)
            form = wizard.form()  # type: ignore[attr-defined]
            for f in form.fields:
                if isinstance(f, ListField):
                    form.query_one(f"#add-{_dom_id(f.key)}", Button).press()
                    await pilot.pause(0.1)
            width = form.scrollable_content_region.width
            rows = list(form.query(ItemRow))
            assert len(rows) == sum(isinstance(f, ListField) for f in form.fields)
            for row in rows:
                for w in row.children:
                    assert w.virtual_region.right <= width, (step.section, row.field.key, getattr(w, "answer_key", w))
                    if isinstance(w, TickBox):  # its label is not cut ("forma…")
                        assert w.get_content_width(w.size, app.size) <= w.content_size.width, (step.section, w.label)
            for label in form.query(Label):
                text = str(label.render())
                if label.has_class("list-label"):
                    room = width
                elif label.has_class("list-col"):
                    room = label.size.width  # a column head has a margin after it
                else:
                    room = label.size.width - 1  # a field label needs a gap to its input
                assert len(text) <= room, (step.section, text)


def test_dashboard_grid_200x50(snap_compare: SnapCompare, here: Path) -> None:  # noqa: F811
    assert snap_compare(app_on("config.yaml", status=with_long_reason()), terminal_size=(200, 50),
                        run_before=at_dashboard)


def test_dashboard_grid_120x40(snap_compare: SnapCompare, here: Path) -> None:  # noqa: F811
    assert snap_compare(app_on("config.yaml"), terminal_size=(120, 40), run_before=at_dashboard)


def test_dashboard_60x20(snap_compare: SnapCompare, here: Path) -> None:  # noqa: F811
    assert snap_compare(app_on("config.yaml"), terminal_size=(60, 20), run_before=at_dashboard)


def test_layer_detail_200x50(snap_compare: SnapCompare, here: Path) -> None:  # noqa: F811
    assert snap_compare(app_on("config.yaml", status=with_long_reason()), terminal_size=(200, 50),
                        run_before=drill_to("compute"))


def test_plan_review_60x20(snap_compare: SnapCompare, here: Path) -> None:  # noqa: F811
    assert snap_compare(app_on("config.yaml"), terminal_size=(60, 20), run_before=at_plan)
