"""The Textual app: which screen comes first and the hand-offs between screens — nothing else.

No config (or a path that does not exist yet): the wizard, which writes the config and goes
on to the plan. An existing config: the dashboard, with plan review and apply one key away.
Runs come from an `EventSource` (the engine, or recorded events in tests); screens own their
runs, the app only routes. `HOMELAB_TUI_REFRESH` sets the dashboard's refresh (seconds).
"""
from __future__ import annotations

import os
import queue
import threading
from pathlib import Path
from typing import Sequence

from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from homelab.errors import ConfigError, HomelabError

if TYPE_CHECKING:
    from homelab.tui.sources import EventSource, SourceFactory
    from homelab.tui.screens.confirm_apply import ApplyChoice
    from homelab.tui.screens.wizard import WizardScreen
    from homelab.tui.wizard.step import WizardStep

# Screens are imported where they are first shown: the first paint loads only its own
# screen (wizard or dashboard), not plan review, apply and the dialogs (bench/tui_startup.py).


class HomelabApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "homelab"
    ENABLE_COMMAND_PALETTE = False  # ctrl+p is "previous step" in the wizard
    BINDINGS = [
        Binding("ctrl+q", "quit", "quit", priority=True, show=False),
        Binding("f1", "help", "help", show=False),
    ]

    def __init__(self, config_path: Path | None, source_factory: SourceFactory | None = None,
                 steps: Sequence[WizardStep] | None = None, refresh_seconds: float = 15.0,
                 this_machine: bool = False) -> None:
        super().__init__()
        self.this_machine = this_machine  # the wizard starts with "this machine" (address local)
        self.config_path = config_path
        self.source_factory = source_factory  # None: the engine (EngineSource), imported with the dashboard
        self.source: EventSource | None = None
        self.steps = steps
        self.refresh_seconds = refresh_seconds
        self._quitting = threading.Event()

    def on_mount(self) -> None:
        if self.config_path is not None and self.config_path.exists():
            self.open_config(self.config_path)
        else:
            self.push_screen(self._wizard())

    def on_unmount(self) -> None:
        self._quitting.set()  # a worker waiting for a host-key answer gives up (refuses)

    def _wizard(self) -> WizardScreen:
        from homelab.tui.screens.wizard import WizardScreen

        if self.steps is None:
            from homelab.tui.wizard.steps import active_steps

            self.steps = active_steps()
        screen = WizardScreen(self.steps, self.config_path or Path("config.yaml"))
        if self.this_machine and "compute" in screen.answers:
            from homelab.tui.wizard.steps.compute import add_this_machine

            screen.answers["compute"] = add_this_machine(screen.answers["compute"])
        return screen

    def _base(self, screen: Screen[None]) -> None:
        """Make `screen` the one everything else is pushed over."""
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if len(self.screen_stack) > 1:
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    # ----------------------------------------------------------- hand-offs --
    def open_config(self, path: Path) -> bool:
        """Validate `path` and show its dashboard, or its problems."""
        from homelab.config import load_config
        from homelab.tui.screens.config_error import ConfigErrorScreen
        from homelab.tui.screens.dashboard import DashboardScreen

        try:
            load_config(path)
        except ConfigError as exc:
            self._base(ConfigErrorScreen(path, [p.render() for p in exc.problems]))
            return False
        except HomelabError as exc:
            self._base(ConfigErrorScreen(path, [exc.message], exc.hint))
            return False
        self.config_path = path
        if self.source_factory is None:
            from homelab.tui.sources import EngineSource

            self.source_factory = EngineSource
        self.source = self.source_factory(path)
        self._base(DashboardScreen(self.source, path, self.refresh_seconds))
        return True

    def on_wizard_screen_finished(self, message: WizardScreen.Finished) -> None:
        if self.open_config(message.path):
            self.open_plan(apply_after=False)

    def open_plan(self, apply_after: bool) -> None:
        from homelab.tui.screens.plan_review import PlanScreen

        assert self.source is not None and self.config_path is not None
        self.push_screen(PlanScreen(self.source, self.config_path, apply_after))

    def start_apply(self, choice: ApplyChoice) -> None:
        from homelab.tui.screens.apply import ApplyScreen

        assert self.source is not None and self.config_path is not None
        self.switch_screen(ApplyScreen(self.source, self.config_path, choice))

    def action_help(self) -> None:
        from homelab.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(help_sections()))

    # -------------------------------------------------- host keys (worker) --
    class HostKeyAsked(Message):
        """The engine (on a worker thread) waits for an answer about a never-seen host key."""

        def __init__(self, host: str, address: str, fingerprint: str) -> None:
            super().__init__()
            self.host, self.address, self.fingerprint = host, address, fingerprint
            self.answer: queue.Queue[bool] = queue.Queue(maxsize=1)

    def ask_host_key(self, host: str, address: str, fingerprint: str) -> bool:
        """Called by the engine on a worker thread: ask on screen, wait for the answer."""
        asked = self.HostKeyAsked(host, address, fingerprint)
        if self._quitting.is_set() or not self.post_message(asked):
            return False
        while not self._quitting.is_set():  # quitting: the dialog will never be answered
            try:
                return asked.answer.get(timeout=0.25)
            except queue.Empty:
                continue
        return False

    def on_homelab_app_host_key_asked(self, asked: HostKeyAsked) -> None:
        from homelab.tui.screens.host_key import HostKeyScreen

        self.push_screen(HostKeyScreen(asked.host, asked.address, asked.fingerprint),
                         callback=lambda pinned: asked.answer.put(bool(pinned)))


def help_sections() -> list[tuple[str, list[type]]]:
    from homelab.tui.screens.apply import ApplyScreen
    from homelab.tui.screens.config_error import ConfigErrorScreen
    from homelab.tui.screens.confirm_apply import ConfirmApplyScreen
    from homelab.tui.screens.dashboard import DashboardScreen
    from homelab.tui.screens.help import HelpScreen
    from homelab.tui.screens.host_key import HostKeyScreen
    from homelab.tui.screens.layer_detail import LayerDetailScreen
    from homelab.tui.screens.pick_names import PickNamesScreen
    from homelab.tui.screens.plan_review import PlanScreen
    from homelab.tui.screens.wizard import WizardScreen
    from homelab.tui.widgets.layer_pane import LayerPane
    from homelab.tui.widgets.plan_tree import PlanTree

    return [
        ("everywhere", [HomelabApp]),
        ("dashboard", [DashboardScreen, LayerPane]),
        ("layer details", [LayerDetailScreen]),
        ("plan review", [PlanScreen, PlanTree]),
        ("confirm apply", [ConfirmApplyScreen]),
        ("apply", [ApplyScreen]),
        ("new host key", [HostKeyScreen]),
        ("wizard", [WizardScreen]),
        ("wizard: pick machines", [PickNamesScreen]),
        ("config problems", [ConfigErrorScreen]),
        ("help", [HelpScreen]),
    ]


def run_tui(config_path: str | None) -> int:
    """`homelab` / `homelab tui [CONFIG]`."""
    path = Path(os.path.expanduser(config_path)) if config_path else None
    this_machine = False
    if path is None or not path.exists():  # the wizard: only then its compute step is imported
        from homelab.tui.wizard.steps.compute import on_a_server

        this_machine = on_a_server()
    app = HomelabApp(path, refresh_seconds=float(os.environ.get("HOMELAB_TUI_REFRESH", "15")),
                     this_machine=this_machine)
    app.run()
    return app.return_code or 0
