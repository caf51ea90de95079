"""Issue 10's host mechanics on real Debian 13 hosts, with the rendered files as they are.

h1 runs Debian's restic-rest-server (append-only, private repos, bcrypt htpasswd) with our
/etc/default file; its lab address stands in for its mesh address (no mesh layer here). h2
backs up one app (two data directories and a SQLite database streamed as a dump) with the
rendered backup script. Then, in order: the drill passes (restore --verify plus the file list
compared, and the dump loaded into a scratch database and queried); the check passes; the
server refuses deletes (probe and a real `restic forget`); the server-side prune works; with
h1 down the backup status is FAIL within one run and recovers after; one corrupted pack makes
the next drill and check FAIL. No repository password or credential in any status file,
script, unit or journal.

The files are installed by a small stand-in for the layer's apply (`install`): each HostFile
through ssh stdin with `install -m -o -g`, never on a command line.

Run: HOMELAB_LAB_INSTANCE=N LAB_HOSTS=2 pytest tests/e2e/test_storage_mechanics.py
"""
from __future__ import annotations

import json
import secrets as pysecrets
import shlex
import time
from typing import Any, Iterable

import pytest

from homelab.config.storage import Repository, Schedule
from homelab.layers.storage import files, restserver, scripts
from homelab.layers.storage.files import HostDir, HostFile
from homelab.layers.storage.monitors import append_only_monitor, append_only_probe, backup_monitor
from homelab.layers.storage.repo import Target, render_credentials
from homelab.model import Health
from homelab.secrets import Secret

pytestmark = pytest.mark.lab

SERVER, CLIENT = "h1", "h2"
REPO = Repository("nas", "rest", machine=SERVER, port=8000, path="/srv/restic-rest")
DB = "/srv/homelab/web/db/app.sqlite"
# the recipe's dump and restore check for a SQLite app: dump to stdout; load into a scratch
# database and query it (what a Postgres recipe does with pg_dump / a scratch cluster)
DUMP = ("python3", "-c", f"import sqlite3; print('\\n'.join(sqlite3.connect('{DB}').iterdump()))")
CHECK = ("python3", "-c", "import os, sqlite3; db = sqlite3.connect(':memory:'); "
         "db.executescript(open(os.environ['HOMELAB_DRILL_DUMP']).read()); "
         "n = db.execute('select count(*) from notes').fetchone()[0]; assert n == 3, n")
APP = scripts.AppBackup("web", paths=("/srv/homelab/web/data", "/srv/homelab/web/config"), dump=DUMP,
                        dump_name="web.sql", restore_check=CHECK)
SCHEDULE = Schedule(randomized_delay="0")
OPEN_TIMEOUT = 10  # seconds: how long a run tries to reach the repository before it fails


def install(lab: Any, host: str, dirs: Iterable[HostDir], items: Iterable[HostFile]) -> None:
    """Stand-in for the layer's apply: directories, then files with mode and owner."""
    for d in dirs:
        lab.run(host, f"install -d -m {d.mode} -o {d.owner} -g {d.group} {shlex.quote(d.path)}", check=True)
    for f in items:
        content = f.content.reveal() if isinstance(f.content, Secret) else f.content
        lab.run(host, f"t=$(mktemp) && cat >\"$t\" && install -D -m {f.mode} -o {f.owner} -g {f.group} \"$t\" "
                      f"{shlex.quote(f.path)} && rm -f \"$t\"", input=content, check=True)


def status(lab: Any, host: str, path: str) -> dict[str, Any]:
    return json.loads(lab.run(host, f"cat {path}", check=True).stdout)


def run_unit(lab: Any, host: str, unit: str) -> int:
    """Start a oneshot service and wait for it; its exit status (0 ok)."""
    return lab.run(host, f"systemctl start {unit}.service", timeout=300).returncode


def restic(lab: Any, target: Target, args: str) -> Any:
    env = (f"export RESTIC_REPOSITORY={shlex.quote(target.url)} RESTIC_PASSWORD_FILE={target.password_file}; "
           f"set -a; . {target.env_file}; set +a; ")
    return lab.run(CLIENT, env + "restic " + args, timeout=300)


class Bench:
    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.password = Secret("repo-pw-" + pysecrets.token_hex(12))
        self.rest_password = Secret("rest-pw-" + pysecrets.token_hex(12))
        self.address = lab.hosts[SERVER]
        self.target = Target("web", CLIENT, REPO, self.address)

    def server_files(self, keep: tuple[int, int, int] = (7, 4, 6)) -> list[HostFile]:
        htpasswd = {CLIENT: restserver.hash_password(self.rest_password)}
        return files.server_files(REPO, self.address, htpasswd, SCHEDULE, password=self.password, keep=keep)

    def client_files(self, subset: str = "100%") -> list[HostFile]:
        return files.client_files(self.target, APP, SCHEDULE, password=self.password,
                                  credentials=render_credentials(self.target, rest_password=self.rest_password),
                                  check_subset=subset, open_timeout=OPEN_TIMEOUT)

    def backup(self) -> dict[str, Any]:
        run_unit(self.lab, CLIENT, self.target.unit("backup"))
        return status(self.lab, CLIENT, self.target.status_file("backup"))

    def snapshots(self) -> list[dict[str, Any]]:
        out = restic(self.lab, self.target, "snapshots --json --no-cache")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


@pytest.fixture(scope="module")
def bench(lab: Any) -> Bench:
    for host in (SERVER, CLIENT):
        assert host in lab.hosts, f"needs lab hosts {SERVER} and {CLIENT} (LAB_HOSTS=2)"
    lab.reset(SERVER, CLIENT)  # pristine: an earlier module (the storage layer's) leaves a rest-server behind
    lab.run(SERVER, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic "
                    "restic-rest-server >/dev/null", check=True, timeout=600)
    lab.run(CLIENT, "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic jq "
                    ">/dev/null", check=True, timeout=600)
    b = Bench(lab)
    install(lab, SERVER, files.server_dirs(REPO), b.server_files())
    lab.run(SERVER, "systemctl daemon-reload && systemctl enable -q restic-rest-server && "
                    "systemctl restart restic-rest-server", check=True)
    install(lab, CLIENT, files.CLIENT_DIRS, b.client_files())
    lab.run(CLIENT, "systemctl daemon-reload", check=True)
    # the app's data: files, a file name with a space, and a SQLite database (dumped, not copied)
    lab.run(CLIENT, "mkdir -p /srv/homelab/web/data/sub /srv/homelab/web/config /srv/homelab/web/db && "
                    "head -c 3000000 /dev/urandom >/srv/homelab/web/data/blob.bin && "
                    "echo hello >'/srv/homelab/web/data/sub/a note.txt' && echo 'k: v' >/srv/homelab/web/config/app.yaml && "
                    f"python3 -c \"import sqlite3; d = sqlite3.connect('{DB}'); d.execute('create table notes(t)'); "
                    "d.executemany('insert into notes values (?)', [('a',), ('b',), ('c',)]); d.commit()\"", check=True)
    deadline = time.monotonic() + 20
    while lab.run(CLIENT, f"curl -s -o /dev/null -m 2 http://{b.address}:8000/").returncode != 0:
        assert time.monotonic() < deadline, lab.run(SERVER, "systemctl status restic-rest-server; "
                                                            "journalctl -u restic-rest-server -n 20").stdout
        time.sleep(0.5)
    return b


def test_rest_server_listens_on_the_given_address_only(bench: Bench) -> None:
    out = bench.lab.run(SERVER, "ss -ltnH 'sport = :8000'", check=True).stdout.split()
    assert f"{bench.address}:8000" in out and "*:8000" not in out and "0.0.0.0:8000" not in out
    args = bench.lab.run(SERVER, "ps -o args= -C restic-rest-server", check=True).stdout
    assert "--append-only" in args and "--private-repos" in args and "--no-auth" not in args


def test_backup_then_drill_and_check_pass(bench: Bench) -> None:
    st = bench.backup()
    assert st["result"] == "ok" and st["exit"] == 0 and len(st["snapshots"]) == 2, st
    tags = sorted(tuple(s["tags"]) for s in bench.snapshots())
    assert tags == [("homelab", "dump"), ("homelab", "files")]
    assert run_unit(bench.lab, CLIENT, bench.target.unit("drill")) == 0
    drill = status(bench.lab, CLIENT, bench.target.status_file("drill"))
    # blob.bin, a note.txt, app.yaml and the dump; every one verified and listed
    assert drill["result"] == "ok" and drill["step"] == "done" and drill["files"] == 4, drill
    assert run_unit(bench.lab, CLIENT, bench.target.unit("check")) == 0
    assert status(bench.lab, CLIENT, bench.target.status_file("check"))["result"] == "ok"
    assert not bench.lab.run(CLIENT, "ls /var/tmp | grep homelab-drill").stdout  # scratch removed


def test_drill_runs_the_recipe_check(bench: Bench) -> None:
    """A dump that restores but does not hold the rows fails the drill at the recipe's check."""
    lab = bench.lab
    lab.run(CLIENT, f"python3 -c \"import sqlite3; d = sqlite3.connect('{DB}'); d.execute('delete from notes where t = \\\"c\\\"'); d.commit()\"",
            check=True)
    try:
        assert bench.backup()["result"] == "ok"
        assert run_unit(lab, CLIENT, bench.target.unit("drill")) != 0
        drill = status(lab, CLIENT, bench.target.status_file("drill"))
        assert drill["result"] == "failed" and drill["step"] == "restore-check", drill
    finally:
        lab.run(CLIENT, f"python3 -c \"import sqlite3; d = sqlite3.connect('{DB}'); d.execute('insert into notes values (\\\"c\\\")'); d.commit()\"",
                check=True)
    assert bench.backup()["result"] == "ok"
    assert run_unit(lab, CLIENT, bench.target.unit("drill")) == 0


def test_client_credential_cannot_delete(bench: Bench) -> None:
    code = bench.lab.run(CLIENT, append_only_probe(bench.target), check=True).stdout
    assert append_only_monitor(CLIENT, "nas", code).health is Health.OK, code
    before = {s["id"] for s in bench.snapshots()}
    victim = sorted(before)[0]
    # restic 0.18 prints "1 snapshots have been removed" before the 403s, and its exit code says
    # little: a plain `forget` exits 0 after "unable to remove snapshot/...: 403 Forbidden", and
    # `forget --prune` exits 1 only when the prune then has something to delete (seen here, 0.18.0).
    # So judge by the 403 and by what is still there.
    for args in (f"forget {victim}", f"forget --prune {victim}"):
        out = restic(bench.lab, bench.target, args)
        assert "403 Forbidden" in out.stderr, out.stderr
        assert {s["id"] for s in bench.snapshots()} == before, args
    # another host's repositories are out of reach for this credential (private repos)
    other = Target("web", "h9", REPO, bench.address)
    foreign = restic(bench.lab, Target("web", CLIENT, REPO, bench.address), "snapshots --no-cache -r " + shlex.quote(other.url))
    assert foreign.returncode != 0


def test_server_side_prune(bench: Bench) -> None:
    lab = bench.lab
    assert bench.backup()["result"] == "ok"
    assert len(bench.snapshots()) >= 4
    install(lab, SERVER, (), [f for f in bench.server_files(keep=(1, 0, 0)) if "prune" in f.path])
    lab.run(SERVER, "systemctl daemon-reload", check=True)
    assert run_unit(lab, SERVER, "homelab-prune-nas") == 0, lab.run(SERVER, "journalctl -u homelab-prune-nas -n 20").stdout
    st = status(lab, SERVER, f"{scripts.SERVER_STATUS_DIR}/prune-nas.json")
    assert st["result"] == "ok" and st["repositories"] == 1 and st["failed"] == [], st
    # one per group (files, dump) is left, and it still restores
    assert sorted(tuple(s["tags"]) for s in bench.snapshots()) == [("homelab", "dump"), ("homelab", "files")]
    owners = lab.run(SERVER, "find /srv/restic-rest -not -user restic-rest-server | head -5", check=True).stdout
    assert owners == "", f"files the rest-server cannot manage: {owners}"
    assert run_unit(lab, CLIENT, bench.target.unit("drill")) == 0


def test_repository_host_down_fails_then_recovers(bench: Bench) -> None:
    lab = bench.lab
    lab.stop_host(SERVER)
    try:
        start = time.monotonic()
        st = bench.backup()
        took = time.monotonic() - start
        assert st["result"] == "failed" and "not reachable" in st["message"], st
        assert took < OPEN_TIMEOUT + 30
        m = backup_monitor("web", "nas", json.dumps(st), SCHEDULE.backup_every, time.time())
        assert m.health is Health.FAIL and "last success" in m.reason, m
    finally:
        lab.start_host(SERVER)
    deadline = time.monotonic() + 60  # rest-server comes back at boot with our defaults file
    while lab.run(CLIENT, f"curl -s -o /dev/null -m 2 http://{bench.address}:8000/").returncode != 0:
        assert time.monotonic() < deadline, "rest-server did not come back after the reboot"
        time.sleep(1)
    st = bench.backup()
    assert st["result"] == "ok", st
    assert backup_monitor("web", "nas", json.dumps(st), SCHEDULE.backup_every, time.time()).health is Health.OK


def test_corrupted_pack_fails_drill_and_check(bench: Bench) -> None:
    lab = bench.lab
    repo_dir = f"{REPO.path}/{CLIENT}/web"
    # the biggest pack holds blob.bin's data; flip bytes in its middle
    pack = lab.run(SERVER, f"find {repo_dir}/data -type f -printf '%s %p\\n' | sort -n | tail -1 | cut -d' ' -f2",
                   check=True).stdout.strip()
    assert pack
    lab.run(SERVER, f"size=$(stat -c %s {pack}); head -c 64 /dev/urandom | "
                    f"dd of={pack} bs=1 seek=$((size / 2)) conv=notrunc status=none", check=True)
    assert run_unit(lab, CLIENT, bench.target.unit("drill")) != 0
    drill = status(lab, CLIENT, bench.target.status_file("drill"))
    assert drill["result"] == "failed" and drill["step"].startswith("restore"), drill
    assert run_unit(lab, CLIENT, bench.target.unit("check")) != 0
    assert status(lab, CLIENT, bench.target.status_file("check"))["result"] == "failed"


def test_no_secret_on_the_hosts_outside_their_files(bench: Bench) -> None:
    lab = bench.lab
    for host, allowed in ((CLIENT, {"/etc/homelab/storage/nas.password", "/etc/homelab/storage/nas.env"}),
                          (SERVER, {"/etc/homelab/storage/nas.server-password"})):
        for secret in (bench.password, bench.rest_password):
            value = secret.reveal()
            hits = lab.run(host, f"grep -rl -F -- {shlex.quote(value)} /etc /var/lib/homelab /usr/local/lib/homelab "
                                 "/srv/restic-rest 2>/dev/null").stdout.split()
            assert set(hits) <= allowed, f"{host}: {secret!r} found in {hits}"
            journal = lab.run(host, "journalctl --no-pager -o cat").stdout
            assert value not in journal
    modes = lab.run(CLIENT, "stat -c '%a %U' /etc/homelab/storage/nas.password /etc/homelab/storage/nas.env",
                    check=True).stdout.split("\n")
    assert modes[:2] == ["600 root", "600 root"]
