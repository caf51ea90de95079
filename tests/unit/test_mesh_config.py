"""`mesh:` config: defaults, node cross-checks against compute, what the firewall layer reads."""
from __future__ import annotations

from pathlib import Path

import pytest

from homelab.config import parse_config
from homelab.config.mesh import AUTO, MeshConfig
from homelab.errors import ConfigError

MACHINES = """\
compute:
  machines:
    - {name: h1, address: 10.80.0.11}
    - {name: h2, address: 10.80.0.12}
    - {name: vps, address: 95.217.0.9}
    - {name: nas, address: nas.example.org}
"""


def mesh(text: str) -> MeshConfig:
    cfg = parse_config(MACHINES + text, Path("c.yaml")).get("mesh")
    assert isinstance(cfg, MeshConfig)
    return cfg


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(MACHINES + text, Path("c.yaml"))
    return [p.render() for p in exc.value.problems]


def test_defaults_and_every_compute_host_as_node() -> None:
    m = mesh("mesh: {}\n")
    assert (m.cidr, m.port, m.interface, m.preshared_keys, m.keepalive, m.handshake_timeout) == \
        ("10.100.0.0/24", 51820, "wg0", False, 25, 180)
    # a private address is behind NAT; a public address or a DNS name is dialled where homelab finds it
    assert [(n.name, n.endpoint) for n in m.members] == [("h1", None), ("h2", None), ("vps", AUTO), ("nas", AUTO)]
    assert not m.accepts_inbound("h1") and m.accepts_inbound("vps") and not m.accepts_inbound("unknown")
    assert m.relay_node() == "vps" and m.forwards("vps") and not m.forwards("nas")


def test_listed_nodes_what_the_permissions_layer_reads() -> None:
    m = mesh("mesh:\n  port: 51000\n  interface: mesh0\n  cidr: 10.9.0.0/24\n  nodes:\n"
             "    - {name: h1, endpoint: 10.80.0.11, port: 51999}\n    - {name: h2}\n")
    assert (m.port, m.interface, m.cidr) == (51000, "mesh0", "10.9.0.0/24")
    assert m.accepts_inbound("h1") and not m.accepts_inbound("h2") and not m.accepts_inbound("vps")
    assert m.port_of("h1") == 51999 and m.port_of("h2") == 51000
    assert m.relay_node() is None  # one NAT'd node needs no relay


def test_node_names_are_cross_checked_with_suggestions() -> None:
    got = problems("mesh:\n  nodes:\n    - {name: h1, endpoint: 10.80.0.11}\n    - {name: h3}\n    - {name: vpz}\n")
    assert got == [
        "c.yaml:10:14: mesh.nodes[1].name: 'h3' is not a compute machine or server "
        "(hint: compute hosts: h1, h2, vps, nas)",
        "c.yaml:11:14: mesh.nodes[2].name: 'vpz' is not a compute machine or server (hint: did you mean 'vps'?)"]


def test_all_problems_at_once() -> None:
    got = problems("mesh:\n  cidr: 8.8.8.0/24\n  interface: wg-0\n  port: 0\n  keepalive: x\n  relay: h2\n"
                   "  nodes:\n    - {name: h1}\n    - {name: h1}\n    - {name: h2, prot: 1}\n    - {name: vps, endpoint: 'a b'}\n")
    text = "\n".join(got)
    assert "mesh.cidr: 8.8.8.0/24 should be a private network" in text
    assert "mesh.interface: 'wg-0' is not allowed here" in text
    assert "mesh.port: should be an integer 1-65535, got 0" in text
    assert "mesh.keepalive: should be an integer 1-3600, not a string" in text
    assert "mesh.nodes[3].endpoint: 'a b' is not an IP address or host name" in text
    assert "mesh.nodes[1].name: 'h1' is already used by mesh.nodes[0]" in text
    assert "mesh.nodes[2].prot: unknown key (hint: did you mean 'port'?)" in text


def test_no_public_node_relay_must_be_public_and_cidr_must_fit() -> None:
    got = problems("mesh:\n  nodes:\n    - {name: h1}\n    - {name: h2}\n")
    assert got == ["c.yaml:7:1: mesh: no node has an endpoint, so no two nodes can ever meet "
                   "(hint: list the nodes under mesh.nodes and give the reachable ones an endpoint)"]
    got = problems("mesh:\n  relay: h1\n  cidr: 10.1.0.0/30\n")
    assert any("mesh.relay: 'h1' is not a mesh node with an endpoint" in p for p in got)
    assert any("mesh.cidr: 10.1.0.0/30 has room for 2 nodes, the mesh has 4" in p for p in got)


def test_endpoint_auto_and_ipv6() -> None:
    m = mesh("mesh:\n  nodes:\n    - {name: vps, endpoint: auto}\n    - {name: nas, endpoint: '2001:db8::1'}\n")
    assert [n.endpoint for n in m.members] == [AUTO, "2001:db8::1"]
