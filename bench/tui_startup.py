"""TUI start-up: time from process start to the first screen painted, headless.

Each run is a fresh `python` process that goes through the real front door
(`homelab.cli.main(["tui", ...])`) with two changes made from outside: the app runs
headless, and it exits when Textual reports its first frame (`events.Ready`). The time
is measured from just before the process is spawned (interpreter start included) to that
frame. Both first screens are measured: the wizard (no config yet) and the dashboard of a
config whose only machine is on loopback (its status run, started at mount, touches no
network but this machine).

    python bench/tui_startup.py [--runs 7] [--check]     # --check: exit 1 if a median >= 0.5 s
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.5  # issue 13: TUI first paint under 0.5 s

CHILD = r"""
import sys, time
from homelab.tui import app as tui

run = tui.HomelabApp.run

def first_frame(self, event=None):
    print(f"PAINTED {time.time():.6f} {type(self.screen).__name__}", flush=True)
    self.exit()

tui.HomelabApp.on_ready = first_frame
tui.HomelabApp.run = lambda self, *a, **k: run(self, headless=True, size=(80, 24))
from homelab.tui.app import run_tui  # (not `homelab tui`: that refuses to start without a terminal)
sys.exit(run_tui(sys.argv[1] if len(sys.argv) > 1 else None))
"""

CONFIG = """version: 1
compute:
  machines:
    - {name: bench-1, address: 127.0.0.1, port: 9, user: root}
"""


def one_run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env, timeout=60)
    for line in proc.stdout.splitlines():
        if line.startswith("PAINTED "):
            _, ts, screen = line.split()
            return float(ts) - t0, screen
    raise RuntimeError(f"no first frame (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if a median is {TARGET_S:g} s or more")
    opts = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="homelab-bench-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(CONFIG)
        env = {**os.environ, "XDG_STATE_HOME": tmp, "PYTHONPATH": str(root), "HOMELAB_TUI_REFRESH": "3600"}
        cases = {"wizard (no config)": [str(Path(tmp) / "new.yaml")], "dashboard (config)": [str(config)]}
        one_run(cases["wizard (no config)"], env)  # warm the OS file cache once, as a second start would be
        slow = False
        for name, args in cases.items():
            times = []
            screens = set()
            for _ in range(opts.runs):
                secs, screen = one_run(args, env)
                times.append(secs)
                screens.add(screen)
            median = statistics.median(times)
            slow = slow or median >= TARGET_S
            print(f"{name:<20} first paint median {median:.3f} s  (min {min(times):.3f}, max {max(times):.3f}, "
                  f"{opts.runs} runs, screen {', '.join(sorted(screens))})  target < {TARGET_S:g} s: "
                  f"{'ok' if median < TARGET_S else 'SLOW'}")
    return 1 if opts.check and slow else 0


if __name__ == "__main__":
    raise SystemExit(main())
