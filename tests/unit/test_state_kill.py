"""kill -9 of a state writer at random moments: the state file is always there, whole, and
either the old or the new version (the previous one stays as .prev)."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

WRITER = """
import json, sys
from pathlib import Path
from homelab.state import write_atomic
path = Path(sys.argv[1])
n = json.loads(path.read_text())["n"]
while True:
    n += 1
    write_atomic(path, json.dumps({"n": n, "pad": "x" * 20000}))
"""


def test_a_writer_killed_anywhere_leaves_the_old_or_the_new_state(tmp_path: Path) -> None:
    path = tmp_path / "c.state.json"
    path.write_text(json.dumps({"n": 0}))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    rng = random.Random(12)
    seen = 0
    for _ in range(30):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], env=env)
        time.sleep(0.15 + rng.random() * 0.1)  # past the interpreter start, into the write loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        n = json.loads(path.read_text())["n"]  # exists and parses: never missing, never half-written
        assert n >= seen  # the old or a newer version, never an older one
        prev_path = path.with_name(path.name + ".prev")
        if not prev_path.exists():  # under load a writer can die before its first write
            assert n == 0
            continue
        prev = json.loads(prev_path.read_text())["n"]
        assert prev in (n - 1, n)  # the version before (or, killed between the two renames, the same)
        seen = n
    assert seen > 30  # the writer did run between the kills
    path.write_text(json.dumps({"n": seen}))
    from homelab.state import write_atomic

    write_atomic(path, json.dumps({"n": seen + 1}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.state.json", "c.state.json.prev"]  # leftovers gone
