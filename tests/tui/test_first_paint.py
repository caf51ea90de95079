"""First paint (issue 13): what the first screen has loaded when Textual reports its first
frame, in a fresh interpreter started through `run_tui` as `homelab` does. Times stay in
bench/tui_startup.py; this holds the reasons they are short: each first screen loads only
itself — no other screen, no engine or SSH, and the wizard not even the config parser or
YAML (it validates after the first frame) nor the lab manager when no lab runs."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys
from homelab.tui import app as tui

def first_frame(self, event=None):
    print("LOADED " + json.dumps(sorted(sys.modules) + ["screen:" + type(self.screen).__name__]), flush=True)
    self.exit()

tui.HomelabApp.on_ready = first_frame
run = tui.HomelabApp.run
tui.HomelabApp.run = lambda self, *a, **k: run(self, headless=True, size=(80, 24))
sys.exit(tui.run_tui(sys.argv[1]))
"""

OTHER_SCREENS = {f"homelab.tui.screens.{m}" for m in ("apply", "plan_review", "confirm_apply", "host_key", "help",
                                                       "layer_detail")}
NEVER_BEFORE_THE_FIRST_FRAME = {"homelab.engine", "homelab.ssh", "homelab.lab.manager", "paramiko", "pyinfra",
                                "hcloud", "gevent"}


def loaded_at_first_frame(config: Path, tmp_path: Path) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state"),
           "HOMELAB_TUI_REFRESH": "3600", "HOMELAB_LAB_DIR": str(tmp_path / "no-lab")}
    env.pop("SSH_CONNECTION", None)
    out = subprocess.run([sys.executable, "-c", CHILD, str(config)], capture_output=True, text=True, env=env,
                         timeout=120)
    line = next((x for x in out.stdout.splitlines() if x.startswith("LOADED ")), None)
    assert line is not None, out.stdout[-2000:] + out.stderr[-2000:]
    return set(json.loads(line.removeprefix("LOADED ")))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("version: 1\ncompute:\n  machines:\n    - {name: h1, address: 127.0.0.1, port: 9}\n")
    return path


def test_the_wizard_paints_before_the_config_parser_yaml_and_other_screens(tmp_path: Path) -> None:
    mods = loaded_at_first_frame(tmp_path / "new.yaml", tmp_path)
    assert "screen:WizardScreen" in mods and "homelab.tui.screens.wizard" in mods
    early = mods & (OTHER_SCREENS | NEVER_BEFORE_THE_FIRST_FRAME | {"homelab.tui.screens.dashboard"})
    assert early == set()
    assert not {m for m in mods if m == "yaml" or m.startswith(("yaml.", "homelab.config"))}
    assert "homelab.config.recipe_catalog" not in mods  # the apps step reads it when it is built


def test_the_dashboard_paints_its_panes_before_any_run(config: Path, tmp_path: Path) -> None:
    mods = loaded_at_first_frame(config, tmp_path)
    assert "screen:DashboardScreen" in mods and "homelab.registry" in mods  # the panes: the layer catalog
    assert mods & (OTHER_SCREENS | NEVER_BEFORE_THE_FIRST_FRAME | {"homelab.tui.screens.wizard"}) == set()
    assert "homelab.tui.wizard.steps.compute" not in mods  # "this machine" matters to the wizard only
