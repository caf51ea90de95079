"""`storage:` parsing: defaults, every repository type, and every problem located with a hint."""
from __future__ import annotations

from homelab.config.reader import Problems, Section
from homelab.config.storage import Disk, Repository, StorageConfig, parse_storage, span_seconds
from homelab.config.yamlpos import load_located
from homelab.secrets import SecretRef

GOOD = """\
storage:
  data_root: /srv/data/
  disks:
    - {name: data1, machine: nas, by_id: /dev/disk/by-id/ata-WDC_WD40EFRX_WD-WCC7K0000000, mount: /srv/data}
    - {name: usb, machine: nas, serial: "S3Z9NB0K", size: 500107862016, filesystem: xfs, mount: /mnt/usb, format: true}
  repositories:
    - {name: nas, type: rest, machine: nas}
    - {name: box, type: sftp, target: "u123@u123.your-storagebox.de:restic", port: 23,
       password: {command: "pass show box"}}
    - {name: cloud, type: s3, endpoint: "https://s3.example.com", bucket: my-backups,
       access_key: {env: S3_KEY}, secret_key: {env: S3_SECRET}}
    - {name: usb, type: local, path: /mnt/usb/restic, disk: usb}
  password: {env: RESTIC_PASSWORD}
  schedule: {backup: "*-*-* 03:00", backup_every: 1d, randomized_delay: 30min}
  retention: {daily: 14}
"""


def parse(text: str) -> tuple[StorageConfig, list[str]]:
    root = load_located(text, "c.yaml")
    problems = Problems("c.yaml")
    cfg = parse_storage(Section(root.value["storage"], "storage", problems))
    return cfg, [p.render() for p in problems.items]


def test_good_config() -> None:
    cfg, problems = parse(GOOD)
    assert problems == []
    assert cfg.data_root == "/srv/data"
    assert cfg.disks[0] == Disk("data1", "nas", by_id="/dev/disk/by-id/ata-WDC_WD40EFRX_WD-WCC7K0000000", mount="/srv/data")
    assert cfg.disks[1].serial == "S3Z9NB0K" and cfg.disks[1].size == 500107862016 and cfg.disks[1].format
    assert cfg.repositories[0] == Repository("nas", "rest", machine="nas", port=8000, path="/srv/restic-rest")
    box = cfg.repositories[1]
    assert (box.user, box.host, box.path, box.port) == ("u123", "u123.your-storagebox.de", "restic", 23)
    assert cfg.password_of(box) == SecretRef(command="pass show box")
    s3 = cfg.repositories[2]
    assert (s3.bucket, s3.path, s3.access_key) == ("my-backups", "homelab", SecretRef(env="S3_KEY"))
    assert cfg.password_of(s3) == SecretRef(env="RESTIC_PASSWORD")
    assert cfg.schedule.backup == "*-*-* 03:00" and cfg.schedule.backup_every == 86400
    assert cfg.schedule.randomized_delay == "30min" and cfg.schedule.drill == "weekly"
    assert cfg.schedule.drill_every == 604800
    assert (cfg.retention.daily, cfg.retention.weekly, cfg.retention.monthly) == (14, 4, 6)


def test_defaults() -> None:
    cfg, problems = parse("storage: {password: {env: P}, repositories: [{name: r, type: local, path: /backup}]}\n")
    assert problems == []
    assert cfg.data_root == "/srv/homelab" and cfg.schedule.backup == "daily" and cfg.schedule.backup_every == 86400
    assert cfg.check_subset == "5%" and cfg.schedule.randomized_delay == "1h"


def test_span_seconds() -> None:
    assert span_seconds("1h 30min") == 5400 and span_seconds("2d") == 172800 and span_seconds("90") == 90


def test_every_problem_located() -> None:
    text = """\
storage:
  data_root: relative/path
  disks:
    - {name: d1, machine: nas, mount: /srv/d1}
    - {name: d2, machine: nas, by_id: /dev/sdb, mount: /}
    - {name: d3, machine: nas, serial: X1, size: 10, mount: /srv/x, format: maybe}
  repositories:
    - {name: a, type: rest}
    - {name: b, type: sftp, target: "not a target"}
    - {name: c, type: s3, endpoint: "ftp://x", bucket: B, access_key: "AKIA123", secret_key: {env: S}}
    - {name: d, type: local, path: /backup, disk: nope}
    - {name: e, type: tape}
    - {name: ok, type: local, path: /other}
    - {name: ok, type: local, path: /other2}
  password: hunter2
  schedule: {backup: "Mon *-*-* 03:00", randomized_delay: "soon", drill: "daily; rm -rf /"}
  retention: {daily: 0, weekly: 0, monthly: 0}
  check_subset: lots
  extra: 1
"""
    _, problems = parse(text)
    joined = "\n".join(problems)
    expected = [
        "c.yaml:2:14: storage.data_root: 'relative/path' is not allowed here",
        "c.yaml:4:7: storage.disks[0]: needs by_id, or serial and size",
        "storage.disks[1].by_id: '/dev/sdb' is not allowed here",
        "storage.disks[1].mount: '/' is a system directory",
        "storage.disks[2].format: should be true or false",
        "storage.repositories[0].machine: is required",
        "storage.repositories[1].target: 'not a target' is not user@host:path",
        "storage.repositories[2].endpoint: 'ftp://x' is not allowed here",
        "storage.repositories[2].bucket: 'B' is not allowed here",
        "storage.repositories[2].access_key: secrets are never written in the config",
        "storage.repositories[3].disk: no disk named 'nope'",
        "storage.repositories[4].type: 'tape' is not one of rest, sftp, s3, local",
        "storage.repositories[6].name: 'ok' is already used by storage.repositories[5]",
        "storage.password: secrets are never written in the config",
        "storage.schedule.backup: how often does 'Mon *-*-* 03:00' fire?",
        "storage.schedule.randomized_delay: 'soon' is not allowed here",
        "storage.schedule.drill: 'daily; rm -rf /' is not allowed here",
        "storage.retention: keeps no snapshot at all",
        "storage.check_subset: 'lots' is not allowed here",
        "storage.extra: unknown key",
    ]
    for e in expected:
        assert e in joined, f"missing {e!r} in:\n{joined}"
    assert "has no password" not in joined  # the bad password is reported once, where it is
    assert "hunter2" not in joined and "AKIA123" not in joined


def test_repository_without_password_and_duplicate_disk() -> None:
    _, problems = parse("""\
storage:
  disks:
    - {name: a, machine: nas, serial: S1, size: 10, mount: /srv/a}
    - {name: b, machine: nas, serial: S1, size: 10, mount: /srv/b}
  repositories: [{name: r, type: local, path: /backup}]
""")
    assert any("storage.repositories[0]: has no password" in p for p in problems)
    assert any("storage.disks[1]: 'S1' is the same device as disk 'a'" in p for p in problems)


def test_cross_check_names_unknown_machines() -> None:
    from pathlib import Path

    from homelab.config import parse_config
    cfg, _ = parse(GOOD)
    root = load_located(GOOD, "c.yaml")
    problems = Problems("c.yaml")
    other = parse_config("compute:\n  machines: [{name: pi, address: 10.0.0.2}]\n", Path("c.yaml"))
    cfg.cross_check(other, root, problems)
    rendered = [p.render() for p in problems.items]
    assert "c.yaml:4:30: storage.disks[0].machine: no machine or server named 'nas'" in rendered[0]
    assert any("storage.repositories[0].machine" in r and "known: pi" in r for r in rendered)


def test_the_example_config_shows_every_repository_type() -> None:
    from pathlib import Path

    from homelab.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "config.example.yaml").get("storage")
    assert [r.type for r in cfg.repositories] == ["rest", "sftp", "s3", "local"] and cfg.disks[0].name == "data1"
