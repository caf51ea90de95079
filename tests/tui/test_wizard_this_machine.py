"""The wizard's "this machine": a machine with `address: local`, first in the list, once;
preselected when `homelab` starts without a config in an SSH login (a fresh server)."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config.schema import parse_config
from homelab.tui.app import HomelabApp
from homelab.tui.wizard.render import render_config
from homelab.tui.wizard.steps import active_steps
from homelab.tui.wizard.steps import compute
from homelab.tui.wizard.steps.compute import add_this_machine, on_a_server


def test_this_machine_is_added_once_first_and_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute.socket, "gethostname", lambda: "Debian_Box.example")
    answers = {"machines": ({"name": "pi-1", "address": "pi.example.com", "user": "root", "port": "22", "key": ""},)}
    once = add_this_machine(answers)
    assert add_this_machine(once) == once
    assert [(r["name"], r["address"]) for r in once["machines"]] == [("debian-box", "local"), ("pi-1", "pi.example.com")]
    text = render_config({"compute": once}, active_steps())
    assert "address: local" in text
    (here, pi) = parse_config(text, Path("w.yaml")).machines
    assert here.local and here.name == "debian-box" and not pi.local


def test_a_hostname_that_is_no_machine_name_gets_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute.socket, "gethostname", lambda: "42")
    assert compute.this_machine_row()["name"] == "server-42"


def test_ssh_login_means_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    assert not on_a_server()
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22")
    assert on_a_server()


async def test_wizard_opens_with_this_machine_preselected(tmp_path: Path) -> None:
    app = HomelabApp(tmp_path / "here.yaml", this_machine=True)
    async with app.run_test(size=(80, 24)):
        screen = app.screen
        rows = screen.answers["compute"]["machines"]  # type: ignore[attr-defined]
        assert [r["address"] for r in rows] == ["local"]
