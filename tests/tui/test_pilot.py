"""The TUI driven by keys (Textual Pilot) on replayed engine events, at 80x24."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, SelectionList, Static, Tree

from homelab.config import load_config
from homelab.events import ChangeApplied, RunStarted
from homelab.tui.app import HomelabApp, help_sections
from homelab.tui.screens.apply import ApplyScreen
from homelab.tui.screens.confirm_apply import ApplyChoice
from homelab.tui.screens.run_screen import REDRAW_SECONDS
from homelab.tui.screens.config_error import ConfigErrorScreen
from homelab.tui.screens.confirm_apply import ConfirmApplyScreen
from homelab.tui.screens.dashboard import DashboardScreen
from homelab.tui.screens.help import HelpScreen, help_rows
from homelab.tui.screens.host_key import HostKeyScreen
from homelab.tui.screens.layer_detail import LayerDetailScreen
from homelab.tui.screens.pick_names import PickNamesScreen, PickOneScreen
from homelab.tui.screens.plan_review import PlanScreen
from homelab.tui.screens.wizard import WizardScreen
from homelab.tui.widgets.layer_pane import LayerPane
from homelab.tui.widgets.mesh_matrix import MeshMatrix
from homelab.tui.widgets.step_form import StepForm
from homelab.tui.wizard.steps import active_steps
from tests.tui import recorded
from tests.tui.replay import AskHostKey, Gate

SIZE = (80, 24)
AppFor = Callable[..., tuple[HomelabApp, Any]]


async def until(pilot: Pilot, cond: Callable[[], Any], timeout: float = 15.0) -> None:
    """Let the app (and its worker threads) run until `cond()` holds and the screen has drawn
    what its view holds (redraws are rate-capped, so a final view is drawn a tick later)."""
    waited = 0.0
    while not cond() or getattr(pilot.app.screen, "redraw_pending", False):
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        await pilot.pause(0.02)
        waited += 0.02
    await pilot.pause()


def text_of(app: HomelabApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*[{" ": "space", ".": "full_stop", "/": "slash", "-": "minus", "~": "tilde",
                         "_": "underscore", ":": "colon"}.get(c, c) for c in text])


async def to_step(pilot: Pilot, section: str) -> WizardScreen:
    """Next (ctrl+n) until the wizard shows `section`'s step (twice past a step with problems)."""
    wizard = pilot.app.screen
    assert isinstance(wizard, WizardScreen)
    while wizard.steps[wizard.index].section != section:
        await pilot.press("ctrl+n")
    return wizard


async def type_row(pilot: Pilot, *values: str) -> None:
    """Type into a new row's first fields, tab between them (name, address, ...)."""
    for i, value in enumerate(values):
        if i:
            await pilot.press("tab")
        await type_text(pilot, value)


# --------------------------------------------------------------------- wizard --
async def test_wizard_walks_every_layer_and_writes_a_config_that_loads(tmp_path: Path) -> None:
    target = tmp_path / "new" / "config.yaml"
    app = HomelabApp(target, source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        seen = []
        for step in active_steps():
            seen.append(wizard.steps[wizard.index].section)
            if step.section == "billing":
                await type_text(pilot, "20")
            if step.section == "compute":
                await pilot.click("#add-machines")
                await type_text(pilot, "h1")
                await pilot.press("tab")
                await type_text(pilot, "10.44.0.2")
                await pilot.press("tab", "ctrl+u")
                await type_text(pilot, "admin")
            await pilot.press("ctrl+n")
            await pilot.pause()
        assert seen == [s.section for s in active_steps()]  # -1 .. 3, in order
        assert wizard.on_write_step
        assert "machines:" in text_of(app, "#preview")
        await pilot.click("#write")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen))
    cfg = load_config(target)
    assert [(m.name, m.address, m.user) for m in cfg.machines] == [("h1", "10.44.0.2", "admin")]
    assert cfg.get("billing").budget == 20.0


async def test_wizard_shows_parser_problems_as_typed_and_refuses_to_go_on(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source())
    async with app.run_test(size=SIZE) as pilot:
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        await type_text(pilot, "abc")
        await pilot.pause()
        assert "billing.budget: should be a number >= 0, not 'abc'" in text_of(app, "#problems")
        assert app.screen.query_one("#field-budget", Input).has_class("-problem")
        await pilot.press("ctrl+n")
        assert wizard.index == 0  # not on with a problem
        await pilot.press("backspace", "backspace", "backspace", "1", "5")
        await pilot.pause()
        assert app.screen.query_one("#problems").has_class("-empty")
        await pilot.press("ctrl+n")
        assert wizard.index == 1


async def test_wizard_goes_past_problems_only_when_asked_twice_and_never_writes_them(tmp_path: Path) -> None:
    existing = tmp_path / "taken.yaml"
    existing.write_text("version: 1\n")
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source())
    async with app.run_test(size=SIZE) as pilot:
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        await type_text(pilot, "-5")
        await pilot.press("ctrl+n")
        assert wizard.index == 0
        await pilot.press("ctrl+n")  # asked twice: a later step may still resolve it
        assert wizard.index == 1
        while not wizard.on_write_step:
            await pilot.press("ctrl+n", "ctrl+n")
        assert "billing.budget: should be a number >= 0, not -5" in text_of(app, "#problems")
        assert wizard.write_config() is None and not (tmp_path / "c.yaml").exists()
        while wizard.index:
            await pilot.press("ctrl+p")
        await pilot.press("ctrl+u")
        await type_text(pilot, "5")
        while not wizard.on_write_step:
            await pilot.press("ctrl+n")
        path_input = app.screen.query_one("#write-path", Input)
        path_input.value = str(existing)
        assert wizard.write_config() is None and existing.read_text() == "version: 1\n"  # never overwritten
        path_input.value = str(tmp_path / "c.yaml")
        assert wizard.write_config() == tmp_path / "c.yaml"
    assert load_config(tmp_path / "c.yaml").get("billing").budget == 5.0


async def test_wizard_back_keeps_what_was_typed_even_invalid(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source())
    async with app.run_test(size=SIZE) as pilot:
        wizard = app.screen
        assert isinstance(wizard, WizardScreen)
        await type_text(pilot, "25")
        await pilot.press("ctrl+n")  # privilege
        key = app.screen.query_one("#field-ssh-key", Input)
        key.focus()
        await pilot.press("ctrl+u")
        await type_text(pilot, "~/.ssh/home lab")  # a space: not a valid path
        await pilot.pause()
        assert "privilege.ssh_key: '~/.ssh/home lab' is not allowed here" in text_of(app, "#problems")
        await pilot.press("ctrl+p")
        assert wizard.index == 0
        assert app.screen.query_one("#field-budget", Input).value == "25"
        await pilot.press("ctrl+n")
        assert app.screen.query_one("#field-ssh-key", Input).value == "~/.ssh/home lab"
        assert wizard.answers["privilege"]["ssh_key"] == "~/.ssh/home lab"


async def test_wizard_problem_in_a_list_row_names_the_row(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source())
    async with app.run_test(size=SIZE) as pilot:
        wizard = await to_step(pilot, "compute")
        await pilot.click("#add-machines")
        await type_row(pilot, "pi-1", "not an address")
        await pilot.pause()
        assert "compute.machines[0].address: 'not an address' is not an IP address or host name" in \
            text_of(app, "#problems")
        form = app.screen.query_one("#step-compute", StepForm)
        assert [w.has_class("-problem") for w in form.query(".item-control")][:2] == [False, True]


async def test_wizard_keys_only_give_a_machine_ipv6_and_an_app_two_picked_machines(tmp_path: Path) -> None:
    """No mouse: rows are added with enter on "+ add ...", the ▾ opens the pick list, space ticks
    and enter takes the ticked machines; the file says `ipv6:` and `machines: [h1, h2]`."""
    target = tmp_path / "two.yaml"
    app = HomelabApp(target, source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await to_step(pilot, "compute")
        assert app.focused is app.screen.query_one("#add-machines")  # the step's first control
        await pilot.press("enter")  # a row; its name has the focus
        await type_row(pilot, "h1", "10.44.0.2")
        await pilot.press("tab", "tab", "tab", "tab")  # user, port, key, ipv6
        await type_text(pilot, "2001:db8::2")
        await pilot.press("tab", "tab", "enter")  # past the row's ✕ to "+ add a machine"
        await type_row(pilot, "h2", "10.44.0.3")
        await pilot.pause()
        assert [dict(r) for r in wizard.answers["compute"]["machines"]] == [
            {"name": "h1", "address": "10.44.0.2", "user": "root", "port": "22", "key": "", "ipv6": "2001:db8::2"},
            {"name": "h2", "address": "10.44.0.3", "user": "root", "port": "22", "key": "", "ipv6": ""}]
        await pilot.press("ctrl+n")
        assert wizard.steps[wizard.index].section == "mesh"
        await pilot.press("space")  # no mesh: two machines behind NAT could never meet
        assert wizard.answers["mesh"]["enabled"] is False
        await to_step(pilot, "apps")
        await pilot.press("enter")  # "+ add an app"
        await type_text(pilot, "hello")
        await pilot.press("tab", "enter", "end", "enter")  # the recipe list: whoami is last
        await pilot.press("tab", "tab", "enter")  # past the machines input to its ▾
        await until(pilot, lambda: isinstance(app.screen, PickNamesScreen))
        await pilot.press("space", "down", "space", "enter")
        await until(pilot, lambda: app.screen is wizard)
        assert wizard.answers["apps"]["list"] == ({"name": "hello", "recipe": "whoami", "machine": "h1, h2"},)
        assert app.screen.query_one("#problems").has_class("-empty")
        while not wizard.on_write_step:
            await pilot.press("ctrl+n")
        preview = text_of(app, "#preview")
        assert "      ipv6: 2001:db8::2\n" in preview and "      machines: [h1, h2]\n" in preview
        await pilot.press("tab", "enter")  # from the path to "write"
        await until(pilot, lambda: isinstance(app.screen, PlanScreen))
    cfg = load_config(target)
    assert [(m.name, m.ipv6) for m in cfg.machines] == [("h1", "2001:db8::2"), ("h2", None)]
    hello = cfg.get("apps").app("hello")
    assert hello is not None and hello.machines == ("h1", "h2")


async def test_wizard_picking_one_machine_writes_machine_and_esc_changes_nothing(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await to_step(pilot, "compute")
        await pilot.press("enter")
        await type_row(pilot, "h1", "10.44.0.2")
        await to_step(pilot, "apps")
        await pilot.press("enter")
        await type_text(pilot, "cal")
        await pilot.press("tab", "tab")  # recipe radicale (the default), then its machines
        await type_text(pilot, "pi-9")  # typed, unknown: still offered, ticked
        await pilot.press("tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, PickNamesScreen))
        picker = app.screen
        assert [(name, on) for _, name, on in picker.options] == [("h1", False), ("pi-9", True)]
        await pilot.press("space", "escape")  # ticked h1, then cancelled
        await until(pilot, lambda: app.screen is wizard)
        assert wizard.answers["apps"]["list"][0]["machine"] == "pi-9"
        assert "apps.list[0].machine: no machine or server named 'pi-9'" in text_of(app, "#problems")
        await pilot.press("enter")  # the focus is back on the ▾
        await until(pilot, lambda: isinstance(app.screen, PickNamesScreen))
        await pilot.press("space", "down", "space", "enter")  # h1 on, pi-9 off
        await until(pilot, lambda: app.screen is wizard)
        assert wizard.answers["apps"]["list"][0]["machine"] == "h1"
        assert app.screen.query_one("#problems").has_class("-empty")
        await pilot.press("ctrl+n")
        while not wizard.on_write_step:
            await pilot.press("ctrl+n")
        assert "      machine: h1\n" in text_of(app, "#preview")


async def test_wizard_pick_list_without_machines_says_where_to_give_them(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "c.yaml", source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await to_step(pilot, "apps")
        await pilot.press("enter")
        await type_row(pilot, "cal", "")  # name, then the recipe
        await pilot.press("tab", "tab", "enter")
        await until(pilot, lambda: isinstance(app.screen, PickNamesScreen))
        assert "No machine yet: give them in the machines step" in text_of(app, "#pick-none")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is wizard)
        assert wizard.answers["apps"]["list"][0]["machine"] == ""  # nothing picked, nothing written


async def two_machines(pilot: Pilot, then: str = "") -> WizardScreen:
    """The machines step with h1 and h2, typed with keys only; with `then`, no mesh (two machines
    behind NAT could never meet) and on to that step."""
    wizard = await to_step(pilot, "compute")
    await pilot.press("enter")  # "+ add a machine", the step's first control
    await type_row(pilot, "h1", "10.44.0.2")
    await pilot.press(*["tab"] * 6, "enter")  # past user, port, key, ipv6 and ✕ to "+ add a machine"
    await type_row(pilot, "h2", "10.44.0.3")
    if then:
        await pilot.press("ctrl+n", "space")  # the mesh step's tick box
        await to_step(pilot, then)
    return wizard


async def pick(pilot: Pilot, *keys: str) -> None:
    """enter on the focused ▾, then `keys` in the pick list, which they close."""
    wizard = pilot.app.screen
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(pilot.app.screen, PickNamesScreen))
    await pilot.press(*keys)
    await until(pilot, lambda: pilot.app.screen is wizard)


async def written_preview(pilot: Pilot, wizard: WizardScreen) -> str:
    """On to the write step, write the config (there must be no problem left) and return its preview."""
    while not wizard.on_write_step:
        await pilot.press("ctrl+n")
    preview = text_of(pilot.app, "#preview")
    await pilot.press("tab", "enter")  # from the path to "write"
    await until(pilot, lambda: isinstance(pilot.app.screen, PlanScreen))
    return preview


async def test_wizard_a_mesh_node_picks_exactly_one_machine(tmp_path: Path) -> None:
    """A field of one machine gets the one-name pick list: no ticks, enter or space takes the
    highlighted machine alone, so a second pick replaces the first and never adds to it."""
    target = tmp_path / "mesh.yaml"
    app = HomelabApp(target, source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await two_machines(pilot)
        await pilot.press("ctrl+n")  # mesh: its tick box has the focus
        await pilot.press("tab", "tab", "tab", "enter")  # past cidr and port to "+ add a node"
        await pilot.press("tab")  # from the node's name to its ▾
        await pick(pilot, "down", "enter")

        def node() -> str:
            return str(wizard.answers["mesh"]["nodes"][0]["name"])

        assert node() == "h2"
        await pilot.press("enter")  # the focus is back on the ▾
        await until(pilot, lambda: isinstance(app.screen, PickOneScreen))
        picker = app.screen
        assert isinstance(picker, PickOneScreen)
        assert picker.query_one("#pick-list", OptionList).highlighted == 1  # on the machine picked
        assert not picker.query(SelectionList)  # nothing to tick: one name only
        await pilot.press("up", "space")
        await until(pilot, lambda: app.screen is wizard)
        assert node() == "h1"  # instead of h2, not beside it
        await pilot.press("shift+tab", "ctrl+u")  # the name typed instead, two where one belongs
        await type_text(pilot, "pi-9, h2")
        await pilot.press("tab")
        await pick(pilot, "escape")
        assert node() == "pi-9, h2"  # esc changes nothing
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PickOneScreen))
        assert [name for _, name, _ in app.screen.options] == ["h1", "h2", "pi-9"]  # typed, unknown: offered
        assert app.screen.query_one("#pick-list", OptionList).highlighted == 1  # h2: the first typed, in list order
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is wizard)
        assert node() == "h2"
        await pilot.press("tab")
        await type_text(pilot, "auto")  # h2 is dialled: h1 behind NAT reaches it
        assert "  nodes:\n    - name: h2\n      endpoint: auto\n" in await written_preview(pilot, wizard)
    assert [(n.name, n.endpoint) for n in load_config(target).get("mesh").nodes] == [("h2", "auto")]


async def test_wizard_a_disk_and_a_repository_each_pick_one_machine(tmp_path: Path) -> None:
    """A disk's machine and a repository's are one machine each: the one-name pick list."""
    target = tmp_path / "storage.yaml"
    app = HomelabApp(target, source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await two_machines(pilot, then="storage")
        await pilot.press("tab", "tab", "tab", "enter")  # past data root and password to "+ add a disk"
        await type_text(pilot, "data1")
        await pilot.press("tab", "tab")  # its machine, then the ▾
        await pick(pilot, "space")  # space takes the highlighted one too: h1, the first
        await pilot.press("tab")
        await type_text(pilot, "/dev/disk/by-id/ata-X")
        await pilot.press(*["tab"] * 7, "enter")  # past the disk's row, "+ add a disk" and the password
        await type_text(pilot, "nas")
        await pilot.press("tab", "tab", "tab")  # type (rest), machine, its ▾
        await pick(pilot, "down", "enter")
        storage = wizard.answers["storage"]
        assert (storage["disks"][0]["machine"], storage["repositories"][0]["machine"]) == ("h1", "h2")
        preview = await written_preview(pilot, wizard)
        assert "    - name: data1\n      machine: h1\n" in preview
        assert "    - name: nas\n      type: rest\n      machine: h2\n" in preview
    cfg = load_config(target).get("storage")
    assert (cfg.disks[0].machine, cfg.repositories[0].machine) == ("h1", "h2")


async def test_wizard_ingress_machines_pick_several_and_one_is_still_written_as_a_list(tmp_path: Path) -> None:
    """ingress.machines is always a list: one machine picked is `machines: [h2]`. The list ticks
    (several may run Caddy) and offers a name typed that the machines step does not know."""
    target = tmp_path / "ingress.yaml"
    app = HomelabApp(target, source_factory=lambda p: _source(), refresh_seconds=3600)
    async with app.run_test(size=SIZE) as pilot:
        wizard = await two_machines(pilot, then="ingress")
        await pilot.press("space", "tab")  # serve the apps; their machines
        await type_text(pilot, "edge")
        await pilot.press("tab", "enter")  # its ▾
        await until(pilot, lambda: isinstance(app.screen, PickNamesScreen))
        assert not isinstance(app.screen, PickOneScreen)
        assert [(name, on) for _, name, on in app.screen.options] == [("h1", False), ("h2", False), ("edge", True)]
        await pilot.press("down", "space", "down", "space", "enter")  # h2 on, edge off
        await until(pilot, lambda: app.screen is wizard)
        assert wizard.answers["ingress"]["machines"] == "h2"
        await pilot.press("tab")
        await type_text(pilot, "example.org")
        await pilot.press("tab", "enter", "down", "enter")  # certificates: Caddy's internal CA (no email)
        assert "  machines: [h2]\n" in await written_preview(pilot, wizard)
    assert load_config(target).get("ingress").machines == ("h2",)


# ------------------------------------------------------------ plan and apply --
async def test_plan_review_groups_by_layer_then_confirm_applies(app_for: AppFor) -> None:
    app, source = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
        tree = app.screen.query_one(Tree)
        labels = [str(n.label) for n in tree.root.children]
        assert labels == ["layer -1 billing — no changes (1 checked)", "layer 0 privilege — no changes (1 checked)",
                          "layer 1 mesh — 3 changes", "layer 2 permissions — 3 changes", "layer 3 compute — 4 changes"]
        compute = tree.root.children[-1]
        assert compute.is_expanded and "+" not in str(compute.children[0].label)[:1]
        assert "plan: 10 changes in 3 layers" in text_of(app, "#plan-summary")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmApplyScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.view.finished is not None)
    apply_request = source.requests[-1]
    assert apply_request.command == "apply" and apply_request.accept_new_host_keys is False
    assert source.commands()[:2] == ["status", "plan"]


async def test_confirm_tick_passes_accept_new_host_keys(app_for: AppFor) -> None:
    app, source = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("a")  # apply = plan, then confirm
        await until(pilot, lambda: isinstance(app.screen, ConfirmApplyScreen))
        await pilot.click("#accept-keys")
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen))
    assert source.requests[-1].command == "apply" and source.requests[-1].accept_new_host_keys is True


async def test_nothing_to_apply_is_said_not_confirmed(app_for: AppFor) -> None:
    app, source = app_for(plan=recorded.plan_events(recorded.NOTHING_PLANNED))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
        assert "no changes" in text_of(app, "#plan-summary")
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, PlanScreen)
    assert "apply" not in source.commands()


async def test_apply_shows_layer_and_host_progress_then_failures_with_hints(app_for: AppFor) -> None:
    gate = Gate()
    events = recorded.apply_events()
    cut = next(i for i, e in enumerate(events) if isinstance(e, ChangeApplied)) + 1
    app, source = app_for(apply=[*events[:cut], gate, *events[cut:]])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmApplyScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.view.current_layer == "compute")
        await until(pilot, lambda: "applying 1/4" in text_of(app, "#layer-progress"))
        assert "applying… layer 3 compute" in text_of(app, "#apply-status")
        gate.open()
        await until(pilot, lambda: app.screen.view.finished is not None)
        await pilot.pause()
        status = text_of(app, "#apply-status")
        assert "apply FAILED" in status and "wg-quick@wg0 failed to start" in status and "hint:" in status
        progress = text_of(app, "#layer-progress")
        assert "[FAIL]  1 mesh         FAILED 1, done 2/3" in progress and "[done]  3 compute      done 4/4" in progress
        table = app.screen.query_one("#hosts")
        assert str(table.get_cell("h3", "state")) == "FAILED"
        log_lines = [str(line.text) for line in app.screen.query_one("#run-log").lines]
        assert "FAILED h3 [mesh]: wg-quick@wg0 failed to start" in log_lines
        assert "[h3] RTNETLINK answers: Operation not supported" in log_lines
        table.move_cursor(row=2)  # h3: its own output only
        await pilot.press("enter")
        await pilot.pause()
        log_lines = [str(line.text) for line in app.screen.query_one("#run-log").lines]
        assert log_lines == ["output of h3 (enter again: all hosts)", "hostname h3", "Reading package lists...",
                             "Setting up jq (1.7.1-3) ...", "RTNETLINK answers: Operation not supported"]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_cancel_stops_the_run_cleanly(app_for: AppFor) -> None:
    gate = Gate()
    events = recorded.apply_events()
    app, source = app_for(apply=[*events[:6], gate, *events[6:]])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ConfirmApplyScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.view.running)
        await pilot.press("c")
        await until(pilot, lambda: not app.screen.view.running)
        assert source.runs[-1].cancelled.is_set()
        status = text_of(app, "#apply-status")
        assert "apply cancelled: 0 changes done · not run:" in status and "FAILED" not in status
        assert not app.screen.runner.running


async def test_new_host_key_is_asked_on_screen(app_for: AppFor) -> None:
    from homelab.events import HostFailed

    plan = recorded.unreachable(recorded.plan_events(), "h2", "h2: unknown host key refused", "")
    plan = [e for e in plan if not isinstance(e, HostFailed)]  # the replay says it when refused
    asked = [plan[0], AskHostKey("h1", "10.44.0.2:22", "SHA256:abc"), AskHostKey("h2", "10.44.0.3:22", "SHA256:def"),
             *plan[1:]]
    app, source = app_for(plan=asked)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen))
        assert "SHA256:abc" in str(app.screen.query("Static")[1].render())
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, HostKeyScreen) and app.screen.host == "h2")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, PlanScreen) and app.screen.view.finished is not None)
        assert "h2: unknown host key refused" in text_of(app, "#plan-summary")
    assert source.runs[-1].answers == [("h1", True), ("h2", False)]
    assert source.requests[0].command == "status" and source.requests[0].ask_host_key is None  # status never asks


# ------------------------------------------------------------------ dashboard --
async def test_dashboard_panes_refresh_live_and_drill_down(app_for: AppFor) -> None:
    app, source = app_for(status=[recorded.status_events(), recorded.status_events(recorded.all_ok_monitors())])
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None
                    and all(p.is_mounted for p in app.screen.query(LayerPane)))
        await pilot.pause()
        panes = {p.layer_view.name: p for p in app.screen.query(LayerPane)}
        assert list(panes) == ["billing", "privilege", "mesh", "permissions", "compute"]
        mesh = str(panes["mesh"].render())
        assert mesh.startswith("FAIL") and "checked 22:13:21" in mesh and "h1<->h3" in mesh
        assert panes["mesh"].has_class("-fail")
        await pilot.press("r")
        await until(pilot, lambda: app.screen.view.runs == 2 and app.screen.view.finished is not None)
        await until(pilot, lambda: "checked 22:14:21" in str(app.screen.query_one("#pane-mesh", LayerPane).render()))
        mesh = str(app.screen.query_one("#pane-mesh", LayerPane).render())
        assert mesh.startswith("OK") and "checked 22:14:21" in mesh
        app.screen.query_one("#pane-mesh", LayerPane).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, LayerDetailScreen))
        grid = app.screen.query_one(MeshMatrix)
        assert grid.display and grid.row_count == 3
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
    assert source.commands().count("status") >= 2


async def test_dashboard_says_unreachable_hosts_in_words(app_for: AppFor) -> None:
    events = recorded.unreachable(recorded.status_events(), "h3", "h3: connection refused", "is sshd running on h3?")
    app, _ = app_for(status=events)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.view.finished is not None)
        # the view is final; its redraw comes on the next frame tick (redraws are rate-capped)
        await until(pilot, lambda: "UNREACHABLE" in text_of(app, "#run-line"))
        line = text_of(app, "#run-line")
        assert "h3 UNREACHABLE: h3: connection refused (hint: is sshd running on h3?)" in line


async def test_output_floods_are_coalesced(app_for: AppFor, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = ApplyScreen.show_view
    monkeypatch.setattr(ApplyScreen, "show_view", lambda self, view: (calls.append(1), original(self, view)))
    flood = recorded.output_flood(3000)
    app, _ = app_for(apply=flood)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        started = time.monotonic()
        app.start_apply(ApplyChoice())
        await until(pilot, lambda: isinstance(app.screen, ApplyScreen) and app.screen.view.finished is not None
                    and app.screen.view.host("h1").last_line == "line 2999", timeout=20)
        await pilot.pause(0.1)
        elapsed = time.monotonic() - started
        assert "line 2999" in str(app.screen.query_one("#hosts").get_cell("h1", "last"))  # the last redraw came
    # redraws are capped in time (REDRAW_SECONDS), however fast the lines come
    assert len(calls) <= elapsed / REDRAW_SECONDS + 3 and len(calls) < len(flood) / 10


async def test_help_lists_every_binding(app_for: AppFor) -> None:
    app, _ = app_for()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        text = str(app.screen.query_one("#help-text", Static).render())
        rows = help_rows(help_sections())
        for section, keys, what in rows:
            assert f"{keys:<22}{what}" in text, (section, keys, what)
        for screen in (DashboardScreen, PlanScreen, ApplyScreen, WizardScreen, LayerDetailScreen):
            for b in screen.BINDINGS:
                assert b.description in text  # type: ignore[union-attr]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


async def test_invalid_config_lists_problems_as_validate_does(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("version: 1\ncompute:\n  machines:\n    - {name: Pi, address: 10.0.0.1, port: 0}\n")
    app = HomelabApp(path, source_factory=lambda p: _source())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConfigErrorScreen))
        text = text_of(app, "#config-problems")
        from homelab.errors import ConfigError

        with pytest.raises(ConfigError) as err:
            load_config(path)
        for line in err.value.render().splitlines():
            assert line in text
        path.write_text("version: 1\n")
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))


def _source() -> Any:
    from tests.tui.conftest import make_source

    return make_source()


def test_recordings_start_with_run_started() -> None:
    for events in (recorded.status_events(), recorded.plan_events(), recorded.apply_events()):
        assert isinstance(events[0], RunStarted)


async def test_apps_drill_down_rolls_back_the_selected_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """b / s on an app's row run that app's rollback / restart off the UI thread; other layers hide the keys."""
    from textual.app import App as TextualApp

    from homelab.model import Health, Monitor
    from homelab.tui.view_state import LayerView, RunView

    calls: list[tuple[str, str, str]] = []

    def fake(what: str, config: str, app_name: str) -> tuple[bool, str]:
        calls.append((what, config, app_name))
        return True, f"{app_name}: rolled back"

    monkeypatch.setattr("homelab.tui.app_actions.run_app_action", fake)
    monitors = (Monitor("apps", "cal.radicale", "running", Health.OK, "running, healthy", 1.0),
                Monitor("apps", "feeds", "http", Health.FAIL, "no HTTP answer on its port", 1.0))

    class Host(TextualApp[None]):
        config_path = tmp_path / "c.yaml"

    for layer, shown in (("apps", True), ("mesh", False)):
        app = Host()
        async with app.run_test(size=SIZE) as pilot:
            screen = LayerDetailScreen(LayerView(layer, 6, "applications", monitors=monitors), RunView())
            await app.push_screen(screen)
            await pilot.pause()
            assert (screen.check_action("app_action", ("rollback",)) is True) is shown
            if shown:
                await pilot.press("b")  # the worst row first: feeds
                await until(pilot, lambda: bool(calls))
                assert calls == [("rollback", str(tmp_path / "c.yaml"), "feeds")]
                await pilot.press("down", "s")
                await until(pilot, lambda: len(calls) == 2)
                assert calls[1][0] == "restart" and calls[1][2] == "cal"


async def test_a_copy_of_an_app_on_several_machines_is_that_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rows of one copy (`hello@h2.whoami`, from `machines: [h1, h2]`) act on the app `hello`."""
    from textual.app import App as TextualApp

    from homelab.model import Health, Monitor
    from homelab.tui.view_state import LayerView, RunView

    calls: list[str] = []
    monkeypatch.setattr("homelab.tui.app_actions.run_app_action",
                        lambda what, config, name: (calls.append(name), (True, f"{name}: restarted"))[1])
    monitors = (Monitor("apps", "hello@h2.whoami", "running", Health.FAIL, "container is exited", 1.0),)

    class Host(TextualApp[None]):
        config_path = tmp_path / "c.yaml"

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        screen = LayerDetailScreen(LayerView("apps", 6, "applications", monitors=monitors), RunView())
        await app.push_screen(screen)
        await pilot.pause()
        assert screen.selected_app() == "hello"
        await pilot.press("s")
        await until(pilot, lambda: bool(calls))
        assert calls == ["hello"]


async def test_storage_drill_down_backs_up_and_drills_the_selected_app(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """n / d on an app's backup row run `backup run` / `drill` of that app and repository off the UI
    thread; a host's row (append-only) is no app's; other layers hide the keys."""
    from textual.app import App as TextualApp

    from homelab.model import Health, Monitor
    from homelab.tui.view_state import LayerView, RunView

    calls: list[tuple[str, str, str, str | None]] = []

    def fake(what: str, config: str, app_name: str, repo: str | None) -> tuple[bool, str]:
        calls.append((what, config, app_name, repo))
        return True, f"ok {app_name} -> {repo}"

    monkeypatch.setattr("homelab.tui.app_actions.run_storage_action", fake)
    monitors = (Monitor("storage", "feeds-db->nas", "backup", Health.FAIL, "last backup 2d ago failed (exit 1)", 1.0),
                Monitor("storage", "cal->nas", "drill", Health.WARN, "no restore drill has run yet", 1.0),
                Monitor("storage", "h1->nas", "append-only", Health.OK, "rest-server refused a delete (403)", 1.0))

    class Host(TextualApp[None]):
        config_path = tmp_path / "c.yaml"

    for layer, shown in (("storage", True), ("apps", False)):
        app = Host()
        async with app.run_test(size=SIZE) as pilot:
            screen = LayerDetailScreen(LayerView(layer, 4, "storage", monitors=monitors), RunView())
            await app.push_screen(screen)
            await pilot.pause()
            assert (screen.check_action("storage_action", ("backup",)) is True) is shown
            if not shown:
                continue
            await pilot.press("n")  # the worst row first: feeds-db's backup
            await until(pilot, lambda: bool(calls))
            assert calls == [("backup", str(tmp_path / "c.yaml"), "feeds-db", "nas")]
            await pilot.press("down", "d")
            await until(pilot, lambda: len(calls) == 2)
            assert calls[1][0] == "drill" and calls[1][2:] == ("cal", "nas")
            await pilot.press("l")  # its snapshots, shown in the detail area
            await until(pilot, lambda: len(calls) == 3)
            assert calls[2][0] == "list"
            await until(pilot, lambda: "ok cal -> nas" in str(screen.query_one("#monitor-detail", Static).render()))
            await pilot.press("down")
            assert screen.selected_backup() is None  # a host's row
            await pilot.press("n")
            await pilot.pause()
            assert len(calls) == 3
