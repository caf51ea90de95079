"""Mesh monitors: a node pane line each, and the directed-pair matrix ("h1->h2")."""
from __future__ import annotations

import dataclasses

from homelab.config.mesh import DEFAULT_HANDSHAKE_TIMEOUT
from homelab.layers.mesh.monitors import mesh_monitors
from homelab.model import Health
from test_mesh_fixtures import KEYS, converged, node

NODES = (node("h1", "10.100.0.1", "10.80.0.11"), node("h2", "10.100.0.2", "10.80.0.12"), node("h3", "10.100.0.3", None))


def monitors(facts: dict, relay: str | None = None, timeout: int = DEFAULT_HANDSHAKE_TIMEOUT,
             unreachable: dict | None = None, nodes: tuple = NODES) -> dict[str, tuple[Health, str]]:
    out = mesh_monitors(nodes, facts, KEYS, relay, "wg0", timeout, unreachable or {})
    return {m.subject: (m.health, m.reason) for m in out}


def test_healthy_mesh_is_a_full_matrix_of_ok() -> None:
    got = monitors({n.name: converged(n, NODES, None) for n in NODES})
    pairs = [s for s in got if "->" in s]
    assert sorted(pairs) == ["h1->h2", "h1->h3", "h2->h1", "h2->h3", "h3->h1", "h3->h2"]
    assert all(h is Health.OK for h, _ in got.values())
    assert got["h1->h3"][1] == "handshake 5 s ago, ping 0.50 ms"
    assert got["h3"][1] == "wg0 10.100.0.3, wireguard-go (userspace), starts at boot"
    kernel = monitors({n.name: converged(n, NODES, None, kernel="loaded") for n in NODES})
    assert kernel["h1"][1] == "wg0 10.100.0.1, kernel module, starts at boot"


def test_default_limit_is_180_s_and_a_fail_names_both_ends() -> None:
    facts = {n.name: converged(n, NODES, None, handshake_age=180) for n in NODES}
    assert monitors(facts)["h1->h2"][0] is Health.OK  # at the limit: still fine
    facts["h1"] = converged(NODES[0], NODES, None, handshake_age=181)
    health, reason = monitors(facts)["h1->h2"]
    assert health is Health.FAIL
    assert reason == "no handshake between h1 and h2 for 181 s (limit 180 s)"
    assert monitors(facts, timeout=300)["h1->h2"][0] is Health.OK  # mesh.handshake_timeout


def test_never_a_handshake_is_fail() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    run = facts["h3"].running
    facts["h3"] = dataclasses.replace(facts["h3"], running=dataclasses.replace(
        run, handshakes={k: 0 for k in run.handshakes}))
    health, reason = monitors(facts)["h3->h1"]
    assert (health, reason) == (Health.FAIL, "no handshake between h3 and h1 ever (limit 180 s)")


def test_stopping_wireguard_on_one_node_fails_exactly_its_pairs() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES}
    facts["h2"] = dataclasses.replace(facts["h2"], running=None, unit_active=False)
    for name in ("h1", "h3"):  # the others' pings to h2 go unanswered
        pings = dict(facts[name].pings)
        pings["10.100.0.2"] = None
        facts[name] = dataclasses.replace(facts[name], pings=pings)
    got = monitors(facts)
    failed = sorted(s for s, (h, _) in got.items() if h is Health.FAIL)
    assert failed == ["h1->h2", "h2", "h2->h1", "h2->h3", "h3->h2"]
    assert got["h2"][1] == "wg0 is down (wg-quick@wg0 inactive)"
    assert got["h2->h1"][1] == "h2 -> h1: h2's WireGuard is down"
    assert got["h1->h2"][1] == "h1 gets no ping reply from h2 (10.100.0.2); handshake 5 s ago"


def test_relayed_pair_is_judged_by_the_relay_handshake_and_the_end_to_end_ping() -> None:
    nodes = NODES + (node("h4", "10.100.0.4", None),)
    facts = {n.name: converged(n, nodes, "h1") for n in nodes}
    got = monitors(facts, relay="h1", nodes=nodes)
    assert got["h3->h4"] == (Health.OK, "handshake 5 s ago, ping 0.50 ms via h1")
    assert got["h3->h2"] == (Health.OK, "handshake 5 s ago, ping 0.50 ms")


def test_unreachable_node_and_missing_peer() -> None:
    facts = {n.name: converged(n, NODES, None) for n in NODES[:2]}
    got = monitors(facts, unreachable={"h3": "connect to h3: timed out"})
    assert got["h3"] == (Health.FAIL, "not checked: connect to h3: timed out")
    assert got["h3->h1"][0] is Health.UNKNOWN
    run = facts["h1"].running
    facts["h1"] = dataclasses.replace(facts["h1"], running=dataclasses.replace(
        run, handshakes={k: v for k, v in run.handshakes.items() if k != KEYS["h2"]}))
    assert monitors(facts)["h1->h2"] == (Health.FAIL, "h1 -> h2: h1 has no peer h2 (apply needed)")
