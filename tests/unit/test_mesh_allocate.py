"""Stable mesh addresses: adding a node never renumbers the others."""
from __future__ import annotations

import random

import pytest

from homelab.layers.mesh.allocate import allocate_addresses


def test_fresh_mesh_counts_up_in_config_order() -> None:
    assert allocate_addresses("10.100.0.0/24", ["web-1", "pi-1", "nas"], {}) == {
        "web-1": "10.100.0.1", "pi-1": "10.100.0.2", "nas": "10.100.0.3"}


def test_adding_a_node_anywhere_never_renumbers_others() -> None:
    kept = allocate_addresses("10.100.0.0/24", ["b", "c"], {})
    grown = allocate_addresses("10.100.0.0/24", ["a", "b", "c"], kept)  # new node listed first
    assert grown["b"] == kept["b"] and grown["c"] == kept["c"]
    assert grown["a"] == "10.100.0.3"


def test_random_histories_keep_every_address_while_its_node_stays() -> None:
    rng = random.Random(4)
    for _ in range(200):
        names: list[str] = []
        state: dict[str, str] = {}
        for step in range(12):
            if names and rng.random() < 0.3:
                names.remove(rng.choice(names))
            else:
                names.insert(rng.randrange(len(names) + 1), f"n{step}")
            new = allocate_addresses("10.100.0.0/28", names, state)
            assert all(new[n] == state[n] for n in names if n in state)
            assert len(set(new.values())) == len(names)
            state = new


def test_removed_node_frees_its_address_and_bad_records_are_replaced() -> None:
    kept = {"a": "10.100.0.1", "b": "10.100.0.2", "c": "10.100.0.0", "d": "192.168.1.5", "e": "10.100.0.2"}
    got = allocate_addresses("10.100.0.0/24", ["b", "c", "d", "e"], kept)
    assert got["b"] == "10.100.0.2"
    assert got["c"] == "10.100.0.1"  # the network address is no host address; a's .1 is free again
    assert got["d"] == "10.100.0.3" and got["e"] == "10.100.0.4"  # outside the CIDR / taken twice


def test_hints_from_the_nodes_are_used_only_when_state_has_nothing() -> None:
    got = allocate_addresses("10.100.0.0/24", ["a", "b", "c"], {"a": "10.100.0.7"},
                             hints={"a": "10.100.0.1", "b": "10.100.0.5", "c": "10.100.0.7"})
    assert got == {"a": "10.100.0.7", "b": "10.100.0.5", "c": "10.100.0.1"}


def test_full_network_is_an_error() -> None:
    with pytest.raises(ValueError, match="no free address left for c"):
        allocate_addresses("10.100.0.0/30", ["a", "b", "c"], {})
