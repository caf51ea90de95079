"""Storage monitors from status files and probe output: the age, exit-code and space rules."""
from __future__ import annotations

import json

from homelab.layers.storage.monitors import (append_only_monitor, backup_monitor, check_monitor, drill_monitor,
                                             parse_df, space_monitor)
from homelab.model import Health

DAY = 86400
NOW = 1_800_000_000.0


def status(age: float, exit: int, result: str, **extra: object) -> str:
    return json.dumps({"time": "x", "epoch": int(NOW - age), "exit": exit, "result": result, "duration_s": 3,
                       "last_ok": extra.pop("last_ok", 0), "message": extra.pop("message", ""), **extra})


def test_backup_age_rules() -> None:
    ok = backup_monitor("web", "nas", status(3600, 0, "ok", snapshots=["0123456789ab"]), DAY, NOW)
    assert ok.health is Health.OK and "snapshot 01234567" in ok.reason and ok.subject == "web->nas"
    assert backup_monitor("web", "nas", status(1.6 * DAY, 0, "ok"), DAY, NOW).health is Health.WARN
    assert backup_monitor("web", "nas", status(3.1 * DAY, 0, "ok"), DAY, NOW).health is Health.FAIL
    never = backup_monitor("web", "nas", None, DAY, NOW)  # no copy exists: FAIL, and how to make one now
    assert never.health is Health.FAIL
    assert never.reason == "no backup has run yet (`homelab backup CONFIG run web` runs one now)"


def test_exit_3_is_a_warning_and_failures_say_why() -> None:
    partial = backup_monitor("web", "nas", status(60, 3, "partial"), DAY, NOW)
    assert partial.health is Health.WARN and "exit 3" in partial.reason
    failed = backup_monitor("web", "nas", status(60, 1, "failed", message="repository not reachable within 10 s",
                                                   last_ok=int(NOW - 2 * DAY)), DAY, NOW)
    assert failed.health is Health.FAIL
    assert "not reachable within 10 s" in failed.reason and "last success 2 d ago" in failed.reason
    assert "never succeeded" in backup_monitor("web", "nas", status(60, 12, "failed"), DAY, NOW).reason
    assert backup_monitor("web", "nas", "{half a fi", DAY, NOW).health is Health.FAIL


def test_drill_and_check() -> None:
    d = drill_monitor("web", "nas", status(60, 1, "failed", step="restore-files"), 7 * DAY, NOW)
    assert d.health is Health.FAIL and "(at restore-files)" in d.reason
    assert drill_monitor("web", "nas", status(8 * DAY, 0, "ok"), 7 * DAY, NOW).health is Health.OK
    assert drill_monitor("web", "nas", status(11 * DAY, 0, "ok"), 7 * DAY, NOW).health is Health.WARN
    assert check_monitor("web", "nas", status(60, 1, "failed"), 7 * DAY, NOW).health is Health.FAIL


def test_a_drill_shows_what_its_scratch_database_answered() -> None:
    ok = drill_monitor("db", "nas", status(60, 0, "ok", step="done", check="2 tables, 3 rows"), 7 * DAY, NOW)
    assert ok.health is Health.OK and ok.reason == "last restore drill 60 s ago: ok; scratch database: 2 tables, 3 rows"
    bad = drill_monitor("db", "nas", status(60, 1, "failed", step="scratch-restore",
                                            message="the dump did not load into a scratch database: ERROR: x"), 7 * DAY, NOW)
    assert bad.health is Health.FAIL and bad.reason.endswith("did not load into a scratch database: ERROR: x; never "
                                                             "succeeded (at scratch-restore)")


def test_free_space() -> None:
    df = ("Filesystem     1-blocks        Used   Available Capacity Mounted on\n"
          "/dev/sda1   1000000000   960000000    40000000      96% /srv/homelab\n"
          "/dev/sdb1   1000000000   500000000   500000000      50% /srv/restic rest\n")
    spaces = parse_df(df)
    assert space_monitor("nas", "data", spaces["/srv/homelab"]).health is Health.FAIL
    assert space_monitor("nas", "repo", spaces["/srv/restic rest"]).health is Health.OK
    spaces = parse_df(df.replace("40000000 ", "80000000 "))
    assert space_monitor("nas", "data", spaces["/srv/homelab"]).health is Health.WARN
    assert space_monitor("nas", "x", None).health is Health.UNKNOWN


def test_append_only() -> None:
    assert append_only_monitor("h2", "nas", "403\n").health is Health.OK
    assert append_only_monitor("h2", "nas", "404").health is Health.FAIL
    assert append_only_monitor("h2", "nas", "401").health is Health.FAIL
    assert append_only_monitor("h2", "nas", "000").health is Health.UNKNOWN
