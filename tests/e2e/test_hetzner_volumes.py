"""A Hetzner volume end to end: the real `hcloud` library -> the stand-in Hetzner API -> a lab host.

One cloud server (a lab host the stand-in boots) with a storage disk that asks for a 10 GB
volume. On attach the stand-in gives the server's lab host a loop device at the path the API
names (/dev/disk/by-id/scsi-0HC_Volume_<id>, the lab's stand-in for udev). Proven, through
the CLI: the plan prices the volume; one apply creates the server and the volume, attaches
it, formats the new (empty) volume (xfs) and mounts it at the data root with a nofail mount unit;
a second apply plans nothing; growing the volume (10 -> 11 GB) grows the device (the stand-in's
loop device, `losetup -c`) and storage grows the xfs filesystem online (xfs_growfs): `df` shows the new size,
a file written before has the same sha256, and the next plan is empty; taking the disk out of
the config is blocked while the volume
is delete-protected, then (unprotected) is a delete that needs --confirm-delete, and with it
the volume is gone from the API and from the host.

Run: HOMELAB_LAB_INSTANCE=N LAB_HOSTS=1 pytest tests/e2e/test_hetzner_volumes.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from homelab.lab.fake_hcloud import FakeHcloud, LabHosts

pytestmark = pytest.mark.lab

TOKEN = "fake-token-volumes-81d2"
ROOT = "/srv/homelab"


def write(tmp: Path, volume: str | None) -> Path:
    cfg = tmp / "cloud.yaml"
    # xfs: growing it online needs CAP_SYS_ADMIN only; ext4's online resize needs CAP_SYS_RESOURCE,
    # which this machine's sandbox withholds from everything on it, lab hosts included
    disks = (f"  disks:\n    - {{name: data, machine: web-1, volume: {volume}, filesystem: xfs, mount: {ROOT}}}\n"
             if volume else "")
    cfg.write_text(f"""\
billing:
  budget: 20
privilege:
  ssh_key: {tmp}/operator_key
  generate_key: true
  use_agent: false
  hcloud_token: {{env: HCLOUD_TOKEN}}
compute:
  hetzner:
    ssh_timeout: 60
    action_timeout: 120
    servers:
      - {{name: web-1, type: cx22, location: fsn1, protection: false}}
storage:
  data_root: {ROOT}
{disks}""")
    return cfg


class Bench:
    def __init__(self, cloud: FakeHcloud, lab: Any, tmp: Path) -> None:
        self.cloud, self.lab, self.tmp = cloud, lab, tmp

    def homelab(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HCLOUD_TOKEN": TOKEN, "HOMELAB_HCLOUD_ENDPOINT": self.cloud.url,
               "XDG_STATE_HOME": str(self.tmp / "xdg")}
        env.pop("SSH_AUTH_SOCK", None)
        proc = subprocess.run([sys.executable, "-m", "homelab", *args], capture_output=True, text=True, env=env,
                              timeout=900, stdin=subprocess.DEVNULL)
        assert TOKEN not in proc.stdout + proc.stderr
        return proc

    @property
    def host(self) -> str:
        return self.cloud.backend.names["web-1"]  # type: ignore[attr-defined]

    def volumes(self) -> list[dict[str, Any]]:
        return list(self.cloud.volumes.volumes.values())

    def sh(self, cmd: str) -> str:
        return self.lab.run(self.host, cmd, check=True).stdout


@pytest.fixture(scope="module")
def bench(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    fake = FakeHcloud(TOKEN, backend=LabHosts(lab)).start()
    try:
        yield Bench(fake, lab, tmp_path_factory.mktemp("volumes"))
    finally:
        fake.stop()  # stops web-1's lab host; `lab.down` (session end) detaches its loop device


def test_the_plan_prices_the_volume(bench: Bench) -> None:
    r = bench.homelab("plan", str(write(bench.tmp, "{size_gb: 10}")))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "  volume web-1-data: 10 GB = 0.52 EUR" in r.stdout, r.stdout  # 10 x 0.044 net + 19 % VAT
    assert "+ volume web-1-data: create 10 GB volume attached to web-1 (for disk data), delete protection on" \
        in r.stdout, r.stdout


def test_one_apply_creates_attaches_formats_and_mounts_it(bench: Bench) -> None:
    r = bench.homelab("apply", str(write(bench.tmp, "{size_gb: 10}")), "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    (vol,) = bench.volumes()
    server = next(s for s in bench.cloud.servers.values() if s["name"] == "web-1")
    assert (vol["name"], vol["size"], vol["server"], vol["protected"]) == ("web-1-data", 10, server["id"], True)
    by_id = f"/dev/disk/by-id/scsi-0HC_Volume_{vol['id']}"
    assert bench.sh(f"lsblk -ndbo SIZE,FSTYPE,SERIAL {by_id}").split() == [str(10 * 2**30), "xfs", str(vol["id"])]
    loop = bench.sh(f"readlink -f {by_id}").strip()
    assert bench.sh(f"findmnt -n -o SOURCE {ROOT}").strip() == loop
    assert "nofail" in bench.sh("cat /etc/systemd/system/srv-homelab.mount")


def test_a_second_apply_changes_nothing(bench: Bench) -> None:
    cfg = write(bench.tmp, "{size_gb: 10}")
    assert bench.homelab("apply", str(cfg), "--yes").returncode == 0
    plan = bench.homelab("plan", str(cfg))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert len(bench.volumes()) == 1


def test_growing_the_volume_grows_the_filesystem_online(bench: Bench) -> None:
    bench.sh(f"head -c 4M /dev/urandom >{ROOT}/keep.bin && sync")
    digest = bench.sh(f"sha256sum {ROOT}/keep.bin").split()[0]
    before = int(bench.sh(f"df -B1 --output=size {ROOT} | tail -n 1"))
    cfg = write(bench.tmp, "{size_gb: 11}")
    plan = bench.homelab("plan", str(cfg))
    assert plan.returncode == 3, plan.stdout + plan.stderr
    assert "~ volume web-1-data: grow 10 -> 11 GB (storage then grows the filesystem)" in plan.stdout, plan.stdout
    assert "disk data: grow xfs filesystem 10.0 GiB -> 11.0 GiB" in plan.stdout, plan.stdout
    r = bench.homelab("apply", str(cfg), "--yes")  # growing erases nothing: no --confirm-delete
    assert r.returncode == 0, r.stdout + r.stderr
    (vol,) = bench.volumes()
    assert vol["size"] == 11
    by_id = f"/dev/disk/by-id/scsi-0HC_Volume_{vol['id']}"
    assert bench.sh(f"lsblk -ndbo SIZE {by_id}").strip() == str(11 * 2**30)
    after = int(bench.sh(f"df -B1 --output=size {ROOT} | tail -n 1"))
    assert after - before > 0.9 * 2**30, (before, after)  # the filesystem, not only the device
    assert bench.sh(f"sha256sum {ROOT}/keep.bin").split()[0] == digest
    assert bench.sh(f"findmnt -n -o SOURCE {ROOT}").strip() == bench.sh(f"readlink -f {by_id}").strip()
    again = bench.homelab("plan", str(cfg))
    assert again.returncode == 0, again.stdout + again.stderr


def test_deleting_it_is_blocked_while_protected_then_needs_the_confirmation(bench: Bench) -> None:
    gone = write(bench.tmp, None)
    r = bench.homelab("plan", str(gone))
    assert r.returncode == 1 and "volume web-1-data is not in the config any more but is delete-protected" \
        in r.stdout + r.stderr, r.stdout + r.stderr
    assert bench.homelab("apply", str(write(bench.tmp, "{size_gb: 11, protection: false}")), "--yes").returncode == 0
    assert not bench.volumes()[0]["protected"]
    gone = write(bench.tmp, None)
    plan = bench.homelab("plan", str(gone))
    assert "- volume web-1-data: delete volume (11 GB) and everything on it  [DESTRUCTIVE" in plan.stdout, plan.stdout
    r = bench.homelab("apply", str(gone), "--yes")
    assert r.returncode == 1 and "not confirmed" in r.stdout + r.stderr
    assert len(bench.volumes()) == 1
    r = bench.homelab("apply", str(gone), "--yes", "--confirm-delete")
    assert r.returncode == 0, r.stdout + r.stderr
    assert bench.volumes() == []
    assert bench.sh("ls /dev/disk/by-id/ | grep -c HC_Volume || true").strip() == "0"
    # and storage took its mount unit away (the disk left the config)
    assert bench.sh("ls /etc/systemd/system/ | grep -c 'srv-homelab.mount' || true").strip() == "0"
