"""What homelab made but the config no longer names: one rule for servers and volumes
(`plan_gone`), and both diffs going through it. Pure."""
from __future__ import annotations

from homelab.claims import NeedsVolume
from homelab.config.hetzner import HetznerConfig, Server
from homelab.layers.compute.gone import plan_gone
from homelab.layers.compute.hetzner import diff_servers
from homelab.layers.compute.volumes import diff_volumes
from homelab.providers.hcloud_api import CloudServer, CloudVolume

HZ = HetznerConfig(servers=(Server("web-1", "cx22", "fsn1"),))
OURS = {"managed-by": "homelab", "homelab/cluster": "homelab"}


def server(name: str, protected: bool, id: int = 1, ipv4: str | None = "192.0.2.1") -> CloudServer:
    return CloudServer(id=id, name=name, type="cx22", location="fsn1", status="running", ipv4=ipv4,
                       labels=OURS, protected=protected)


def volume(name: str, protected: bool, id: int = 9, size: int = 10) -> CloudVolume:
    return CloudVolume(id=id, name=name, size_gb=size, location="fsn1", server_id=None,
                       linux_device=f"/dev/disk/by-id/scsi-0HC_Volume_{id}", labels=OURS, protected=protected)


def test_wanted_names_are_left_alone_whatever_their_protection() -> None:
    gone = plan_gone("server", [server("a", True), server("b", False)], {"a", "b"}, lambda s: "x")
    assert (gone.changes, gone.blocked) == ((), ())


def test_an_unprotected_leftover_is_a_destructive_delete_of_its_kind() -> None:
    gone = plan_gone("volume", [volume("v", False, id=42)], set(), lambda v: f"delete volume ({v.size_gb} GB)")
    (c,) = gone.changes
    assert (c.layer, c.target, c.action, c.summary, c.destructive) == (
        "compute", "volume v", "delete", "delete volume (10 GB)", True)
    assert [(op.name, op.kwargs) for op in c.ops] == [("hetzner.delete_volume", {"name": "v", "id": 42})]
    assert gone.blocked == ()


def test_a_protected_leftover_blocks_and_plans_nothing() -> None:
    gone = plan_gone("server", [server("old", True)], {"web-1"}, lambda s: "never asked")
    assert gone.changes == ()
    assert gone.blocked == ("server old is not in the config any more but is delete-protected: put it back "
                            "with protection: false, apply, then remove it",)


def test_leftovers_keep_the_listed_order_and_each_gets_its_own_verdict() -> None:
    gone = plan_gone("server", [server("b", False, id=2), server("a", True), server("c", False, id=3)], set(),
                     lambda s: s.name)
    assert [c.target for c in gone.changes] == ["server b", "server c"]
    assert [b.split(" ")[1] for b in gone.blocked] == ["a"]


def test_servers_diff_plans_its_leftovers_through_the_shared_rule() -> None:
    d = diff_servers(HZ, [server("web-1", True), server("old", False, id=5, ipv4=None), server("kept", True, id=6)],
                     {})
    deletes = [c for c in d.changes if c.action == "delete"]
    assert [(c.target, c.summary, c.ops[0].name, c.ops[0].kwargs) for c in deletes] == [
        ("server old", "delete server (cx22 in fsn1, no IPv4) and everything on its disk", "hetzner.delete_server",
         {"name": "old", "id": 5})]
    assert d.blocked == ("server kept is not in the config any more but is delete-protected: put it back "
                         "with protection: false, apply, then remove it",)


def test_volumes_diff_plans_its_leftovers_through_the_shared_rule() -> None:
    claim = NeedsVolume("storage", "storage.disks[0].volume", "web-1", "data", 10, False)
    web1 = CloudServer(id=7, name="web-1", type="cx22", location="fsn1", status="running", ipv4="192.0.2.7")
    listed = [volume("web-1-data", False), volume("web-1-old", False, id=10, size=30),
              volume("web-1-keep", True, id=11)]
    d = diff_volumes(HZ, [claim], listed, {"web-1": web1})
    deletes = [c for c in d.changes if c.action == "delete"]
    assert [(c.target, c.summary, c.destructive, c.ops[0].kwargs) for c in deletes] == [
        ("volume web-1-old", "delete volume (30 GB) and everything on it", True, {"name": "web-1-old", "id": 10})]
    assert d.blocked == ("volume web-1-keep is not in the config any more but is delete-protected: put it back "
                         "with protection: false, apply, then remove it",)
