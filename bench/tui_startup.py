"""TUI start-up: time from process start to the first screen on a terminal.

Each run starts `homelab tui` as a person's shell would: a fresh process on a pseudo-terminal
of 80x24 (TERM=xterm-256color), with nothing patched inside it, so the executable is measured
the same way as the venv. The time runs from just before the spawn (interpreter start
included) to the moment the terminal has received the first screen's title: that is when a
person sees it. Textual's own "ready" (`events.Ready`) comes earlier than the bytes: work
scheduled right after it (the wizard building its other steps) once ran before the frame was
written and delayed it by 0.15 s, unseen by a headless measure. Both first screens: the
wizard (no config yet) and the dashboard of a config whose only machine is on loopback (its
status run, started at mount, touches no network but this machine).

    python bench/tui_startup.py [--runs 7] [--homelab dist/homelab] [--check]
        --homelab: also time this executable; --check: exit 1 if a median >= 0.5 s
"""
from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path

TARGET_S = 0.5  # issue 13: TUI first paint under 0.5 s

CONFIG = """version: 1
compute:
  machines:
    - {name: bench-1, address: 127.0.0.1, port: 9, user: root}
"""


def first_paint(argv: list[str], title: bytes, env: dict[str, str], timeout: float = 30.0) -> float:
    """Seconds from spawning `argv` on a new 80x24 terminal to `title` arriving on it."""
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes homelab on the terminal
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    seen = b""
    try:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        while time.monotonic() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal: it ended without painting
                break
            seen += chunk
            if title in seen:
                return time.monotonic() - t0
        raise RuntimeError(f"no first screen on the terminal: {seen[-1500:]!r}")
    finally:
        os.kill(pid, signal.SIGKILL)  # only the process started here
        os.waitpid(pid, 0)
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--homelab", metavar="PATH", help="an executable to time beside the venv")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a median is {TARGET_S:g} s or more")
    opts = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    variants = {"venv": [sys.executable, "-m", "homelab"]}
    if opts.homelab:
        variants["executable"] = [str(Path(opts.homelab).resolve())]
    with tempfile.TemporaryDirectory(prefix="homelab-bench-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        env = {**os.environ, "XDG_STATE_HOME": tmp, "PYTHONPATH": str(root), "HOMELAB_TUI_REFRESH": "3600",
               "TERM": "xterm-256color"}
        env.pop("SSH_CONNECTION", None)  # the wizard would preselect "this machine"; same screen either way
        cases = {"wizard (no config)": ([str(Path(tmp) / "new.yaml")], b"new config"),
                 "dashboard (config)": ([str(config)], b"dashboard")}
        for command in variants.values():  # warm the OS file cache (and unpack the executable) once
            first_paint([*command, "tui", *cases["wizard (no config)"][0]], b"new config", env)
        slow = False
        print(f"TUI first paint on an 80x24 terminal, {opts.runs} runs each, median [min-max] s")
        for variant, command in variants.items():
            for name, (args, title) in cases.items():
                times = [first_paint([*command, "tui", *args], title, env) for _ in range(opts.runs)]
                median = statistics.median(times)
                slow = slow or median >= TARGET_S
                print(f"{variant:<11} {name:<20} {median:.3f} [{min(times):.3f}-{max(times):.3f}]  "
                      f"target < {TARGET_S:g} s: {'ok' if median < TARGET_S else 'SLOW'}")
    return 1 if opts.check and slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
