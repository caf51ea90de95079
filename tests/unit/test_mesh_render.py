"""wg0.conf per topology case (golden files) and the live-update script.

Regenerate the golden files after an intended change with HOMELAB_UPDATE_GOLDEN=1 and
review the diff like code.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from homelab.layers.mesh.keys import PRIVATE_KEY
from homelab.layers.mesh.render import render_sync_script, render_wg_conf
from homelab.layers.mesh.topology import peers_of, route_of

from test_mesh_fixtures import KEYS, interface_for, node

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mesh"

# name -> (nodes, relay, preshared keys)
CASES = {
    # three cloud servers: everyone dials everyone, no keepalive, nobody forwards
    "public-full-mesh": ([node("a", "10.100.0.1", "203.0.113.1"), node("b", "10.100.0.2", "203.0.113.2"),
                          node("c", "10.100.0.3", "vpn.example.org", port=51821)], None, False),
    # the lab's shape: two public nodes and one home machine behind NAT
    "nat-behind-router": ([node("h1", "10.100.0.1", "10.80.0.11"), node("h2", "10.100.0.2", "10.80.0.12"),
                           node("h3", "10.100.0.3", None)], None, False),
    # two home machines: their traffic meets at the relay web-1, the only node that forwards
    "nat-to-nat-relay": ([node("web-1", "10.100.0.1", "203.0.113.7"), node("web-2", "10.100.0.2", "2001:db8::2"),
                          node("pi-1", "10.100.0.3", None), node("nas", "10.100.0.4", None)], "web-1", False),
    # as the lab, with a preshared key per pair, loaded from files by wg-quick
    "preshared-keys": ([node("h1", "10.100.0.1", "10.80.0.11"), node("h2", "10.100.0.2", "10.80.0.12"),
                        node("h3", "10.100.0.3", None)], None, True),
}


def golden(path: Path, text: str) -> None:
    if os.environ.get("HOMELAB_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with HOMELAB_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{path} differs (HOMELAB_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("case", sorted(CASES))
def test_wg_conf_matches_golden(case: str) -> None:
    nodes, relay, psk = CASES[case]
    for me in nodes:
        golden(GOLDEN / case / f"{me.name}.conf", render_wg_conf(interface_for(me, nodes, relay, psk)))


def test_golden_dir_has_no_stale_files() -> None:
    want = {f"{case}/{n.name}.conf" for case, (nodes, _, _) in CASES.items() for n in nodes}
    want |= {"sync/h3.sh", "sync/web-1.sh"}
    have = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    assert have == want


def test_no_secret_is_ever_rendered() -> None:
    for nodes, relay, psk in CASES.values():
        for me in nodes:
            text = render_wg_conf(interface_for(me, nodes, relay, psk))
            assert "PrivateKey" not in text and "PresharedKey" not in text
            assert f"PostUp = wg set %i private-key {PRIVATE_KEY}" in text


def test_public_nodes_full_mesh_and_nat_dials_out_with_keepalive() -> None:
    nodes, relay, _ = CASES["nat-behind-router"]
    h1, h2, h3 = nodes
    p1 = {p.name: p for p in peers_of(h1, nodes, 25, relay)}
    assert p1["h2"].endpoint == "10.80.0.12:51820" and p1["h2"].keepalive is None
    assert p1["h3"].endpoint is None and p1["h3"].keepalive is None  # h3 dials h1, never the reverse
    p3 = {p.name: p for p in peers_of(h3, nodes, 25, relay)}
    assert set(p3) == {"h1", "h2"}
    assert all(p.keepalive == 25 and p.endpoint for p in p3.values())
    assert p3["h1"].allowed_ips == ("10.100.0.1/32",)


def test_nat_to_nat_goes_through_the_relay_only() -> None:
    nodes, relay, _ = CASES["nat-to-nat-relay"]
    web1, web2, pi, nas = nodes
    pi_peers = {p.name: p for p in peers_of(pi, nodes, 25, relay)}
    assert set(pi_peers) == {"web-1", "web-2"}  # never nas directly
    assert pi_peers["web-1"].allowed_ips == ("10.100.0.1/32", "10.100.0.4/32")
    assert pi_peers["web-2"].allowed_ips == ("10.100.0.2/32",)
    assert pi_peers["web-2"].endpoint == "[2001:db8::2]:51820"
    assert route_of(pi, nas, relay) == "web-1" and route_of(pi, web2, relay) == "web-2"
    assert interface_for(web1, nodes, relay).forward and not interface_for(web2, nodes, relay).forward
    assert {p.name for p in peers_of(web1, nodes, 25, relay)} == {"web-2", "pi-1", "nas"}


def test_sync_script_goldens() -> None:
    nodes, relay, _ = CASES["preshared-keys"]
    h3 = nodes[2]
    iface = interface_for(h3, nodes, relay, psk=True)
    keys = [KEYS[p.name] for p in iface.peers]
    files = {KEYS[p.name]: f"/etc/wireguard/psk/{p.name}.psk" for p in iface.peers}
    golden(GOLDEN / "sync" / "h3.sh", render_sync_script("wg0", keys, True, files, False))
    nodes, relay, _ = CASES["nat-to-nat-relay"]
    iface = interface_for(nodes[0], nodes, relay)
    keys = [KEYS[p.name] for p in iface.peers]
    golden(GOLDEN / "sync" / "web-1.sh", render_sync_script("wg0", keys, False, {}, True))


def test_sync_script_never_holds_the_private_key_in_an_argument() -> None:
    script = render_sync_script("wg0", [KEYS["h1"]], False, {}, False)
    # awk reads the key from its file with getline; it is piped into `wg syncconf /dev/stdin`
    assert f"keyfile={PRIVATE_KEY}" in script and "getline key < keyfile" in script
    assert "wg syncconf wg0 /dev/stdin" in script
    assert "$(cat" not in script
    assert f"wg set wg0 peer {KEYS['h1']} preshared-key /dev/null" in script  # PSKs off: cleared
