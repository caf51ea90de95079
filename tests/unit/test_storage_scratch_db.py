"""The drill's scratch database, run for real by dash against stand-ins for `restic` and `docker`.

The stand-ins (shell scripts first on PATH) record every docker call and answer like the real
tools do for this script: restic restores a dump file and lists it; docker prints a resolved
compose project (with a secret in its environment), starts nothing, and runs `psql` as a
stand-in that refuses a dump with garbage in it the way psql does (ERROR line, exit 3). What
is proven here: the arguments docker gets (no network, no port, a data dir of its own, the
environment in a file, never the secret), the recorded result, and that the scratch container
and its directory are removed on success and on each kind of failure. The lab test
(tests/e2e/test_storage_layer.py) runs the same script with the real docker and postgres.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from homelab.config.storage import Repository
from homelab.layers.storage import scripts
from homelab.layers.storage.repo import Target

NAS = Repository("nas", "rest", machine="nas", port=8000, path="/srv/restic-rest")
TARGET = Target("feeds-db", "h1", NAS, "10.100.0.2")
SECRET = "s3cret-live-password"
IMAGE = "labrepo:5000/library/postgres@sha256:" + "ab" * 32
APP = scripts.AppBackup(
    "feeds-db", dump=("docker", "compose", "-p", "feeds-db", "exec", "-T", "db", "pg_dump"), dump_name="postgres.sql",
    scratch=scripts.ScratchDb("feeds-db", "/srv/homelab/feeds-db", "db", ("pg_isready", "--host", "127.0.0.1"),
                              ("psql", "--set", "ON_ERROR_STOP=1"), ("psql", "--tuples-only", "--command", "SELECT 3")))

RESTIC = r"""#!/bin/sh
# stand-in for restic: open the repository, restore the dump, list it
target=""; prev=""
for a in "$@"; do [ "$prev" = --target ] && target=$a; prev=$a; done
case " $* " in
  *" cat config "*) exit 0 ;;
  *" restore "*) printf '%s' "$FAKE_DUMP" >"$target/postgres.sql" ;;
  *" ls "*) printf '{"struct_type":"node","type":"file","path":"/postgres.sql","size":%d}\n' "${#FAKE_DUMP}" ;;
esac
"""

DOCKER = r"""#!/bin/sh
# stand-in for docker: records its arguments; a resolved project, a container that is "running"
echo "$*" >>"$FAKE_DIR/docker.log"
case "$1" in
  compose) cat "$FAKE_DIR/compose.json" ;;
  run) for a in "$@"; do case "$a" in --env-file) env_next=1 ;; *) [ -n "${env_next:-}" ] && cp "$a" "$FAKE_DIR/env.seen" && env_next= ;; esac; done
       echo 0123abcd ;;
  inspect) echo "$FAKE_RUNNING" ;;
  logs) echo "FATAL:  data directory has wrong ownership" ;;
  exec)
    shift; [ "$1" = -i ] && { shift; stdin=1; }
    shift  # the container
    case "$1" in
      pg_isready) [ "$FAKE_RUNNING" = true ] ;;
      psql)
        if [ -n "${stdin:-}" ]; then
          cat >"$FAKE_DIR/loaded.sql"
          if [ -n "${FAKE_SLOW:-}" ]; then touch "$FAKE_DIR/loading"; sleep 30; fi
          if grep -q garbage "$FAKE_DIR/loaded.sql"; then
            echo 'ERROR:  syntax error at or near "garbage"' >&2; echo 'LINE 1: garbage' >&2; exit 3
          fi
        else
          echo "   2 tables, 3 rows"
        fi ;;
    esac ;;
esac
"""


def _drill(tmp: Path, dump: str, running: bool = True, stop_while_loading: bool = False
           ) -> tuple[int, dict, list[str]]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    for name, text in (("restic", RESTIC), ("docker", DOCKER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    live = tmp / "live-pgdata"
    live.mkdir(mode=0o700)
    (tmp / "compose.json").write_text(json.dumps({"name": "feeds-db", "services": {"db": {
        "image": IMAGE, "environment": {"POSTGRES_USER": "feeds", "POSTGRES_DB": "feeds", "POSTGRES_PASSWORD": SECRET},
        "volumes": [{"type": "bind", "source": str(live), "target": "/var/lib/postgresql/data"}],
        "ports": [{"target": 5432, "published": "5432", "host_ip": "127.0.0.1"}]}}}))
    (tmp / "lib.sh").write_text(scripts.render_lib())
    status = tmp / "drill.json"
    script = scripts.render_drill(TARGET, APP, scratch_root=str(tmp)).replace(
        f". {scripts.LIB_SH}", f". {tmp / 'lib.sh'}").replace(TARGET.status_file("drill"), str(status)).replace(
        f"set -a; . {TARGET.env_file}; set +a", "")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_DIR": str(tmp), "FAKE_DUMP": dump,
           "FAKE_RUNNING": "true" if running else "false"}
    shell = "/bin/dash" if Path("/bin/dash").exists() else "/bin/sh"
    if stop_while_loading:
        # what systemd does when the unit's TimeoutStartSec runs out: SIGTERM to every process of it
        env["FAKE_SLOW"] = "1"
        (tmp / "drill.sh").write_text(script)
        proc = subprocess.Popen([shell, str(tmp / "drill.sh")], env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not (tmp / "loading").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        # the whole session, like a cgroup: `timeout` runs in a process group of its own
        for pid in [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]:
            try:
                if os.getsid(pid) == proc.pid:
                    os.kill(pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        rc = proc.wait(timeout=30)
    else:
        rc = subprocess.run([shell, "-s"], input=script, text=True, capture_output=True, env=env,
                            timeout=60).returncode
    calls = (tmp / "docker.log").read_text().splitlines() if (tmp / "docker.log").exists() else []
    return rc, json.loads(status.read_text()), calls


def _assert_removed(tmp: Path, calls: list[str]) -> None:
    name = scripts.scratch_name(TARGET.key)
    assert calls[0] == f"rm -f -v {name}"  # one a killed drill left goes first
    assert calls[-1] == f"rm -f -v {name}"  # and this drill's goes last, whatever happened
    assert not list(tmp.glob("homelab-drill-*")), "the scratch directories are removed"


def test_a_dump_that_loads_passes_with_the_query_result(tmp_path: Path) -> None:
    rc, st, calls = _drill(tmp_path, "CREATE TABLE feeds (id int);\n")
    assert rc == 0 and st["result"] == "ok" and st["step"] == "done", st
    assert st["check"] == "2 tables, 3 rows"
    assert (tmp_path / "loaded.sql").read_text() == "CREATE TABLE feeds (id int);\n"  # the restored file, loaded
    run = next(c for c in calls if c.startswith("run "))
    args = run.split()
    assert args[:9] == ["run", "-d", "--name", "homelab-drill.feeds-db-nas", "--label", "homelab.drill=feeds-db-nas",
                        "--network", "none", "--env-file"]
    mount = args[args.index("--mount") + 1]
    assert mount.startswith(f"type=bind,src={tmp_path}/homelab-drill-feeds-db-nas.") and mount.endswith(
        ".db/v1,dst=/var/lib/postgresql/data")  # its own data dir, never the live one
    assert str(tmp_path / "live-pgdata") not in run and "-p" not in args and "--publish" not in args
    assert args[-1] == IMAGE  # the live service's pinned image, its default command
    assert SECRET not in "\n".join(calls)
    assert f"POSTGRES_PASSWORD={SECRET}" in (tmp_path / "env.seen").read_text().splitlines()  # through a file
    _assert_removed(tmp_path, calls)


def test_a_dump_that_does_not_load_fails_with_the_database_message(tmp_path: Path) -> None:
    rc, st, calls = _drill(tmp_path, "garbage\n")
    assert rc == 1 and st["result"] == "failed" and st["step"] == "scratch-restore", st
    # psql's own first ERROR line (the status keeps JSON-safe characters only: quotes go)
    assert st["message"] == "the dump did not load into a scratch database: ERROR:  syntax error at or near garbage"
    assert st["check"] == ""
    _assert_removed(tmp_path, calls)


def test_a_scratch_database_that_stops_fails_with_its_log_line(tmp_path: Path) -> None:
    rc, st, calls = _drill(tmp_path, "CREATE TABLE feeds (id int);\n", running=False)
    assert rc == 1 and st["step"] == "scratch-ready", st
    assert st["message"] == "the scratch database stopped before it was ready: FATAL:  data directory has wrong ownership"
    _assert_removed(tmp_path, calls)


def test_a_drill_stopped_while_loading_still_removes_the_scratch_database(tmp_path: Path) -> None:
    rc, st, calls = _drill(tmp_path, "CREATE TABLE feeds (id int);\n", stop_while_loading=True)
    assert rc == 143 and st["result"] == "failed" and st["step"] == "scratch-restore", st
    assert st["message"] == "interrupted"
    _assert_removed(tmp_path, calls)


@pytest.mark.parametrize("kind", ["compose", "service"])
def test_only_a_compose_dump_gets_a_scratch_database(kind: str) -> None:
    from homelab.claims import BackupPath
    from homelab.config.recipe import DumpSpec
    from homelab.layers.storage.plan import app_backup

    dump = DumpSpec("db" if kind == "compose" else "", ("pg_dump",), ("psql",), ("psql", "-c", "SELECT 1"),
                    "postgres.sql", ("pg_isready",))
    claim = BackupPath("apps", "apps.list[0]", "h1", "feeds-db", (), dump, (),
                       home="/srv/homelab/feeds-db" if kind == "compose" else "")
    app = app_backup(claim)
    if kind == "compose":
        assert app.scratch == scripts.ScratchDb("feeds-db", "/srv/homelab/feeds-db", "db", ("pg_isready",), ("psql",),
                                                ("psql", "-c", "SELECT 1"))
        assert "step=scratch-restore" in scripts.render_drill(TARGET, app)
    else:
        assert app.scratch is None  # no image to start: the drill checks the dump's bytes only
        assert "docker" not in scripts.render_drill(TARGET, app)
