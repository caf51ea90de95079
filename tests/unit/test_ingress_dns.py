"""DNS records for app hostnames: the pure plan, and apply through the real `hcloud` library
against the stand-in API (in-process, loopback): idempotent, only homelab's records touched."""
from __future__ import annotations

from typing import Iterator

import pytest
from hcloud import Client
from hcloud.zones import ZoneRecord

from homelab.lab.fake_hcloud import FakeHcloud
from homelab.layers.ingress.dns import (DnsPlan, RecordChange, apply_records, labels_for, observe_records,
                                        plan_by_hand, plan_records, record_addresses, relative_name,
                                        wanted_records)
from homelab.providers.hcloud_api import HcloudApi
from homelab.providers.dns_records import RRSet
from homelab.providers.hcloud_zones import HcloudZones
from homelab.secrets import Secret

OURS = labels_for("home")
HOSTS = ["notes.example.org", "example.org", "wiki.lan.example.org", "blog.other.net"]


def test_names_relative_to_the_zone() -> None:
    assert relative_name("notes.example.org", "example.org") == "notes"
    assert relative_name("Example.org.", "example.org") == "@"
    assert relative_name("a.b.example.org", "example.org") == "a.b"
    assert relative_name("notexample.org", "example.org") is None


def test_wanted_records_and_the_names_left_to_a_person() -> None:
    inside, manual = wanted_records(HOSTS, "example.org", ["203.0.113.8", "203.0.113.7"], ["2001:db8::7"], 300, "home")
    assert [(r.name, r.type, r.values) for r in inside] == [
        ("@", "A", ("203.0.113.7", "203.0.113.8")), ("@", "AAAA", ("2001:db8::7",)),
        ("notes", "A", ("203.0.113.7", "203.0.113.8")), ("notes", "AAAA", ("2001:db8::7",)),
        ("wiki.lan", "A", ("203.0.113.7", "203.0.113.8")), ("wiki.lan", "AAAA", ("2001:db8::7",))]
    assert all(r.labels == OURS and r.ttl == 300 for r in inside)
    assert manual == ["blog.other.net. 300 IN A 203.0.113.7", "blog.other.net. 300 IN A 203.0.113.8",
                      "blog.other.net. 300 IN AAAA 2001:db8::7"]
    # no provider: every record by hand
    assert plan_by_hand(["notes.example.org"], ["203.0.113.7"], [], 300) == \
        DnsPlan(None, manual=("notes.example.org. 300 IN A 203.0.113.7",))


def test_records_point_at_each_machines_address_and_its_ipv6() -> None:
    known = {"web": ("203.0.113.7", "2001:db8::7"), "v6only": ("2001:db8::9", None), "pi": ("pi.home.arpa", None),
             "named": ("web2.example.org", "2001:db8::8"), "twice": ("2001:db8::7", "2001:db8::7")}
    assert record_addresses(["web", "v6only", "named", "twice"], known) == (
        ["203.0.113.7"], ["2001:db8::7", "2001:db8::9", "2001:db8::8"], [])
    assert record_addresses(["pi", "new"], known) == ([], [], [
        "DNS: pi has no IP address known here (pi.home.arpa): no record points at it",
        "DNS: new has no IP address known here (not created yet): no record points at it"])


def test_plan_creates_updates_deletes_only_what_is_ours() -> None:
    wanted = [RRSet("notes", "A", ("203.0.113.7",), 300, OURS), RRSet("wiki", "A", ("203.0.113.7",), 300, OURS),
              RRSet("www", "A", ("203.0.113.7",), 300, OURS), RRSet("same", "A", ("203.0.113.7",), 300, OURS)]
    observed = [RRSet("wiki", "A", ("198.51.100.1",), 300, OURS),  # moved: update
                RRSet("www", "A", ("192.0.2.1",), 3600, {}),  # someone else's: never touched
                RRSet("same", "A", ("203.0.113.7",), 300, OURS),
                RRSet("old", "A", ("203.0.113.7",), 300, OURS),  # no app any more: delete
                RRSet("mail", "A", ("192.0.2.9",), 3600, {}),  # not ours, not wanted: left alone
                RRSet("other", "A", ("192.0.2.9",), 300, labels_for("another-cluster"))]
    plan = plan_records(wanted, observed, zone="example.org", cluster="home")
    assert [c.summary for c in plan.changes] == [
        "+ notes A 203.0.113.7 (ttl 300)",
        "~ wiki A 198.51.100.1 -> 203.0.113.7 (ttl 300)",
        "- old A 203.0.113.7 (no app uses it any more)"]
    assert plan.unchanged == ("same A 203.0.113.7 is set",)
    assert plan.conflicts == ("www A exists in example.org with 192.0.2.1 and is not homelab's: left alone "
                              "(delete it, or give the app another hostname)",)
    assert plan_records(wanted[3:], observed[2:3], zone="example.org", cluster="home").changes == ()


@pytest.fixture
def zones() -> Iterator[tuple[HcloudZones, Client]]:
    with FakeHcloud("tok") as fake:
        api = HcloudApi(Secret("tok"), fake.url, poll_cap=0.01)
        yield HcloudZones(api), Client("tok", api_endpoint=fake.url)


def test_apply_against_the_stand_in_is_idempotent_and_leaves_foreign_records(
        zones: tuple[HcloudZones, Client]) -> None:
    dns, client = zones
    zone = client.zones.create(name="example.org", mode="primary").zone
    client.zones.create_rrset(zone, name="www", type="A", records=[ZoneRecord(value="192.0.2.1")])

    def plan(hosts: list[str], ipv4: list[str]) -> DnsPlan:
        inside, manual = wanted_records(hosts, "example.org", ipv4, [], 300, "home")
        return plan_records(inside, observe_records(dns, "example.org"), zone="example.org", cluster="home",
                            manual=manual)

    first = plan(["notes.example.org", "wiki.example.org", "www.example.org"], ["203.0.113.7"])
    assert [c.action for c in first.changes] == ["create", "create"] and len(first.conflicts) == 1
    assert apply_records(dns, first) == ["+ notes A 203.0.113.7 (ttl 300)", "+ wiki A 203.0.113.7 (ttl 300)"]
    again = plan(["notes.example.org", "wiki.example.org", "www.example.org"], ["203.0.113.7"])
    assert again.changes == () and len(again.unchanged) == 2  # second apply changes nothing
    # ingress moves and wiki goes away
    moved = plan(["notes.example.org"], ["203.0.113.8"])
    assert [c.summary for c in moved.changes] == ["~ notes A 203.0.113.7 -> 203.0.113.8 (ttl 300)",
                                                  "- wiki A 203.0.113.7 (no app uses it any more)"]
    apply_records(dns, moved)
    have = {(r.name, r.type): r for r in client.zones.get_rrset_all(zone)}
    assert [x.value for x in have[("notes", "A")].records] == ["203.0.113.8"]
    assert have[("notes", "A")].labels == OURS and ("wiki", "A") not in have
    assert [x.value for x in have[("www", "A")].records] == ["192.0.2.1"]  # not homelab's: untouched
    assert {("@", "SOA"), ("@", "NS")} <= set(have)
    assert plan(["notes.example.org"], ["203.0.113.8"]).changes == ()


def test_no_zone_means_nothing_is_applied() -> None:
    class Refuse:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"{name} called without a zone")

    plan = plan_by_hand(["a.example.org"], ["203.0.113.7"], [], 300)
    assert apply_records(Refuse(), plan) == []  # type: ignore[arg-type]
    assert RecordChange("delete", RRSet("a", "A", ("1.2.3.4",)), ("1.2.3.4",)).summary.startswith("- a A 1.2.3.4")
