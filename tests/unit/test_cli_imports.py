"""Import hygiene: the headless CLI never loads Textual; the TUI never loads the provisioning stack.

Checked in fresh interpreters (a test process has everything imported already), the way
harlequin checks its headless path.
"""
from __future__ import annotations

import json
import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_cli_import_does_not_load_textual() -> None:
    mods = _modules_after("import homelab.cli; homelab.cli.build_parser()")
    assert "homelab.cli" in mods
    assert not {m for m in mods if m == "textual" or m.startswith(("textual.", "homelab.tui"))}


def test_tui_import_does_not_load_pyinfra_hcloud_paramiko() -> None:
    mods = _modules_after("import homelab.tui.app")
    assert "textual" in mods
    heavy = {m for m in mods if m.split(".")[0] in ("pyinfra", "hcloud", "paramiko", "gevent")}
    assert heavy == set()
    assert "homelab.engine" not in mods  # imported inside the worker thread only
