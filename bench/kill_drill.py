"""The kill -9 drill, long form: homelab apply killed (process group, SIGKILL) at N random
moments across applies of the built layers on 3 lab hosts; after each the state file is
there and valid; at the end one apply converges and plan has nothing to do.

Not a timed test: run it by hand (root, lab tools installed):
    sudo HOMELAB_LAB_INSTANCE=7 .venv/bin/python bench/kill_drill.py [--kills 200] [--seed 7]

It brings up hosts h1-h3 of that lab instance (reset first), runs the same drill as
tests/e2e/test_drills.py (which runs 30 in CI) and prints the counts.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from homelab.lab import Lab  # noqa: E402
from tests.e2e.test_drills import HOSTS, kill_drill  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verify-each", action="store_true",
                        help="after every kill, one apply must converge before the next kill")
    args = parser.parse_args()
    lab = Lab()
    lab.up(len(HOSTS))
    lab.reset(*HOSTS)
    with tempfile.TemporaryDirectory(prefix="kill-drill-", dir=os.environ.get("KILL_DRILL_DIR")) as tmp:
        env = {"XDG_STATE_HOME": os.path.join(tmp, "xdg"), "PYTHONUNBUFFERED": "1"}
        t0 = time.monotonic()
        def progress(done: int, killed: int, finished: int, converged: int) -> None:
            print(f"  {done}/{args.kills}: {killed} killed, {finished} finished first, {converged} converged after "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)

        counts = kill_drill(lab, Path(tmp), env, args.kills, args.seed, verify_each=args.verify_each,
                            progress=progress)  # asserts convergence at the end
        each = (f"the apply after each kill converged: {counts['converged'] - 1} of {args.kills}; "
                if args.verify_each else "")
        print(f"kill -9 drill: {args.kills} runs, {counts['killed']} killed mid-apply, {counts['finished']} finished "
              f"before their kill; state valid after all {args.kills}; {each}converged at the end: yes "
              f"({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
