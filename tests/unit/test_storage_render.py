"""Rendered storage files against golden files (tests/golden/storage/), and their invariants.

Regenerate after an intended change with HOMELAB_UPDATE_GOLDEN=1 and review the diff.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from golden import GOLDEN_ROOT, assert_golden

from homelab.config.storage import Repository, Schedule
from homelab.layers.storage import files, restserver, scripts, units
from homelab.layers.storage.repo import Target, render_credentials
from homelab.secrets import SecretRef, Secret

GOLDEN = GOLDEN_ROOT / "storage"
NAS = Repository("nas", "rest", machine="nas", port=8000, path="/srv/restic-rest")
BOX = Repository("box", "sftp", user="u123", host="u123.your-storagebox.de", path="restic", port=23)
S3 = Repository("cloud", "s3", endpoint="https://s3.example.com", bucket="bk", path="homelab",
                access_key=SecretRef(env="K"), secret_key=SecretRef(env="S"))
USB = Repository("usb", "local", path="/mnt/usb/restic")
WEB = scripts.AppBackup("web", paths=("/srv/homelab/web/data", "/srv/homelab/web/config"))
DB = scripts.AppBackup("notes", paths=("/srv/homelab/notes/uploads",), dump=("pg_dump", "-U", "notes", "notes"),
                       dump_name="notes.sql",
                       restore_check=("sh", "-c", 'grep -q "CREATE TABLE" "$HOMELAB_DRILL_DUMP"'))
# a compose postgres app: the drill loads its dump into a scratch database
PG = scripts.AppBackup("feeds-db", dump=("docker", "compose", "-p", "feeds-db", "exec", "-T", "db", "pg_dump"),
                       dump_name="postgres.sql",
                       scratch=scripts.ScratchDb("feeds-db", "/srv/homelab/feeds-db", "db",
                                                 ("pg_isready", "--host", "127.0.0.1"),
                                                 ("psql", "--set", "ON_ERROR_STOP=1"),
                                                 ("psql", "--tuples-only", "--command", "SELECT count(*) FROM feeds")))
T_PG = Target("feeds-db", "h1", NAS, "10.100.0.2")
T_WEB = Target("web", "h2", NAS, "10.100.0.1")
T_DB = Target("notes", "h2", BOX)
HASHES = {"h2": "$2b$10$0123456789012345678901uH0pLRN2ZQ8xEjvMlrn9Z3iSNbfS3C6",
          "pi": "$2y$10$abcdefghijklmnopqrstuu5ZHjJ6v7u6YQ1yDq8H9oCz2pX8m1m2e"}

CASES = {
    "rest-server.default": lambda: restserver.render_defaults("10.100.0.1", 8000, "/srv/restic-rest"),
    "rest-server-ipv6.default": lambda: restserver.render_defaults("fd00::1", 8443, "/srv/r"),
    "rest-server-dropin.conf": lambda: restserver.render_dropin(("wg-quick@wg0.service",)),
    "users.htpasswd": lambda: restserver.render_htpasswd(HASHES),
    "lib.sh": scripts.render_lib,
    "backup-web-nas": lambda: scripts.render_backup(T_WEB, WEB),
    "backup-notes-box": lambda: scripts.render_backup(T_DB, DB, open_timeout=30),
    "drill-web-nas": lambda: scripts.render_drill(T_WEB, WEB),
    "drill-notes-box": lambda: scripts.render_drill(T_DB, DB),
    "drill-feeds-db-nas": lambda: scripts.render_drill(T_PG, PG),
    "check-web-nas": lambda: scripts.render_check(T_WEB, "5%"),
    "prune-nas": lambda: scripts.render_prune("nas", "/srv/restic-rest", "/etc/homelab/storage/nas.server-password",
                                              daily=7, weekly=4, monthly=6),
    "homelab-backup-web-nas.service": lambda: units.render_service(_job()),
    "homelab-backup-web-nas.timer": lambda: units.render_timer(_job()),
    "homelab-prune-nas.service": lambda: units.render_service(
        units.Job("homelab-prune-nas", "prune", "/usr/local/lib/homelab/storage/prune-nas", "weekly",
                  user="restic-rest-server", after=())),
    "srv-homelab.mount": lambda: units.render_mount("/dev/disk/by-uuid/0b1c2d3e-aaaa-bbbb-cccc-1234567890ab",
                                                    "/srv/homelab", "ext4", "homelab disk data1"),
}


def _job() -> units.Job:
    return units.Job(T_WEB.unit("backup"), "homelab backup of web to nas", T_WEB.script("backup"), "daily", "1h")


def golden(name: str, text: str) -> None:
    assert_golden(GOLDEN / name, text)


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    golden(name, CASES[name]())


@pytest.mark.parametrize("name", [n for n in sorted(CASES) if n.split("-")[0] in ("backup", "drill", "check", "prune")]
                         + ["lib.sh"])
def test_scripts_are_valid_sh(name: str) -> None:
    """dash (Debian's /bin/sh) parses every script."""
    shell = "/bin/dash" if Path("/bin/dash").exists() else "/bin/sh"
    proc = subprocess.run([shell, "-n"], input=CASES[name](), text=True, capture_output=True)
    assert proc.returncode == 0, proc.stderr


def test_repository_urls() -> None:
    assert T_WEB.url == "rest:http://10.100.0.1:8000/h2/web/"
    assert Target("web", "h2", NAS, "fd00::1").url == "rest:http://[fd00::1]:8000/h2/web/"
    assert T_DB.url == "sftp:u123@u123.your-storagebox.de:restic/h2/notes"
    assert T_DB.options == ("-o", "sftp.args=-p 23 -o BatchMode=yes")
    assert Target("a", "h", S3).url == "s3:https://s3.example.com/bk/homelab/h/a"
    assert Target("a", "h", USB).url == "/mnt/usb/restic/h/a" and Target("a", "h", USB).env_file is None
    with pytest.raises(ValueError):
        _ = Target("web", "h2", NAS).url


def test_credentials_stay_secret() -> None:
    creds = render_credentials(T_WEB, rest_password=Secret("s3cr3t-pw"))
    assert "s3cr3t-pw" not in str(creds) and "s3cr3t-pw" not in repr(creds)
    assert creds.reveal().splitlines()[1:] == ["RESTIC_REST_USERNAME='h2'", "RESTIC_REST_PASSWORD='s3cr3t-pw'"]
    with pytest.raises(ValueError):
        render_credentials(T_WEB, rest_password=Secret("it's"))


def test_no_secret_reaches_a_script_or_unit() -> None:
    """Scripts name the 0600 files; the values are only in those files."""
    sched = Schedule()
    out = files.client_files(T_WEB, WEB, sched, password=Secret("REPO-PW-CANARY"),
                             credentials=render_credentials(T_WEB, rest_password=Secret("REST-PW-CANARY")),
                             check_subset="5%")
    secret_files = {f.path: f for f in out if f.secret}
    assert set(secret_files) == {"/etc/homelab/storage/nas.password", "/etc/homelab/storage/nas.env"}
    assert all(f.mode == "0600" for f in secret_files.values())
    for f in out:
        if not f.secret:
            assert "CANARY" not in str(f.content)
    backup = next(f for f in out if f.path.endswith("/backup-web-nas"))
    assert "RESTIC_PASSWORD_FILE=/etc/homelab/storage/nas.password" in str(backup.content)
    names = sorted(f.path.rsplit("/", 1)[1] for f in out)
    assert "homelab-drill-web-nas.timer" in names and "homelab-check-web-nas.service" in names


def test_server_files() -> None:
    out = files.server_files(NAS, "10.100.0.1", HASHES, Schedule(), password=Secret("PW"), keep=(7, 4, 6))
    by_path = {f.path: f for f in out}
    ht = by_path["/etc/restic-rest-server/users.htpasswd"]
    assert (ht.mode, ht.owner, ht.group) == ("0640", "root", "restic-rest-server")
    pw = by_path["/etc/homelab/storage/nas.server-password"]
    assert pw.secret and pw.group == "restic-rest-server" and pw.mode == "0640"
    svc = str(by_path["/etc/systemd/system/homelab-prune-nas.service"].content)
    assert "User=restic-rest-server" in svc and "UMask=027" in svc


def test_hash_password_is_bcrypt_and_verifies() -> None:
    import bcrypt
    h = restserver.hash_password(Secret("pw"), rounds=4)
    assert h.startswith("$2b$04$") and bcrypt.checkpw(b"pw", h.encode())
    with pytest.raises(ValueError):
        restserver.render_htpasswd({"h2": "{PLAIN}pw"})


@pytest.mark.parametrize("path, name", [("/srv/homelab", "srv-homelab.mount"), ("/", "-.mount"),
                                        ("/mnt/usb-disk", "mnt-usb\\x2ddisk.mount"),
                                        ("/srv/.hidden/x y", "srv-.hidden-x\\x20y.mount"), ("/.a", "\\x2ea.mount")])
def test_mount_unit_names(path: str, name: str) -> None:
    assert units.mount_unit_name(path) == name
