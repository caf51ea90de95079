"""Hetzner volumes for storage disks: config, claims, the compute diff, the price, the storage
side (which device is which disk), and the stand-in API driven by the real `hcloud`. Pure
except the last test (the stand-in on 127.0.0.1, no lab host)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from homelab.claims import NeedsVolume
from homelab.config import parse_config
from homelab.config.billing import BillingConfig
from homelab.config.hetzner import HetznerConfig, Server
from homelab.errors import HomelabError
from homelab.lab.fake_hcloud import FakeHcloud
from homelab.layers.billing import Seen, diff_billing
from homelab.layers.compute.volumes import devices, diff_volumes
from homelab.layers.storage.disks import Device
from homelab.layers.storage.plan import StorageInputs, plan_storage, probe_layout
from homelab.layers.storage.probes import DiskView, HostView, parse_volumes, storage_probes
from homelab.probe import ProbeResult
from homelab.providers.hcloud_api import CloudServer, CloudVolume, HcloudApi
from homelab.providers.pricing import BillableVolume, Prices, bill, parse_pricing
from homelab.secrets import Secret

CLOUD = """\
privilege: {hcloud_token: {env: HCLOUD_TOKEN}}
compute:
  machines: [{name: nas, address: 10.0.0.5}]
  hetzner:
    servers: [{name: web-1, type: cx22, location: fsn1}]
storage:
  disks:
    - {name: data, machine: web-1, volume: {size_gb: 20}, mount: /srv/homelab}
"""
HZ = HetznerConfig(servers=(Server("web-1", "cx22", "fsn1"),))
CLAIM = NeedsVolume("storage", "storage.disks[0].volume", "web-1", "data", 20, True)
WEB1 = CloudServer(id=7, name="web-1", type="cx22", location="fsn1", status="running", ipv4="192.0.2.7")
GB = 2**30


def problems(text: str) -> list[str]:
    try:
        parse_config(text, Path("/tmp/c.yaml"))
    except HomelabError as exc:
        return [str(exc.message)]
    return []


def volume(size: int = 20, server: int | None = 7, protected: bool = True, disk: str = "data",
           name: str = "web-1-data") -> CloudVolume:
    return CloudVolume(id=4711, name=name, size_gb=size, location="fsn1", server_id=server,
                       linux_device="/dev/disk/by-id/scsi-0HC_Volume_4711",
                       labels=HZ.volume_labels("web-1", disk), protected=protected, status="available")


# ----------------------------------------------------------------- config ---
def test_a_volume_disk_parses_and_claims_its_volume() -> None:
    cfg = parse_config(CLOUD, Path("/tmp/c.yaml"))
    disk = cfg.get("storage").disks[0]
    assert disk.volume is not None and (disk.volume.size_gb, disk.volume.protection) == (20, True)
    assert disk.by_id is None and disk.serial is None
    assert cfg.claims.of(NeedsVolume) == [CLAIM]


@pytest.mark.parametrize("change, message", [
    ("machine: web-1, volume: {size_gb: 20}", ""),
    ("machine: nas, volume: {size_gb: 20}", "nas is not a Hetzner server: only those get Hetzner volumes"),
    ("machine: web-1, volume: {size_gb: 5}", "size_gb"),
    ("machine: web-1, by_id: /dev/disk/by-id/x, volume: {size_gb: 20}", "a Hetzner volume is named by its id"),
    ("machine: web-1, volume: {size_gb: 20, colour: red}", "colour"),
])
def test_volume_config_problems_are_located(change: str, message: str) -> None:
    text = CLOUD.replace("machine: web-1, volume: {size_gb: 20}", change)
    found = problems(text)
    if not message:
        assert found == []
    else:
        assert len(found) == 1 and message in found[0], found


# ------------------------------------------------------------ compute diff ---
def test_a_missing_volume_is_created_attached_with_our_labels() -> None:
    d = diff_volumes(HZ, [CLAIM], [], {})
    (c,) = d.changes
    assert (c.target, c.action, c.destructive) == ("volume web-1-data", "create", False)
    assert c.summary == "create 20 GB volume attached to web-1 (for disk data), delete protection on"
    assert c.ops[0].name == "hetzner.create_volume" and c.ops[0].kwargs["labels"] == {
        "managed-by": "homelab", "homelab/cluster": "homelab", "homelab/server": "web-1", "homelab/disk": "data"}


def test_a_volume_as_wanted_plans_nothing_and_is_published_for_storage() -> None:
    d = diff_volumes(HZ, [CLAIM], [volume()], {"web-1": WEB1})
    assert d.changes == () and d.same == ("volume web-1-data: 20 GB, attached to web-1, protected",)
    out = devices([volume()], {"web-1": WEB1}).by_disk["data"]
    assert (out.host, out.volume_id, out.device, out.size_gb) == ("web-1", 4711, "/dev/disk/by-id/scsi-0HC_Volume_4711", 20)
    assert devices([volume(server=None)], {"web-1": WEB1}).by_disk == {}  # detached: no device anywhere


def test_grow_attach_protect_and_never_shrink() -> None:
    d = diff_volumes(HZ, [CLAIM], [volume(size=10, server=None, protected=False)], {"web-1": WEB1})
    assert [(c.action, c.summary) for c in d.changes] == [
        ("resize", "grow 10 -> 20 GB (storage then grows the filesystem)"), ("update", "attach to web-1"),
        ("update", "delete protection on")]
    d = diff_volumes(HZ, [CLAIM], [volume(size=40)], {"web-1": WEB1})
    assert d.changes == () and "Hetzner cannot shrink a volume" in d.warnings[0]


def test_a_volume_gone_from_the_config_is_a_destructive_delete_blocked_while_protected() -> None:
    d = diff_volumes(HZ, [], [volume(protected=False)], {"web-1": WEB1})
    (c,) = d.changes
    assert (c.action, c.destructive, c.ops[0].name) == ("delete", True, "hetzner.delete_volume")
    d = diff_volumes(HZ, [], [volume(protected=True)], {"web-1": WEB1})
    assert d.changes == () and "delete-protected" in d.blocked[0]


# ------------------------------------------------------------------ price ---
def test_volumes_are_priced_per_gb_month_from_the_pricing_api() -> None:
    prices = parse_pricing(FakeHcloud("t")._pricing())
    assert prices.volume_gb_monthly == pytest.approx(0.044 * 1.19)
    b = bill(prices, [], [BillableVolume("web-1-data", 20)])
    assert b.total == round(20 * 0.044 * 1.19, 2) and b.volumes[0].size_gb == 20
    no_price = bill(Prices("EUR", {}, {}), [], [BillableVolume("v", 10)])
    assert no_price.unknown == ("volume v: no price for volumes",) and no_price.total == 0


def test_the_billing_plan_lists_the_volume_and_counts_it_against_the_budget() -> None:
    prices = Prices("EUR", {("cx22", "fsn1"): 4.51}, {"fsn1": 0.60}, 20.0, volume_gb_monthly=0.05)
    plan = diff_billing(BillingConfig(budget=5.5), HZ, Seen(prices), [CLAIM])
    assert "  volume web-1-data: 20 GB = 1.00 EUR" in plan.notes
    assert plan.blocked == ("monthly cost 6.11 EUR is over the budget of 5.50 EUR (billing.budget)",)


# ---------------------------------------------------------------- storage ---
def lsblk(path: str, size: int, fstype: str | None = None) -> str:
    return json.dumps({"blockdevices": [{"path": path, "serial": "4711", "size": size, "type": "disk",
                                          "fstype": fstype, "uuid": "u-1" if fstype else None}]})


def test_the_volumes_probe_is_read_per_device() -> None:
    out = (f"@@homelab-volume@@ /dev/disk/by-id/scsi-0HC_Volume_4711\n{lsblk('/dev/sdb', 20 * GB)}\n"
           "@@homelab-split@@\n\n")
    views = parse_volumes(ProbeResult(0, out))
    assert list(views) == ["/dev/disk/by-id/scsi-0HC_Volume_4711"]
    view = views["/dev/disk/by-id/scsi-0HC_Volume_4711"]
    assert view.device is not None and (view.device.path, view.device.size, view.device.serial) == (
        "/dev/sdb", 20 * GB, "4711")
    assert view.signatures == ()  # wipefs printed nothing: a blank device


def storage_plan(volumes: dict[str, tuple[str, int]], seen: dict[str, DiskView]) -> list[str]:
    cfg = parse_config(CLOUD, Path("/tmp/c.yaml"))
    probes = storage_probes(probe_layout(cfg.get("storage"), (), "web-1"))
    assert "storage.volumes" in probes and not any(k.startswith("storage.disk.") for k in probes)
    plan = plan_storage(StorageInputs(cfg.get("storage"), (), {"web-1": "192.0.2.7"},
                                      views={"web-1": HostView(volumes=seen)}, volumes=volumes))
    return [f"{c.summary}{' (deferred: ' + c.deferred + ')' if c.deferred else ''}" for c in plan.changes] + [
        f"BLOCKED {b}" for b in plan.blocked]


def test_storage_waits_for_the_volume_then_formats_the_new_empty_one() -> None:
    path = "/dev/disk/by-id/scsi-0HC_Volume_4711"
    assert "mount disk data at /srv/homelab (deferred: needs its Hetzner volume (compute creates and attaches it))" \
        in storage_plan({}, {})
    assert f"mount disk data at /srv/homelab (deferred: {path} is not on web-1 yet (just attached?))" \
        in storage_plan({"data": (path, 20 * GB)}, {})
    empty = DiskView(Device("/dev/sdb", "4711", None, 20 * GB, "disk", None, None, None, ()))
    lines = storage_plan({"data": (path, 20 * GB)}, {path: empty})
    assert "disk data: format ext4 (empty)" in lines  # a new volume: no format: true needed, nothing erased
    # a device larger than its volume is not that volume (smaller: it is growing, see
    # test_storage_disk_lifecycle.py)
    wrong = DiskView(Device("/dev/sdb", "4711", None, 40 * GB, "disk", None, None, None, ()))
    assert any("size is 42949672960 bytes, the config says 21474836480" in line
               for line in storage_plan({"data": (path, 20 * GB)}, {path: wrong}))


# -------------------------------------------------------------- stand-in ---
def test_the_stand_in_serves_volumes_to_the_real_hcloud_library() -> None:
    with FakeHcloud("tok") as fake:
        api = HcloudApi(Secret("tok"), fake.url)
        fake.servers[7] = {"id": 7, "name": "web-1", "type": "cx22", "location": "fsn1", "image": "debian-13",
                           "status": "running", "created": "x", "ip": "192.0.2.7", "labels": {}, "protected": False,
                           "backups": False}
        v = api.create_volume(name="web-1-data", size_gb=20, server_id=7, labels=HZ.volume_labels("web-1", "data"),
                              timeout=10)
        assert (v.server_id, v.size_gb, v.linux_device) == (7, 20, f"/dev/disk/by-id/scsi-0HC_Volume_{v.id}")
        assert fake.backend.disks == {("web-1", str(v.id)): 20 * GB}  # the server's host got the device
        assert api.list_volumes(HZ.selector()) == [v]
        api.protect_volume(v, True, 10)
        with pytest.raises(HomelabError, match="protected"):
            api.delete_volume(v)
        api.resize_volume(v, 30, 10)
        assert fake.backend.disks == {("web-1", str(v.id)): 30 * GB}  # the stand-in grows the device too
        api.detach_volume(v, 10)
        assert fake.backend.disks == {}
        api.protect_volume(v, False, 10)
        api.delete_volume(v)
        assert api.list_volumes("") == []
