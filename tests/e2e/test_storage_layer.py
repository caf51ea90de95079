"""Layer 4 through `homelab apply` on two Debian 13 lab hosts, over the WireGuard mesh.

h1 runs rest-server (on its mesh address), h2 runs a small app ("notes": a systemd unit and a
data directory). Until the apps layer lands, the app's `BackupPath` claim is injected by a
test-only claims function put into the storage registry entry with monkeypatch (the claim is
the only coupling between apps and storage). Proven: apply converges (the rest credential
made on h2 reaches h1's htpasswd in the same apply), the backup timer's service runs, `homelab
backup CONFIG run|list|drill` work, a restore in place brings the old data back with the app
healthy, a second apply changes nothing and plan exits 0, the monitors are OK, and the
repository password is in no state, log or output.

h2 also runs a real database app (the postgres recipe, compose, its image from the lab
registry): rows written with psql in its container are backed up as a dump, and the drill
loads that dump into a scratch database of the same image (no network, its own data dir,
removed after) and records the tables and rows it counts there; a snapshot whose dump is
garbage (a dump command that wrote no SQL) makes the drill FAIL with PostgreSQL's own error,
and status with it. A valkey app's RDB dump is loaded by a scratch valkey and its keys counted.

Run: HOMELAB_LAB_INSTANCE=N LAB_HOSTS=2 pytest tests/e2e/test_storage_layer.py
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import secrets as pysecrets
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab import registry
from homelab.claims import BackupPath, Claim
from homelab.config.storage import StorageConfig, storage_claims
from homelab.lab.demo import render_lab_config

pytestmark = pytest.mark.lab

HOSTS = ["h1", "h2"]
DATA = "/srv/homelab/notes/data"
DB_APP = "pgdb"  # the postgres recipe on h2: database and user "notes"
SCRATCH = f"homelab-drill.{DB_APP}-nas"  # the drill's scratch container
PASSWORD = "e2e-repo-pw-" + pysecrets.token_hex(10)


def claims_with_app(storage: StorageConfig, cfg: Any) -> Iterator[Claim]:
    """Test-only stand-in for the apps layer's claims: one app on h2 to back up."""
    yield from storage_claims(storage, cfg)
    yield BackupPath("apps", "apps[0]", "h2", "notes", (DATA,), None, ("notes.service",))


@dataclasses.dataclass
class Run:
    rc: int
    out: str
    err: str


class Bench:
    def __init__(self, lab: Any, cfg: Path, xdg: Path) -> None:
        self.lab, self.cfg, self.xdg = lab, cfg, xdg
        self.outputs: list[str] = []

    def homelab(self, *args: str) -> Run:
        """The real CLI, in this process (so the patched registry entry holds)."""
        from homelab.cli import main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(list(args))
        self.outputs += [out.getvalue(), err.getvalue()]
        return Run(rc, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def bench(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    lab.reset(*HOSTS)
    lab.ensure_images(["postgres", "valkey"])
    tmp = tmp_path_factory.mktemp("storage")
    cfg = tmp / "storage.yaml"
    cfg.write_text(render_lab_config(lab.inventory(), hosts=HOSTS) + """\
mesh:
  nodes:
    - {name: h1, endpoint: auto}
    - {name: h2, endpoint: auto}
storage:
  repositories:
    - {name: nas, type: rest, machine: h1}
  password: {env: RESTIC_PASSWORD}
  schedule: {randomized_delay: "0"}
apps:
  images: {mirror: "labrepo:5000"}
  list:
    - {name: pgdb, recipe: postgres, machine: h2, variables: {database: notes, user: notes}}
    - {name: cache, recipe: valkey, machine: h2}
""")
    # the app: a data directory and a unit that serves it
    lab.run("h2", f"mkdir -p {DATA} && echo first >{DATA}/note.txt && head -c 200000 /dev/urandom >{DATA}/blob && "
                  "printf '[Service]\\nExecStart=/usr/bin/python3 -m http.server -d " + DATA + " 8081\\n' "
                  ">/etc/systemd/system/notes.service && systemctl daemon-reload && systemctl start notes.service",
            check=True)
    mp = pytest.MonkeyPatch()
    entry = registry.find("storage")
    assert entry is not None
    mp.setattr(registry, "LAYERS", tuple(
        dataclasses.replace(e, claims="tests.e2e.test_storage_layer:claims_with_app") if e.id == "storage" else e
        for e in registry.LAYERS))
    mp.setenv("RESTIC_PASSWORD", PASSWORD)
    mp.setenv("XDG_STATE_HOME", str(tmp / "xdg"))
    b = Bench(lab, cfg, tmp / "xdg")
    try:
        first = b.homelab("apply", str(cfg), "--yes", "--accept-new-host-keys")
        assert first.rc == 0, first.out + first.err
        yield b
    finally:
        mp.undo()
        lab.run("h2", "systemctl stop notes.service; rm -f /etc/systemd/system/notes.service")


def test_apply_converged_with_the_credential_in_htpasswd(bench: Bench) -> None:
    lab = bench.lab
    htp = lab.run("h1", "cat /etc/restic-rest-server/users.htpasswd", check=True).stdout
    assert any(line.startswith("h2:$2b$") for line in htp.splitlines()), htp
    mesh = json.loads(bench.cfg.with_name("storage.state.json").read_text())["sections"]["mesh"]["addresses"]
    listen = lab.run("h1", "ss -ltnH 'sport = :8000'", check=True).stdout
    assert f"{mesh['h1']}:8000" in listen and "*:8000" not in listen and "0.0.0.0:8000" not in listen
    timers = lab.run("h2", "systemctl is-active homelab-backup-notes-nas.timer homelab-drill-notes-nas.timer "
                           "homelab-check-notes-nas.timer", check=True).stdout.split()
    assert timers == ["active"] * 3
    modes = lab.run("h2", "stat -c '%a %U' /etc/homelab/storage/nas.password /etc/homelab/storage/nas.env "
                          "/etc/homelab/storage/nas.rest-password", check=True).stdout.split("\n")
    assert modes[:3] == ["600 root"] * 3


def test_second_apply_changes_nothing_and_plan_exits_0(bench: Bench) -> None:
    again = bench.homelab("apply", str(bench.cfg), "--yes")
    assert again.rc == 0 and "apply ok: 0 change(s)" in again.err, again.out + again.err
    plan = bench.homelab("plan", str(bench.cfg))
    assert plan.rc == 0, plan.out + plan.err
    assert "app notes: data on h2 in /srv/homelab/notes/data; backups to nas (rest-server on h1 at 10." in plan.out + plan.err


def test_the_timer_service_runs_and_the_cli_backs_up_lists_and_drills(bench: Bench) -> None:
    lab = bench.lab
    started = lab.run("h2", "systemctl start homelab-backup-notes-nas.service", timeout=300).returncode
    st = json.loads(lab.run("h2", "cat /var/lib/homelab/storage/backup-notes-nas.json", check=True).stdout)
    assert started == 0, st
    assert st["result"] == "ok" and len(st["snapshots"]) == 1, st
    run = bench.homelab("backup", str(bench.cfg), "run", "notes")
    assert run.rc == 0 and run.out.startswith("ok       notes -> nas (h2), snapshots "), run.out + run.err
    listed = bench.homelab("backup", str(bench.cfg), "list")
    assert listed.rc == 0 and "notes -> nas (h2): 2 snapshots" in listed.out, listed.out + listed.err
    assert f"{DB_APP} -> nas (h2): 0 snapshots (no repository yet" in listed.out  # not backed up yet: not a failure
    drill = bench.homelab("backup", str(bench.cfg), "drill", "notes")
    assert drill.rc == 0 and "2 files verified" in drill.out, drill.out + drill.err


def test_status_monitors_are_ok(bench: Bench) -> None:
    out = bench.homelab("status", str(bench.cfg), "--json")
    doc = json.loads(out.out)
    mons = {(m["subject"], m["name"]): m for m in doc["layers"]["storage"]}
    for key in (("notes->nas", "backup"), ("notes->nas", "drill"), ("h2->nas", "append-only")):
        assert mons[key]["health"] == "OK", mons[key]
    assert mons[("notes->nas", "check")]["health"] == "WARN"  # weekly; none has run yet (nothing proven, nothing broken)


def test_restore_in_place_brings_the_old_data_back(bench: Bench) -> None:
    lab = bench.lab
    assert bench.homelab("backup", str(bench.cfg), "run", "notes").rc == 0
    lab.run("h2", f"echo second >{DATA}/note.txt && rm {DATA}/blob && echo stray >{DATA}/new.txt", check=True)
    restored = bench.homelab("backup", str(bench.cfg), "restore", "notes")
    assert restored.rc == 0, restored.out + restored.err
    assert lab.run("h2", f"cat {DATA}/note.txt", check=True).stdout.strip() == "first"
    assert lab.run("h2", f"test -s {DATA}/blob && test ! -e {DATA}/new.txt").returncode == 0
    assert lab.run("h2", "systemctl is-active notes.service").stdout.strip() == "active"
    assert not lab.run("h2", f"ls -d {DATA}.pre-restore-* 2>/dev/null").stdout  # the copy is gone once healthy


def test_restore_to_a_directory(bench: Bench) -> None:
    out = bench.homelab("backup", str(bench.cfg), "restore", "notes", "--to", "/var/tmp/notes-restore")
    assert out.rc == 0, out.out + out.err
    assert bench.lab.run("h2", f"cat /var/tmp/notes-restore{DATA}/note.txt", check=True).stdout.strip() == "first"


def psql(bench: Bench, sql: str) -> str:
    """SQL in the live database, with psql in its container (as an app would write rows)."""
    r = bench.lab.run("h2", f"docker compose -p {DB_APP} exec -T db psql --username notes --dbname notes "
                            "--set ON_ERROR_STOP=1 --tuples-only --no-align", input=sql, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip()


def scratch_left(bench: Bench) -> str:
    """Anything the drill's scratch database left on h2: containers, data dirs."""
    return bench.lab.run("h2", "docker ps -a --filter label=homelab.drill -q; ls -d /var/tmp/homelab-drill-* "
                               "2>/dev/null").stdout.strip()


def drill_monitor(bench: Bench) -> tuple[int, dict[str, Any]]:
    out = bench.homelab("status", str(bench.cfg), "--json")
    mons = {(m["subject"], m["name"]): m for m in json.loads(out.out)["layers"]["storage"]}
    return out.rc, mons[(f"{DB_APP}->nas", "drill")]


def test_a_database_dump_loads_into_a_scratch_database_with_its_rows(bench: Bench) -> None:
    psql(bench, "CREATE TABLE notes (id int PRIMARY KEY, body text); CREATE TABLE tags (name text);"
                "INSERT INTO notes SELECT i, 'note ' || i FROM generate_series(1, 40) i; INSERT INTO tags VALUES ('a'), ('b');")
    live = bench.lab.run("h2", f"docker compose -p {DB_APP} ps -q db", check=True).stdout.strip()
    backup = bench.homelab("backup", str(bench.cfg), "run", DB_APP)
    assert backup.rc == 0, backup.out + backup.err
    drill = bench.homelab("backup", str(bench.cfg), "drill", DB_APP)
    # the dump's 2 tables and 42 rows, counted in the scratch database after the load
    assert drill.rc == 0 and drill.out.strip() == (f"ok       {DB_APP} -> nas (h2), 1 files verified, "
                                                   "scratch database: 2 tables, 42 rows"), drill.out + drill.err
    assert not scratch_left(bench)
    # the live database ran on, untouched (same container, same rows)
    assert bench.lab.run("h2", f"docker compose -p {DB_APP} ps -q db", check=True).stdout.strip() == live
    assert psql(bench, "SELECT count(*) FROM notes") == "40"
    _, mon = drill_monitor(bench)
    assert mon["health"] == "OK" and mon["reason"].endswith("ok; scratch database: 2 tables, 42 rows"), mon


def test_a_dump_that_does_not_load_fails_the_drill_and_status(bench: Bench) -> None:
    # a snapshot of a dump command that wrote no SQL: intact bytes in the repository, so only
    # loading it into a database can tell
    wrapper = f"/usr/local/lib/homelab/storage/restic-{DB_APP}-nas"
    bench.lab.run("h2", f"{wrapper} backup --host h2 --tag homelab --tag dump --stdin-filename postgres.sql --stdin",
                  input="this is no SQL;\n", timeout=300, check=True)
    drill = bench.homelab("backup", str(bench.cfg), "drill", DB_APP)
    assert drill.rc == 1, drill.out + drill.err
    assert drill.out.strip() == (f"FAILED   {DB_APP} -> nas (h2), 1 files verified (stopped at scratch-restore): "
                                 "the dump did not load into a scratch database: ERROR:  syntax error at or near this"), drill.out
    assert not scratch_left(bench)
    rc, mon = drill_monitor(bench)
    assert rc == 1 and mon["health"] == "FAIL" and "(at scratch-restore)" in mon["reason"], mon


def test_a_valkey_dump_loads_into_a_scratch_server_with_its_keys(bench: Bench) -> None:
    for key in ("a", "b", "c"):
        r = bench.lab.run("h2", f"docker compose -p cache exec -T valkey valkey-cli set {key} 1", timeout=60)
        assert r.stdout.strip() == "OK", r.stdout + r.stderr
    assert bench.homelab("backup", str(bench.cfg), "run", "cache").rc == 0
    drill = bench.homelab("backup", str(bench.cfg), "drill", "cache")
    assert drill.rc == 0 and drill.out.strip().endswith("scratch database: 3 keys"), drill.out + drill.err
    assert not scratch_left(bench)


def test_no_repository_password_in_state_logs_or_output(bench: Bench) -> None:
    state = bench.cfg.with_name("storage.state.json").read_text()
    assert PASSWORD not in state
    logs = [p.read_text(errors="replace") for p in bench.xdg.rglob("*") if p.is_file()]
    assert logs and not any(PASSWORD in text for text in logs)
    assert not any(PASSWORD in text for text in bench.outputs)
    cred = bench.lab.run("h2", "cat /etc/homelab/storage/nas.rest-password", check=True).stdout.strip()
    assert len(cred) == 32
    assert cred not in state and not any(cred in t for t in logs + bench.outputs)
    # the database's generated password: the drill's scratch copy got it in a file, never in an argument
    env = bench.lab.run("h2", f"cat /srv/homelab/{DB_APP}/secrets.env", check=True).stdout
    db_secrets = [v for v in (line.split("=", 1)[1] for line in env.splitlines() if "=" in line) if len(v) >= 16]
    assert db_secrets, env
    for host in HOSTS:
        journal = bench.lab.run(host, "journalctl --no-pager -o cat").stdout
        assert PASSWORD not in journal and cred not in journal
        assert not any(v in journal for v in db_secrets)
    assert not any(v in text for v in db_secrets for text in logs + bench.outputs)
