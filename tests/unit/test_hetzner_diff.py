"""Cloud servers: wanted vs listed -> create, nothing, resize, delete, blocked. Pure."""
from __future__ import annotations

from pathlib import Path

from homelab.config.hetzner import HetznerConfig, Server
from homelab.config.schema import Config
from homelab.config.compute import ComputeConfig
from homelab.layers.base import Observed, RunContext
from homelab.layers.compute import ComputeLayer
from homelab.layers.compute.hetzner import diff_servers, host_target
from homelab.providers.hcloud_api import CloudServer, server_ipv6
from homelab.state import State

CFG = HetznerConfig(servers=(Server("web-1", "cx22", "fsn1"), Server("web-2", "cax11", "hel1", protection=False)))


def listed(name: str, type: str = "cx22", location: str = "fsn1", protected: bool = True, **kw: object) -> CloudServer:
    server = CFG.server(name) or Server(name, type, location)
    labels = kw.pop("labels", CFG.labels_for(server))
    return CloudServer(id=hash(name) % 1000, name=name, type=type, location=location, status="running",
                       ipv4="192.0.2.1", labels=labels, protected=protected, **kw)  # type: ignore[arg-type]


def test_nothing_exists_plans_two_creates_with_our_labels() -> None:
    d = diff_servers(CFG, [], {})
    assert [(c.target, c.action) for c in d.changes] == [("server web-1", "create"), ("server web-2", "create")]
    assert d.creates == ("web-1", "web-2")
    op = d.changes[0].ops[0]
    assert op.name == "hetzner.create_server"
    assert op.kwargs["labels"] == {"managed-by": "homelab", "homelab/cluster": "homelab", "homelab/server": "web-1"}
    assert d.changes[0].summary == "create cx22 in fsn1 from debian-13, delete protection on"
    assert not d.changes[0].destructive and not d.blocked


def test_everything_as_wanted_plans_nothing() -> None:
    d = diff_servers(CFG, [listed("web-1"), listed("web-2", "cax11", "hel1", protected=False)], {})
    assert d.changes == ()
    assert d.same == ("server web-1: cx22 in fsn1, running, protected", "server web-2: cax11 in hel1, running")


def test_changed_type_is_a_resize_never_a_replace() -> None:
    d = diff_servers(CFG, [listed("web-1", "cx32"), listed("web-2", "cax11", "hel1", protected=False)], {})
    (c,) = d.changes
    assert (c.action, c.target, c.destructive) == ("resize", "server web-1", False)
    assert c.summary.startswith("resize cx32 -> cx22")
    assert c.ops[0].name == "hetzner.change_type" and c.ops[0].kwargs["to"] == "cx22"


def test_removed_server_is_a_destructive_delete() -> None:
    extra = listed("old-1", protected=False, labels={"managed-by": "homelab", "homelab/cluster": "homelab"})
    d = diff_servers(CFG, [listed("web-1"), listed("web-2", "cax11", "hel1", protected=False), extra], {})
    (c,) = d.changes
    assert (c.action, c.target, c.destructive) == ("delete", "server old-1", True)
    assert c.ops[0].kwargs == {"name": "old-1", "id": extra.id}
    assert not d.blocked


def test_removed_protected_server_blocks_the_plan() -> None:
    extra = listed("old-1", protected=True, labels={"managed-by": "homelab", "homelab/cluster": "homelab"})
    d = diff_servers(CFG, [listed("web-1"), listed("web-2", "cax11", "hel1", protected=False), extra], {})
    assert d.changes == ()
    assert d.blocked == ("server old-1 is not in the config any more but is delete-protected: put it back with "
                         "protection: false, apply, then remove it",)


def test_protection_backups_and_labels_are_updates() -> None:
    wrong = listed("web-1", protected=False, backups=True, labels={"managed-by": "homelab"})
    d = diff_servers(CFG, [wrong, listed("web-2", "cax11", "hel1", protected=False)], {})
    assert [(c.action, c.summary) for c in d.changes] == [
        ("update", "delete protection on"), ("update", "backups off"), ("update", "labels")]
    assert d.changes[2].detail == ("- managed-by=homelab",
                                   "+ homelab/cluster=homelab, homelab/server=web-1, managed-by=homelab")


def test_moved_location_is_reported_not_replaced() -> None:
    d = diff_servers(CFG, [listed("web-1", location="nbg1"), listed("web-2", "cax11", "hel1", protected=False)], {})
    assert d.changes == ()
    assert "web-1 is in nbg1, the config says fsn1" in d.warnings[0]


def test_server_deleted_outside_homelab_is_recreated_with_a_warning() -> None:
    d = diff_servers(CFG, [listed("web-2", "cax11", "hel1", protected=False)], {"web-1": {"id": 1}})
    assert [c.target for c in d.changes] == ["server web-1"]
    assert "deleted outside homelab" in d.warnings[0]


def context(tmp_path: Path, hetzner: HetznerConfig) -> RunContext:
    cfg = Config(tmp_path / "c.yaml", sections={"compute": ComputeConfig(hetzner=hetzner)})
    return RunContext(cfg, State(tmp_path / "c.state.json"))


def test_new_servers_get_their_base_in_the_same_plan(tmp_path: Path) -> None:
    ctx = context(tmp_path, CFG)
    plan = ComputeLayer().diff(ctx, Observed(api=[]))
    hosts = {c.host for c in plan.changes if c.host}
    assert hosts == {"web-1", "web-2"}
    assert any(c.host == "web-1" and c.summary.startswith("install packages") for c in plan.changes)
    assert [c.target for c in plan.changes if c.host is None] == ["server web-1", "server web-2"]


def test_a_server_is_a_root_host_as_it_boots(tmp_path: Path) -> None:
    # a login recorded by an earlier apply is the engine's to apply (LoginAs), not compute's
    ctx = context(tmp_path, CFG)
    ctx.state.update_host("web-1", login_user="admin")
    t = host_target(ctx, "web-1", "192.0.2.1", "/k")
    assert (t.user, t.sudo, t.kind, t.key_path) == ("root", False, "server", "/k")


def test_known_servers_become_hosts_without_an_api_call(tmp_path: Path) -> None:
    ctx = context(tmp_path, CFG)
    ctx.state.section("compute")["servers"] = {"web-1": {"id": 1, "ipv4": "192.0.2.7", "ipv6": "2001:db8:7::1"},
                                               "web-2": {"id": 2, "ipv4": "192.0.2.8"}}  # recorded before ipv6
    ComputeLayer().contribute_hosts(ctx)  # no token, no endpoint: would raise if it asked the API
    assert {n: (h.address, h.ipv6) for n, h in ctx.hosts.items()} == {"web-1": ("192.0.2.7", "2001:db8:7::1"),
                                                                      "web-2": ("192.0.2.8", None)}


def test_a_servers_ipv6_is_the_first_address_of_its_64() -> None:
    assert (server_ipv6("2a01:4f8:1c1e:7f2a::/64"), server_ipv6(None)) == ("2a01:4f8:1c1e:7f2a::1", None)


