"""First paint (issue 13): what the first screen has loaded when its first frame reaches the
terminal, in a fresh `homelab tui` on a pseudo-terminal (80x24), as a person starts it. Times
stay in bench/tui_startup.py; this holds the reasons they are short: each first screen loads
only itself — no other screen, no engine or SSH, and the wizard not even the config parser or
YAML (it validates after the first frame) nor the lab manager when no lab runs.

The bytes on the terminal are the measure, not Textual's "ready" event: work scheduled right
after that event once ran before the frame was written (the wizard built its other steps and
validated first, 0.15 s a person waited for), and a headless check of "ready" did not see it."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench.tui_startup import first_paint

ROOT = Path(__file__).resolve().parents[2]

# homelab with one thing added from outside: the first terminal write that carries the
# screen's title records the modules loaded by then (first_paint ends the process once the
# title is on the terminal)
CHILD = r"""
import json, os, sys
from textual.drivers import linux_driver

write = linux_driver.LinuxDriver.write

def first_frame(self, data):
    out = os.environ["FIRST_FRAME_OUT"]
    if os.environ["FIRST_FRAME_TITLE"] in data and not os.path.exists(out):
        from textual.app import active_app
        screen = type(active_app.get().screen).__name__
        with open(out + ".tmp", "w") as f:
            json.dump(sorted(sys.modules) + ["screen:" + screen], f)
        os.rename(out + ".tmp", out)
    write(self, data)

linux_driver.LinuxDriver.write = first_frame
from homelab.cli import main
sys.exit(main(["tui", sys.argv[1]]))
"""

OTHER_SCREENS = {f"homelab.tui.screens.{m}" for m in ("apply", "plan_review", "confirm_apply", "host_key", "help",
                                                       "layer_detail")}
NEVER_BEFORE_THE_FIRST_FRAME = {"homelab.engine", "homelab.ssh", "homelab.lab.manager", "paramiko", "pyinfra",
                                "hcloud", "gevent"}


def loaded_at_first_frame(config: Path, tmp_path: Path, title: str) -> set[str]:
    out = tmp_path / "first-frame.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state"),
           "HOMELAB_TUI_REFRESH": "3600", "HOMELAB_LAB_DIR": str(tmp_path / "no-lab"), "TERM": "xterm-256color",
           "FIRST_FRAME_TITLE": title, "FIRST_FRAME_OUT": str(out)}
    env.pop("SSH_CONNECTION", None)
    first_paint([sys.executable, "-c", CHILD, str(config)], title.encode(), env, timeout=120)
    return set(json.loads(out.read_text()))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("version: 1\ncompute:\n  machines:\n    - {name: h1, address: 127.0.0.1, port: 9}\n")
    return path


def test_the_wizard_paints_before_the_config_parser_yaml_and_other_screens(tmp_path: Path) -> None:
    mods = loaded_at_first_frame(tmp_path / "new.yaml", tmp_path, "new config")
    assert "screen:WizardScreen" in mods and "homelab.tui.screens.wizard" in mods
    early = mods & (OTHER_SCREENS | NEVER_BEFORE_THE_FIRST_FRAME | {"homelab.tui.screens.dashboard"})
    assert early == set()
    assert not {m for m in mods if m == "yaml" or m.startswith(("yaml.", "homelab.config"))}
    assert "homelab.config.recipe_catalog" not in mods  # the apps step reads it when it is built


def test_the_dashboard_paints_its_panes_before_any_run(config: Path, tmp_path: Path) -> None:
    mods = loaded_at_first_frame(config, tmp_path, "homelab —")
    assert "screen:DashboardScreen" in mods and "homelab.registry" in mods  # the panes: the layer catalog
    assert mods & (OTHER_SCREENS | NEVER_BEFORE_THE_FIRST_FRAME | {"homelab.tui.screens.wizard"}) == set()
    assert "homelab.tui.wizard.steps.compute" not in mods  # "this machine" matters to the wizard only
