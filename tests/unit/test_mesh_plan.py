"""The mesh diff, pass by pass: fresh mesh, convergence, rotation, preshared keys, drift."""
from __future__ import annotations

import dataclasses

from homelab.layers.mesh.plan import MeshInputs, is_deferred, plan_mesh
from homelab.layers.mesh.probes import NodeFacts
from homelab.model import Change
from homelab.secrets import Secret
from test_mesh_fixtures import KEYS, converged, fake_key, node

NODES = (node("h1", "10.100.0.1", "10.80.0.11"), node("h2", "10.100.0.2", "10.80.0.12"), node("h3", "10.100.0.3", None))
FRESH = NodeFacts(kernel="none")


def inputs(facts: dict[str, NodeFacts], **kw: object) -> MeshInputs:
    base = dict(interface="wg0", prefixlen=24, nodes=NODES, relay=None, keepalive=25, preshared_keys=False,
                facts=facts)
    base.update(kw)
    return MeshInputs(**base)  # type: ignore[arg-type]


def on(changes: tuple[Change, ...], host: str) -> list[Change]:
    return [c for c in changes if c.host == host]


def ops(change: Change) -> list[str]:
    return [op.name for op in change.ops]


def keyed(facts: NodeFacts, name: str) -> NodeFacts:
    """A node after pass 1: packages and key exist, nothing else."""
    return dataclasses.replace(facts, packages=frozenset({"wireguard-tools", "wireguard-go", "iputils-ping"}),
                               public_key=KEYS[name], key_mode="600")


def test_fresh_mesh_pass_one_makes_keys_and_defers_configs() -> None:
    result = plan_mesh(inputs({n.name: FRESH for n in NODES}))
    plan = result.plan
    for n in ("h1", "h2", "h3"):
        mine = on(plan.changes, n)
        # packages are claims (config/mesh.py): compute installs them, the mesh only notes it
        assert f"{n}: wireguard-tools, wireguard-go, iputils-ping not installed yet " \
               "(compute's package step installs them)" in plan.notes
        assert "generate a WireGuard key" in mine[0].summary and ops(mine[0]) == ["server.shell"]
        assert "wg genkey" in mine[0].ops[0].kwargs["commands"][0]
        assert all(is_deferred(c) for c in mine[1:]) and len(mine) == 3
    assert not result.psk_reads


def test_kernel_module_means_no_wireguard_go() -> None:
    plan = plan_mesh(inputs({n.name: dataclasses.replace(FRESH, kernel="available") for n in NODES})).plan
    assert "h1: wireguard-tools, iputils-ping not installed yet (compute's package step installs them)" in plan.notes


def test_pass_two_writes_configs_and_starts_the_unit() -> None:
    plan = plan_mesh(inputs({n.name: keyed(FRESH, n.name) for n in NODES})).plan
    assert not any(is_deferred(c) for c in plan.changes)
    h3 = on(plan.changes, "h3")
    assert [ops(c) for c in h3] == [["files.put_text"], ["systemd.service"]]
    conf = h3[0].ops[0].kwargs
    assert conf["dest"] == "/etc/wireguard/wg0.conf" and conf["mode"] == "600"
    assert KEYS["h1"] in conf["content"] and "PersistentKeepalive = 25" in conf["content"]
    assert h3[1].ops[0].kwargs == {"service": "wg-quick@wg0", "running": True, "enabled": True, "restarted": True}
    assert h3[0].detail == ()  # a new file: the summary names the peers


def test_converged_mesh_plans_nothing_and_says_why() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    plan = plan_mesh(inputs(facts)).plan
    assert plan.changes == ()
    assert "h3: wg0 runs its config (wireguard-go (userspace))" in plan.unchanged
    assert "h1: /etc/wireguard/wg0.conf is up to date (2 peer(s))" in plan.unchanged


def test_adding_a_node_touches_peers_with_syncconf_not_a_restart() -> None:
    h4 = node("h4", "10.100.0.4", None)
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    facts["h4"] = keyed(FRESH, "h4")
    plan = plan_mesh(inputs(facts, nodes=NODES + (h4,), relay="h1")).plan
    h2 = on(plan.changes, "h2")
    assert [ops(c) for c in h2] == [["files.put_text"], ["server.shell"]]
    assert "+# h4: dials us (behind NAT)" in h2[0].detail and "+AllowedIPs = 10.100.0.4/32" in h2[0].detail
    assert "wg syncconf" in h2[1].summary and "tunnels stay up" in h2[1].summary
    h1 = on(plan.changes, "h1")  # the relay now also forwards between h3 and h4
    assert "PostUp = sysctl -q -w net.ipv4.conf.%i.forwarding=1" in h1[0].ops[0].kwargs["content"]
    assert "sysctl -q -w net.ipv4.conf.wg0.forwarding=1" in h1[1].ops[0].kwargs["commands"][0]
    assert not any("restart" in c.summary for c in plan.changes)


def test_rotation_replaces_the_key_and_defers_peers_until_it_is_read() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    plan = plan_mesh(inputs(facts, rotate=frozenset({"h3"}))).plan
    h3 = on(plan.changes, "h3")
    assert "rotate the WireGuard key" in h3[0].summary
    cmd = h3[0].ops[0].kwargs["commands"][0]
    assert "wg genkey" in cmd and "[ -s" not in cmd  # replaces, unlike first-time generation
    assert all(is_deferred(c) for c in on(plan.changes, "h1") + on(plan.changes, "h2"))
    # pass 2: h3 shows its new key, its interface still runs the old one
    new = fake_key(99)
    facts2 = dict(facts)
    facts2["h3"] = dataclasses.replace(facts["h3"], public_key=new)
    plan2 = plan_mesh(inputs(facts2, known_keys={"h3": KEYS["h3"]})).plan
    assert [ops(c) for c in on(plan2.changes, "h3")] == [["server.shell"]]
    assert "it runs an old key" in on(plan2.changes, "h3")[0].summary
    for peer in ("h1", "h2"):
        put, sync = on(plan2.changes, peer)
        assert new in put.ops[0].kwargs["content"] and KEYS["h3"] not in put.ops[0].kwargs["content"]
        assert "wg syncconf" in sync.ops[0].kwargs["commands"][0]


def test_unreachable_node_keeps_its_last_key_with_a_warning() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES[:2]}
    plan = plan_mesh(inputs(facts, known_keys={"h3": KEYS["h3"]})).plan
    assert plan.changes == ()
    assert plan.warnings == ("h3: not reachable; its peers keep its last known key",)
    plan = plan_mesh(inputs({n.name: keyed(FRESH, n.name) for n in NODES[:2]})).plan
    assert "h3: not reachable and has no key yet" in plan.warnings[0]
    assert "h3" not in on(plan.changes, "h1")[0].ops[0].kwargs["content"]


def test_address_change_restarts_and_drift_is_synced() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    moved = (node("h1", "10.100.0.9", "10.80.0.11"),) + NODES[1:]
    h1 = on(plan_mesh(inputs(facts, nodes=moved)).plan.changes, "h1")
    assert "restart wg-quick@wg0: its address changed" in [c.summary for c in h1]
    run = facts["h2"].running
    assert run is not None
    facts["h2"] = dataclasses.replace(facts["h2"], running=dataclasses.replace(run, listen_port=40000))
    h2 = on(plan_mesh(inputs(facts)).plan.changes, "h2")
    assert len(h2) == 1 and "it listens on 40000, not 51820" in h2[0].summary
    facts["h2"] = dataclasses.replace(facts["h2"], running=None)
    h2 = on(plan_mesh(inputs(facts)).plan.changes, "h2")
    assert [c.summary for c in h2] == ["start wg-quick@wg0 (and at every boot)"]


def test_preshared_keys_made_on_the_owner_then_copied_without_leaking() -> None:
    facts = {n.name: keyed(FRESH, n.name) for n in NODES}
    result = plan_mesh(inputs(facts, preshared_keys=True))
    h1 = on(result.plan.changes, "h1")
    gen = [c for c in h1 if "generate preshared keys" in c.summary]
    assert gen and "wg genpsk" in gen[0].ops[0].kwargs["commands"][0]
    assert "h2, h3" in gen[0].summary  # h1 owns both of its pairs (first by name)
    assert result.psk_reads == {"h1": ("h2", "h3"), "h2": ("h3",)}
    assert any(is_deferred(c) and "copy the preshared key from h1" in c.summary for c in on(result.plan.changes, "h3"))
    # pass 2: the owners have the files, the reads came back as Secrets
    value = fake_key(42)
    facts2 = {n: dataclasses.replace(f, psk_hashes=({"h2": "x12", "h3": "x13"} if n == "h1" else
                                                    {"h3": "x23"} if n == "h2" else {}))
              for n, f in facts.items()}
    secrets = {("h1", "h2"): Secret(value), ("h1", "h3"): Secret(value), ("h2", "h3"): Secret(value)}
    plan = plan_mesh(inputs(facts2, preshared_keys=True, psk_values=secrets)).plan
    assert not any(is_deferred(c) for c in plan.changes)
    copies = [c for c in plan.changes if "the preshared key made on" in c.summary]
    assert sorted((c.host, c.summary) for c in copies) == [
        ("h2", "/etc/wireguard/psk/h1.psk: the preshared key made on h1"),
        ("h3", "/etc/wireguard/psk/h1.psk: the preshared key made on h1"),
        ("h3", "/etc/wireguard/psk/h2.psk: the preshared key made on h2")]
    # only inside the op, and only when the job is handed to the worker (Op.to_json)
    assert all(value not in str(c.ops[1].kwargs["content"]) for c in copies)
    assert all(c.ops[1].to_json()[1]["content"] == value + "\n" for c in copies)
    assert all(value not in str(c.ops[1].to_json(reveal=False)) and value not in c.key for c in copies)
    assert all(value not in c.summary and all(value not in d for d in c.detail) for c in plan.changes)
    confs = [c for c in plan.changes if c.ops and c.ops[0].name == "files.put_text" and "wg0.conf" in c.summary]
    assert all(value not in c.ops[0].kwargs["content"] for c in confs)


def test_converged_with_preshared_keys_and_turning_them_off() -> None:
    facts = {n.name: converged(n, NODES, None, psk=True) for n in NODES}
    assert plan_mesh(inputs(facts, preshared_keys=True)).plan.changes == ()
    plan = plan_mesh(inputs(facts, preshared_keys=False)).plan
    sync = [c for c in plan.changes if c.ops and c.ops[0].name == "server.shell"]
    assert len(sync) == 3 and "preshared-key /dev/null" in sync[0].ops[0].kwargs["commands"][0]
