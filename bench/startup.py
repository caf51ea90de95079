"""Start-up: `homelab --version` and `homelab validate` from the venv and from the executables.

Each run is a fresh process (wall time from spawn to exit), the variants interleaved round by
round so all see the same background load. Variants:
- `venv`: `python -m homelab` from the development install;
- `homelab`: the downloadable file (build/selfextract.py: PyInstaller's one-dir build behind an
  sh launcher) as every start after its first runs it, from its unpacked cache;
- `homelab-first`: the same file's first start on a machine (its cache emptied before every run:
  the unpacking is in the time);
- `pyi-onefile` (with --pyi-onefile F): PyInstaller's own one-file build
  (HOMELAB_PYI_ONEFILE=1 pyinstaller build/homelab.spec), which unpacks at every start.

    python bench/startup.py --homelab dist/homelab [--pyi-onefile F] [--runs 11]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.example.yaml"
CACHE = Path(tempfile.mkdtemp(prefix="homelab-bench-cache-"))


def once(argv: list[str], fresh: bool) -> float:
    cache = CACHE / ("first" if fresh else "warm")
    if fresh:
        shutil.rmtree(cache, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
                   env={**os.environ, "HOMELAB_CACHE_DIR": str(cache)})
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--homelab", type=Path, help="the downloadable file (dist/homelab)")
    ap.add_argument("--pyi-onefile", type=Path, help="PyInstaller's one-file build, to compare")
    ap.add_argument("--runs", type=int, default=11)
    args = ap.parse_args()
    variants = {"venv": [sys.executable, "-m", "homelab"]}
    if args.homelab is not None:
        variants["homelab"] = variants["homelab-first"] = [str(args.homelab)]
    if args.pyi_onefile is not None:
        variants["pyi-onefile"] = [str(args.pyi_onefile)]
    commands = {"--version": ["--version"], "validate": ["validate", str(CONFIG)]}
    times: dict[tuple[str, str], list[float]] = {(v, c): [] for v in variants for c in commands}
    # First starts run after the others, not among them: each unpacks ~60 MB, and its writeback
    # slowed the next warm runs by ~60 ms here (0.32 s interleaved, 0.26 s on their own).
    warm = [k for k in times if k[0] != "homelab-first"]
    for keys in (warm, [k for k in times if k not in warm]):
        for _ in range(args.runs + 1):  # the first round warms the page cache, not counted
            for v, c in keys:
                times[(v, c)].append(once(variants[v] + commands[c], fresh=v == "homelab-first"))
    print(f"start-up, {args.runs} interleaved runs (first starts after the rest), median [min-max] s")
    print("| variant | size MB | --version | validate |")
    print("|---|---:|---:|---:|")
    for v, argv in variants.items():
        size = "-" if v == "venv" else f"{Path(argv[0]).stat().st_size / 1e6:.1f}"
        cells = []
        for c in commands:
            xs = times[(v, c)][1:]
            cells.append(f"{statistics.median(xs):.2f} [{min(xs):.2f}-{max(xs):.2f}]")
        print(f"| {v} | {size} | {' | '.join(cells)} |")
    shutil.rmtree(CACHE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
