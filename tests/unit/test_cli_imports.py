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


HEAVY = ("pyinfra", "paramiko", "hcloud", "textual", "cryptography", "gevent", "nacl", "requests", "rich")


def test_version_and_validate_import_nothing_heavy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Start-up: `--version` answers before the parser is built; `validate` loads the config
    parsers only (no layer, no SSH, no cloud client, no TUI)."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "config.example.yaml"
    env_code = f"import os; os.environ['XDG_STATE_HOME'] = {str(tmp_path)!r}\n"
    version = _modules_after(env_code + "import homelab.cli as c; c.main(['--version'])")
    # (class_cache: a few standard modules, installed with the package, before any dataclass)
    assert {m for m in version if m.startswith("homelab.")} <= {"homelab.cli", "homelab.errors", "homelab.class_cache"}
    validate = _modules_after(env_code + f"import homelab.cli as c; c.main(['validate', {str(example)!r}])")
    assert "homelab.config.schema" in validate
    assert not {m for m in version if m.split(".")[0] in HEAVY}
    # validate checks that the users' SSH public keys parse, with cryptography (config/permissions.py)
    heavy = set(HEAVY) - {"cryptography"}
    assert not {m for m in validate if m.split(".")[0] in heavy or m.startswith(("homelab.layers", "homelab.engine"))}


def test_layers_load_no_cloud_client_and_paramiko_without_invoke() -> None:
    """Every apply imports all layers: the cloud client waits for a layer that talks to the cloud
    (~0.2 s), and paramiko comes without invoke (only its ssh_config `Match exec` uses it)."""
    mods = _modules_after("import homelab.layers as L; L.all_layers()")
    assert "paramiko" in mods
    assert not {m for m in mods if m.split(".")[0] in ("hcloud", "requests", "pyinfra", "textual")}
    assert not {m for m in mods if m.startswith("invoke.")}  # homelab/ssh.py blocks the import itself
    assert "importlib.metadata" not in mods  # paramiko's version comes from its dist-info folder's name


def test_paramiko_reports_its_real_version_and_metadata_still_works() -> None:
    out = subprocess.run([sys.executable, "-c", "import homelab.ssh, paramiko, sys\n"
                          "print(paramiko.__version__, 'importlib.metadata' in sys.modules)\n"
                          "import importlib.metadata as m\n"
                          "print(m.version('paramiko'), m.version('PyYAML'))"],
                         capture_output=True, text=True, check=True, timeout=60).stdout.split()
    assert out[1] == "False" and out[0] == out[2] and out[0][0].isdigit() and out[3][0].isdigit()


def test_the_stand_in_hands_every_other_question_to_importlib_metadata() -> None:
    import importlib.metadata

    from homelab.paramiko_import import _OwnVersion, dist_version

    stand_in = _OwnVersion({"paramiko": "0.0-told"})
    assert stand_in.version("paramiko") == "0.0-told"
    assert stand_in.version("PyYAML") == importlib.metadata.version("PyYAML")
    assert stand_in.PackageNotFoundError is importlib.metadata.PackageNotFoundError
    assert dist_version("paramiko") == importlib.metadata.version("paramiko")
    assert dist_version("homelab_no_such_package") is None
