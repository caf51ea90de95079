"""The stand-in's zones and RRSets speak the Cloud API's shapes: the real `hcloud` library
(`client.zones`) drives them unchanged. Loopback only."""
from __future__ import annotations

from typing import Iterator

import pytest
from hcloud import APIException, Client
from hcloud.zones import Zone, ZoneRecord, ZoneRRSet

from homelab.lab.fake_hcloud import FakeHcloud


@pytest.fixture
def fake() -> Iterator[FakeHcloud]:
    with FakeHcloud("tok", readonly_tokens=["ro"]) as f:
        yield f


@pytest.fixture
def client(fake: FakeHcloud) -> Client:
    return Client("tok", api_endpoint=fake.url, poll_interval=0.01)


def test_zone_lifecycle_with_default_soa_and_ns(client: Client) -> None:
    resp = client.zones.create(name="example.org", mode="primary", ttl=3600, labels={"managed-by": "homelab"},
                               rrsets=[ZoneRRSet(name="www", type="A", records=[ZoneRecord(value="198.51.100.1")])])
    resp.action.wait_until_finished()
    assert resp.action.status == "success" and resp.zone.name == "example.org"
    zone = client.zones.get("example.org")
    assert (zone.id, zone.mode, zone.status, zone.ttl) == (resp.zone.id, "primary", "ok", 3600)
    assert zone.authoritative_nameservers.delegation_status == "unknown"
    assert len(zone.authoritative_nameservers.assigned) == 3
    assert client.zones.get(zone.id).name == "example.org"  # by id as well as by name
    names = sorted((r.name, r.type) for r in client.zones.get_rrset_all(zone))
    assert names == [("@", "NS"), ("@", "SOA"), ("www", "A")]
    assert [z.name for z in client.zones.get_all(label_selector="managed-by=homelab")] == ["example.org"]
    with pytest.raises(APIException) as exc:
        client.zones.create(name="example.org", mode="primary")
    assert exc.value.code == "uniqueness_error"
    client.zones.delete(zone).action.wait_until_finished()
    assert client.zones.get_all() == []


def test_rrsets_create_get_set_add_remove_delete(client: Client) -> None:
    zone = client.zones.create(name="example.org", mode="primary").zone
    created = client.zones.create_rrset(zone, name="notes", type="A", ttl=300, labels={"managed-by": "homelab"},
                                        records=[ZoneRecord(value="203.0.113.7", comment="ingress web-1")])
    created.action.wait_until_finished()
    r = client.zones.get_rrset(Zone(name="example.org"), "notes", "A")
    assert (r.id, r.ttl, r.labels, r.protection) == ("notes/A", 300, {"managed-by": "homelab"}, {"change": False})
    assert [(x.value, x.comment) for x in r.records] == [("203.0.113.7", "ingress web-1")]
    assert r.zone.id == zone.id
    client.zones.set_rrset_records(r, [ZoneRecord(value="203.0.113.8")]).wait_until_finished()
    client.zones.add_rrset_records(r, [ZoneRecord(value="203.0.113.9")]).wait_until_finished()
    assert sorted(x.value for x in client.zones.get_rrset(zone, "notes", "A").records) == ["203.0.113.8", "203.0.113.9"]
    client.zones.change_rrset_ttl(r, 600).wait_until_finished()
    assert client.zones.get_rrset(zone, "notes", "A").ttl == 600
    client.zones.update_rrset(r, labels={"x": "y"})
    assert client.zones.get_rrset_all(zone, label_selector="x=y")[0].name == "notes"
    assert [x.name for x in client.zones.get_rrset_all(zone, type=["A", "AAAA"])] == ["notes"]
    client.zones.remove_rrset_records(r, [ZoneRecord(value="203.0.113.8")]).wait_until_finished()
    client.zones.delete_rrset(r).action.wait_until_finished()
    with pytest.raises(APIException) as exc:
        client.zones.get_rrset(zone, "notes", "A")
    assert exc.value.code == "not_found"


def test_refusals_as_hetzner_words_them(client: Client, fake: FakeHcloud) -> None:
    zone = client.zones.create(name="example.org", mode="primary").zone
    with pytest.raises(APIException) as exc:
        client.zones.create_rrset(zone, name="bad", type="A", records=[ZoneRecord(value="2001:db8::1")])
    assert exc.value.code == "invalid_input"
    client.zones.create_rrset(zone, name="v6", type="AAAA", records=[ZoneRecord(value="2001:db8::1")])
    with pytest.raises(APIException) as exc:
        client.zones.create_rrset(zone, name="v6", type="AAAA", records=[ZoneRecord(value="2001:db8::2")])
    assert exc.value.code == "uniqueness_error"
    r = client.zones.get_rrset(zone, "v6", "AAAA")
    client.zones.change_rrset_protection(r, change=True).wait_until_finished()
    with pytest.raises(APIException) as exc:
        client.zones.delete_rrset(r)
    assert exc.value.code == "protected"
    with pytest.raises(APIException) as exc:
        client.zones.get("nope.example")
    assert exc.value.code == "not_found"
    with pytest.raises(APIException) as exc:
        Client("ro", api_endpoint=fake.url).zones.create(name="x.example", mode="primary")
    assert exc.value.code == "token_readonly"
