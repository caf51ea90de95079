"""Benchmark: a cold converge of the whole stack on fresh lab hosts, time per layer.

Not a timed test: run it by hand (root, lab tools installed):
    sudo .venv/bin/python bench/cold_apply.py [--hosts 3] [--rounds 1]

Each round resets the hosts to pristine Debian, writes the `homelab lab demo` config (every
built layer: mesh, permissions, storage with rest-server, ingress with Caddy and Anubis, apps
from recipes, the lab registry's images) and times `homelab apply --yes` from nothing. Per
layer it reports the wall seconds between the layer's start and finish in the run log (a
layer that plans again within the apply counts all its passes); per host how many apt
transactions ran (apt's own history: one per host is the target, package claims). Then a
second apply must change nothing, and its time is reported too. Lab instance:
HOMELAB_LAB_INSTANCE (default 6).
"""
from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
APT_RUNS = "grep -c '^Start-Date' /var/log/apt/history.log 2>/dev/null || true"
EVENT = re.compile(r"^(\S+ \S+) INFO homelab: Layer(Started|Finished)\(layer='([a-z]+)'")


def layer_seconds(log: str) -> dict[str, float]:
    """Pure: seconds from each layer's LayerStarted to its LayerFinished, in run order."""
    started: dict[str, datetime] = {}
    out: dict[str, float] = {}
    for line in log.splitlines():
        m = EVENT.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if m.group(2) == "Started":
            started[m.group(3)] = at
        elif m.group(3) in started:
            out[m.group(3)] = (at - started[m.group(3)]).total_seconds()
    return out


def connect_and_probe(log: str) -> float:
    """Pure: seconds from the run's start to the first layer (connect + the one probe per host)."""
    times = [datetime.strptime(ln[:23], "%Y-%m-%d %H:%M:%S,%f") for ln in log.splitlines()
             if "RunStarted(" in ln or "LayerStarted(" in ln]
    return (times[1] - times[0]).total_seconds() if len(times) > 1 else float("nan")


def apt_runs(lab, hosts: list[str]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {h: int(lab.run(h, APT_RUNS, check=True).stdout.strip() or 0) for h in hosts}


def homelab(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    p = subprocess.run([str(BIN / "homelab"), *argv], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=3600)
    return time.monotonic() - t0, p


def latest_log(xdg: Path) -> str:
    logs = sorted((xdg / "homelab" / "logs").glob("*-apply.log"), key=lambda f: f.stat().st_mtime)
    return logs[-1].read_text()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="leave the lab up")
    args = ap.parse_args()
    os.environ.setdefault("HOMELAB_LAB_INSTANCE", "6")
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "homelab")], check=True,
                   stdout=subprocess.DEVNULL)  # as bench/noop_apply.py: no recompiling in timed runs
    from homelab.lab import Lab
    from homelab.lab.demo import render_demo_config

    lab = Lab()
    lab.down()
    hosts = lab.up(args.hosts)
    lab.ensure_images()
    rounds: list[tuple[float, dict[str, float], float, dict[str, int], float]] = []
    try:
        for _ in range(args.rounds):
            lab.reset(*hosts)
            before = apt_runs(lab, hosts)
            with tempfile.TemporaryDirectory(prefix="hlcold-") as tmp:
                work = Path(tmp)
                secret = work / "lab.restic-password"
                secret.write_text(secrets.token_urlsafe(32) + "\n")
                secret.chmod(0o600)
                cfg = work / "lab.yaml"
                cfg.write_text(render_demo_config(lab.inventory(), str(secret)))
                env = {"XDG_STATE_HOME": str(work / "xdg")}
                load = os.getloadavg()[0]
                secs, p = homelab(["apply", str(cfg), "--yes", "--accept-new-host-keys"], env)
                if p.returncode != 0:
                    raise SystemExit(f"cold apply failed:\n{p.stdout[-4000:]}\n{p.stderr[-2000:]}")
                log = latest_log(work / "xdg")
                after = apt_runs(lab, hosts)
                noop, q = homelab(["apply", str(cfg), "--yes"], env)
                if q.returncode != 0 or "apply ok: 0 change(s)" not in q.stderr:
                    raise SystemExit(f"the second apply was not a no-op:\n{q.stdout[-3000:]}\n{q.stderr[-2000:]}")
                rounds.append((secs, layer_seconds(log) | {"(connect + probe)": connect_and_probe(log)},
                               noop, {h: after[h] - before[h] for h in hosts}, load))
    finally:
        if not args.keep:
            lab.down()
    print(f"cold converge of the whole stack on {args.hosts} fresh hosts, {args.rounds} round(s), "
          f"load at start {', '.join(f'{r[4]:.1f}' for r in rounds)}")
    print("| layer | seconds (median) |\n|---|---:|")
    for name in rounds[0][1]:
        print(f"| {name} | {statistics.median(r[1].get(name, float('nan')) for r in rounds):.1f} |")
    print(f"| **whole apply** | {statistics.median(r[0] for r in rounds):.1f} |")
    print(f"second apply (no-op): {statistics.median(r[2] for r in rounds):.2f} s")
    print(f"apt transactions per host: {rounds[-1][3]}")
    return 0 if all(set(r[3].values()) == {1} for r in rounds) else 1


if __name__ == "__main__":
    raise SystemExit(main())
