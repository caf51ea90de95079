"""The real `homelab` command in a terminal (tmux, 80x24), driven by keys, against lab hosts.

A person's first session: no config yet, so the wizard; answers for two lab machines
(adopted as admin with the lab's key, joined in the mesh, admin as the operator user);
the config is written, the plan asks about each new host key on screen, apply runs with its
progress, and the dashboard shows every layer reaching its expected state. Then the
headless path reads the TUI-written config and finds nothing left to do.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.util import homelab

pytestmark = pytest.mark.lab


class Terminal:
    """One tmux server of our own (its own socket): keys in, screen text out."""

    def __init__(self, cwd: Path, command: str, env: dict[str, str]) -> None:
        self.socket = f"homelab-tui-e2e-{os.getpid()}"
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # the shell stays after the app exits so its exit code can be read from the screen
        script = f"env {exports} {command}; echo EXIT=$?; sleep 600"
        self.tmux("new-session", "-d", "-s", "tui", "-x", "80", "-y", "24", "-c", str(cwd), script)

    def tmux(self, *args: str) -> str:
        out = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise AssertionError(f"tmux {args[0]}: {out.stderr}")
        return out.stdout

    def keys(self, *keys: str, pause: float = 0.15) -> None:
        for k in keys:  # one at a time: a terminal app reads a burst of escape sequences as one key
            self.tmux("send-keys", "-t", "tui", k)
            time.sleep(pause)
            if k == "Enter":  # it may add a row that takes the focus: type only once it is drawn
                self.settle()

    def settle(self, quiet: float = 0.6, timeout: float = 10.0) -> None:
        """Wait until the screen has not changed for `quiet` seconds (a loaded machine draws late)."""
        deadline = time.monotonic() + timeout
        last, since = self.screen(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < quiet:
            time.sleep(0.1)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "tui", "-l", text)
        time.sleep(0.3)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "tui")

    def wait_for(self, pattern: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text, re.M):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"not on screen after {timeout:.0f} s: {pattern!r}\n{text}")
            time.sleep(0.25)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Any]:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    made: list[Terminal] = []

    def start(command: str, env: dict[str, str]) -> Terminal:
        term = Terminal(tmp_path, command, env)
        made.append(term)
        return term

    yield start
    for term in made:
        term.close()


def test_wizard_plan_apply_dashboard_in_a_real_terminal(lab: Any, terminal: Any, tmp_path: Path) -> None:
    started = time.monotonic()
    a, b = lab.add(count=2)  # fresh hosts: this test hardens them (root login off, firewall)
    key = str(lab.inventory()["ssh_key"])
    addresses = lab.hosts
    env = {"XDG_STATE_HOME": str(tmp_path / "xdg"), "HOMELAB_TUI_REFRESH": "3", "TERM": "xterm-256color",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    term = terminal(f"{shlex.quote(sys.executable)} -m homelab", env)

    # ------------------------------------------------------------------ wizard
    term.wait_for(r"\[-1 budget\]")
    term.keys("C-n")  # no budget: no cloud servers here
    term.wait_for(r"\[0 access\]")
    term.keys("C-u")
    term.type(key)
    term.keys("C-n")
    term.wait_for(r"\[3 machines\]")  # machines first: the mesh and users steps name them
    term.keys("Enter")  # "+ add a machine"
    for i, name in enumerate((a, b)):
        if i:
            term.keys("Tab", "Tab", "Tab", "Enter")  # key -> ipv6 -> remove -> "+ add a machine"
        term.type(name)
        term.keys("Tab")
        term.type(addresses[name])
        term.keys("Tab", "C-u")
        term.type("admin")
        term.keys("Tab", "Tab")  # port 22 stays
        term.type(key)
    term.keys("C-n")
    term.wait_for(r"\[1 mesh!?\]")  # "!": every machine has a private address, so none can be dialled yet
    term.keys("Tab", "Tab", "Tab", "Enter")  # tick box, range, port -> "+ add a node"
    for i, name in enumerate((a, b)):
        if i:
            term.keys("Tab", "Tab", "Enter")  # endpoint -> remove -> "+ add a node"
        term.type(name)
        term.keys("Tab", "Tab")  # past the name's ▾ (its pick list) to the endpoint
        term.type("auto")  # lab machines reach each other at the address homelab uses
    term.wait_for(r"\[1 mesh\]")
    screen = term.screen()
    assert "mesh!" not in screen and "is not a compute machine" not in screen, screen  # the machines exist
    term.keys("C-n")
    term.wait_for(r"\[2 users\]")
    term.keys("Enter")
    term.type("admin")
    # the upper layers' steps: left empty, they write no section (storage, ingress, apps)
    for step in (r"\[4 storage\]", r"\[5 \w+", r"\[6 apps\]"):
        term.keys("C-n")
        term.wait_for(step)
    term.keys("C-n")
    term.wait_for(r"\[write\]")
    term.keys("Tab", "Enter")  # path "config.yaml" -> "write config and review the plan"

    # -------------------------------------------------------------------- plan
    config = tmp_path / "config.yaml"
    for name in (a, b):  # every new host key is asked about, with its fingerprint
        screen = term.wait_for(r"New machine: (h\d+)", timeout=60)
        assert "SHA256:" in screen
        term.keys("y")
        time.sleep(0.5)
    screen = term.wait_for(r"plan: \d+ changes? in \d+ layers?", timeout=90)
    assert "2/2 hosts reached" in screen
    assert config.exists() and f"name: {a}" in config.read_text()

    # ------------------------------------------------------------------- apply
    term.keys("a")
    term.wait_for(r"Apply \d+ changes?")
    term.keys("y")
    term.wait_for(r"applying…|apply ok", timeout=30)
    screen = term.wait_for(r"apply ok: \d+ changes?|apply FAILED", timeout=180)
    assert "apply ok" in screen, screen
    for layer in ("0 privilege", "1 mesh", "2 permissions", "3 compute"):
        assert re.search(rf"\[done\]\s+{layer}\s+done", screen), (layer, screen)

    # --------------------------------------------------------------- dashboard
    term.keys("d")
    expected = {  # the word each layer's pane must show
        "-1 billing": "OFF", "0 privilege": "OK", "1 mesh": "OK", "3 compute": "OK"}
    deadline = time.monotonic() + 45
    while True:
        screen = term.screen()
        words = {m.group(2): m.group(1) for m in re.finditer(r"^▌ (OK|WARN|FAIL|UNKNOWN|OFF)\s+layer (-?\d \w+)",
                                                               screen, re.M)}
        good = all(words.get(k) == v for k, v in expected.items()) and words.get("2 permissions") in ("OK", "WARN")
        if good:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"dashboard did not settle: {words}\n{screen}")
        time.sleep(1)
    assert "FAIL" not in screen, screen
    term.keys("q")
    term.wait_for(r"EXIT=0")

    # the headless path reads the TUI-written config the same way: nothing left to do
    plan = homelab("plan", str(config), env={"XDG_STATE_HOME": str(tmp_path / "xdg")})
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert time.monotonic() - started < 240
