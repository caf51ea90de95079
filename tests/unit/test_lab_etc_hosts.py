"""The lab's /etc/hosts: newer hosts' names are added without undoing a host's own name."""
from __future__ import annotations

from ipaddress import IPv4Address

from homelab.lab.hosts import render_etc_hosts


def test_a_host_keeps_its_own_name_line_when_the_lab_adds_newer_hosts() -> None:
    hosts = {"h1": IPv4Address("10.9.0.11"), "h2": IPv4Address("10.9.0.12")}
    fresh = render_etc_hosts("h1", IPv4Address("10.9.0.1"), hosts)
    assert fresh.splitlines()[:3] == ["127.0.0.1 localhost", "127.0.1.1 h1", "10.9.0.1 labrepo"]
    # homelab's compute layer named it web-1 since: the lab's refresh keeps that
    kept = render_etc_hosts("h1", IPv4Address("10.9.0.1"), hosts, own_line="127.0.1.1 web-1")
    assert "127.0.1.1 web-1" in kept.splitlines() and "127.0.1.1 h1" not in kept.splitlines()
    assert kept.splitlines()[-2:] == ["10.9.0.11 h1", "10.9.0.12 h2"]
