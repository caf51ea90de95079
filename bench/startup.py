"""Start-up: `homelab --version` and `homelab validate` from the venv and from the executables.

Each run is a fresh process (wall time from spawn to exit), the variants interleaved round by
round so all see the same background load. The one-file executable unpacks itself into a temp
dir at every start; the one-dir build (HOMELAB_ONEDIR=1 pyinstaller build/homelab.spec) does not.

    python bench/startup.py [--onefile dist/homelab] [--onedir dist-onedir/homelab/homelab] [--runs 11]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.example.yaml"


def once(argv: list[str]) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onefile", type=Path)
    ap.add_argument("--onedir", type=Path)
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    variants = {"venv": [sys.executable, "-m", "homelab"]}
    for name in ("onefile", "onedir"):
        path = getattr(args, name)
        if path is not None:
            variants[name] = [str(path)]
    commands = {"--version": ["--version"], "validate": ["validate", str(CONFIG)]}
    times: dict[tuple[str, str], list[float]] = {(v, c): [] for v in variants for c in commands}
    for _ in range(args.runs + 1):  # the first round warms the page cache, not counted
        for (v, c), out in times.items():
            out.append(once(variants[v] + commands[c]))
    print(f"start-up, {args.runs} interleaved runs, median [min-max] s")
    print("| variant | size MB | --version | validate |")
    print("|---|---:|---:|---:|")
    for v, argv in variants.items():
        p = Path(argv[0])
        size = "-" if v == "venv" else f"{sum(f.stat().st_size for f in p.parent.rglob('*') if f.is_file()) / 1e6:.1f}" \
            if v == "onedir" else f"{p.stat().st_size / 1e6:.1f}"
        cells = []
        for c in commands:
            xs = times[(v, c)][1:]
            cells.append(f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]")
        print(f"| {v} | {size} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
